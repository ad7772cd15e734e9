"""Refresh-ahead for asyncio callers: a due token is renewed once, in the background, and the loop does not pay per call.

A token inside its refresh-ahead window is never served from the cache's memory (the
sync path re-reads the storage to start the renewal or see it finished). Before
``TokenManager.aget_token`` held such a token for the loop, every call of the window
went to a worker thread and read the storage (Redis): with 64 tasks and a 300 ms token
endpoint, dozens of thread hops competing with the loop for the GIL, and calls during
rollovers took twice as long (``python -m benchmarks.bench_async --only rollover``).

The storage here is a subclass of the in-memory one, so it is treated like Redis (never
read on the loop); renewals run on threads the test joins, and the provider is held on
a gate so a renewal stays in flight for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import TokenData, TokenManager

from .fakes import WAIT, FakeClock, FakeProvider, ReadCountingStorage, Renewals, auth_error, recording_offloads

LIFETIME = 100.0  # seconds by the fake clock
REFRESH_AHEAD = 30.0  # due 70 s after it was issued
LOCAL_TTL = 5.0


@pytest.fixture
def provider(clock: FakeClock) -> FakeProvider:
    return FakeProvider(clock, lifetime=LIFETIME)


@pytest.fixture
def manager(provider: FakeProvider, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock) -> TokenManager:
    return TokenManager(provider, storage, refresh_ahead=REFRESH_AHEAD, local_ttl=LOCAL_TTL, clock=clock, run_renewal=renewals)


def due_with_renewal_held(manager: TokenManager, provider: FakeProvider, clock: FakeClock) -> TokenData:
    """``tok-1`` cached and inside its refresh-ahead window; the next renewal will wait on ``provider.gate``."""
    first = manager.get_token()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    provider.gate = threading.Event()
    provider.entered.clear()
    return first


def test_calls_during_a_renewal_keep_the_due_token_without_a_thread_or_a_read_each(
    manager: TokenManager, provider: FakeProvider, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock
) -> None:
    first = due_with_renewal_held(manager, provider, clock)

    async def main() -> tuple[TokenData, list[TokenData], int, list[Any], TokenData]:
        noticed = await manager.aget_token()  # one worker thread: reads the storage, starts the renewal
        assert await asyncio.to_thread(provider.entered.wait, WAIT)  # the renewal is at the token endpoint
        reads = storage.reads
        offloaded = recording_offloads(asyncio.get_running_loop())
        during: list[TokenData] = []
        for _ in range(5):  # 64 tasks calling again and again, as on a busy loop
            during += await asyncio.gather(*(manager.aget_token() for _ in range(64)))
        reads_during = storage.reads - reads
        provider.gate.set()  # type: ignore[union-attr]
        renewals.join()
        after = await manager.aget_token()  # the renewed token, from memory
        return noticed, during, reads_during, offloaded, after

    noticed, during, reads_during, offloaded, after = asyncio.run(main())
    assert noticed == first and set(during) == {first}
    assert offloaded == [], f"{len(offloaded)} calls went to a worker thread while the token was being renewed"
    assert reads_during == 0
    assert after.access_token == "tok-2"
    assert provider.fetch_calls == 2  # one renewal for 322 calls


def test_the_held_token_is_read_again_after_local_ttl(
    manager: TokenManager, provider: FakeProvider, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock
) -> None:
    first = due_with_renewal_held(manager, provider, clock)

    async def main() -> tuple[TokenData, int, int]:
        await manager.aget_token()
        assert await asyncio.to_thread(provider.entered.wait, WAIT)
        reads = storage.reads
        await manager.aget_token()
        held_reads = storage.reads - reads
        clock.advance(LOCAL_TTL + 1)  # still valid (and still being renewed), but held long enough
        again = await manager.aget_token()
        return again, held_reads, storage.reads - reads

    try:
        again, held_reads, reads = asyncio.run(main())
    finally:
        provider.gate.set()  # type: ignore[union-attr]
        renewals.join()
    assert held_reads == 0
    assert reads == 1  # the storage is read again, as by any memory hit after local_ttl
    assert again == first  # a renewal is in flight: the still-valid token is served
    assert provider.fetch_calls == 2


def test_a_rejected_token_is_not_served_from_the_hold(
    manager: TokenManager, provider: FakeProvider, renewals: Renewals, clock: FakeClock
) -> None:
    manager.get_token()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    provider.fail_with = auth_error("endpoint down")

    async def main() -> None:
        await manager.aget_token()  # due: the renewal fails in the background, the valid token is held
        await asyncio.to_thread(renewals.join)
        with pytest.raises(AuthenticationException):
            await manager.aforce_refresh(rejected=manager.peek_token())  # the server refused it; no replacement
        with pytest.raises(AuthenticationException, match="endpoint down"):
            await manager.aget_token()  # never the refused token again

    asyncio.run(main())
    assert manager.peek_token() is None


def test_an_invalidated_token_is_not_served_from_the_hold(
    manager: TokenManager, provider: FakeProvider, renewals: Renewals, clock: FakeClock
) -> None:
    first = manager.get_token()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    provider.fail_with = auth_error("endpoint down")

    async def main() -> TokenData:
        assert await manager.aget_token() == first  # held after the failed renewal
        await asyncio.to_thread(renewals.join)
        await manager.ainvalidate_token()
        provider.fail_with = None
        return await manager.aget_token()

    assert asyncio.run(main()).access_token == "tok-2"


def test_local_ttl_zero_holds_nothing(provider: FakeProvider, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock) -> None:
    manager = TokenManager(provider, storage, refresh_ahead=REFRESH_AHEAD, local_ttl=0, clock=clock, run_renewal=renewals)
    due_with_renewal_held(manager, provider, clock)

    async def main() -> int:
        await manager.aget_token()
        assert await asyncio.to_thread(provider.entered.wait, WAIT)
        reads = storage.reads
        for _ in range(3):
            await manager.aget_token()
        return storage.reads - reads

    try:
        assert asyncio.run(main()) == 3  # memory turned off: every call reads the storage, as the sync path does
    finally:
        provider.gate.set()  # type: ignore[union-attr]
        renewals.join()
