"""A token handed over by another thread's fetch is served only if the storage still admits it.

The Django layer's credential fence refuses tokens of an older credential version; a
thread that waited for another thread's fetch receives that token without reading the
storage, so the cache asks :meth:`TokenStorageInterface.admits` before serving it.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from requestforge_django.tokens import InMemoryTokenStorage, TokenData
from requestforge_django.tokens.single_flight import FetchReason, SingleFlightTokenCache, _Outcome


class RefusingStorage(InMemoryTokenStorage):
    """Admits every token but those in ``refused`` (as if a newer credential version had been read)."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused

    def admits(self, token: TokenData) -> bool:
        return token.access_token not in self.refused


def test_a_waiter_does_not_serve_a_flight_result_the_storage_no_longer_admits() -> None:
    storage = RefusingStorage({"old-version-token"})
    cache = SingleFlightTokenCache(storage, local_ttl=0)
    fetched: list[FetchReason] = []

    def fetch(current: TokenData | None, reason: FetchReason) -> TokenData:
        fetched.append(reason)
        return TokenData("current-version-token")

    class Handoff(Future):  # a flight already finished by another thread with a token of the old version
        def result(self, timeout: Any = None) -> Any:
            with cache._mutex:
                cache._flights.pop("k", None)  # as the leader's _finish does
            return super().result(timeout)

    flight: Handoff = Handoff()
    flight.set_result(_Outcome(TokenData("old-version-token"), fetched=True))
    cache._flights["k"] = flight

    assert cache.get("k", fetch).access_token == "current-version-token"
    assert fetched == [FetchReason.MISSING]


def test_admitted_flight_results_are_served_without_a_fetch() -> None:
    storage = RefusingStorage(set())
    cache = SingleFlightTokenCache(storage, local_ttl=0)
    flight: Future[_Outcome] = Future()
    flight.set_result(_Outcome(TokenData("shared-token"), fetched=True))
    cache._flights["k"] = flight

    def fetch(current: TokenData | None, reason: FetchReason) -> TokenData:
        raise AssertionError("the flight's token should have been served")

    assert cache.get("k", fetch).access_token == "shared-token"
