"""Pieces shared by the async tests against real servers (``tests/django/test_async_*``).

* :class:`GatedTokenEndpoint`: the shipped stub token endpoint, whose token requests can
  be held on an event, so a test knows a fetch is in flight (``entered``) and decides when
  it is answered (``release``) instead of guessing with a delay.
* :func:`async_setting`: the ``REQUESTFORGE`` setting of the Django-layer tests with the
  ``billing`` client pointed at a partner server, without retries (an error is the
  error of one attempt, the same on both paths).
* :func:`held_reply`: a partner handler that signals the request arrived and answers when
  told, for a send a test wants in flight.
* :func:`redis_key`: the raw Redis key of a cache key, to look at what the library
  left in Redis (the token, the lease) rather than at what it says it left.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from django.core.cache import caches

from requestforge_django.testing import StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting
from tests.support.partner_server import Received, Reply

__all__ = ["WAIT", "GatedTokenEndpoint", "async_setting", "held_reply", "masked", "redis_key"]

#: The longest any test waits for an event that should come at once.
WAIT = 10.0


class GatedTokenEndpoint(StubTokenEndpoint):
    """A :class:`StubTokenEndpoint` whose token requests wait for :meth:`release` while :meth:`hold` is on.

    The request is counted by the stub before it waits, so ``stats()`` shows it as soon as
    ``entered`` is set. :meth:`stop` releases held requests first.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.entered = threading.Event()
        self._gate: threading.Event | None = None

    def hold(self) -> None:
        """Hold every token request from now on until :meth:`release`."""
        self.entered.clear()
        self._gate = threading.Event()

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def _fetch(self, path: str, method: str, body: bytes, headers: Mapping[str, str]) -> Any:
        gate = self._gate
        if gate is not None:
            self.entered.set()
            gate.wait(WAIT)
        return super()._fetch(path, method, body, headers)

    def stop(self) -> None:
        self.release()
        super().stop()


def async_setting(stub: StubTokenEndpoint, partner_url: str, cache: str, **billing: Any) -> dict[str, Any]:
    """The Django-layer tests' setting; ``billing`` calls ``partner_url`` with tokens from ``stub``, no retries.

    ``billing`` overrides keys of the ``billing`` client; ``public`` (no credentials) and
    ``keyed`` (a static API key) call the partner too.
    """
    setting = requestforge_setting(stub, cache)
    clients = setting["CLIENTS"]
    clients["billing"].update({"BASE_URL": partner_url, "TIMEOUT": (2, 2), "RETRY": {"STRATEGY": "none"}, **billing})
    clients["public"] = {"BASE_URL": partner_url, "RETRY": {"STRATEGY": "none"}}
    clients["keyed"] = {"BASE_URL": partner_url, "RETRY": {"STRATEGY": "none"}, "AUTH": {"TYPE": "api_key", "KEY": "static-key-0123456789"}}
    return setting


def held_reply(arrived: threading.Event, answer: threading.Event) -> Callable[[Received], Reply]:
    """A :class:`~tests.support.partner_server.PartnerServer` handler: sets ``arrived``, then answers 200 once ``answer`` is set."""

    def handler(received: Received) -> Reply:
        arrived.set()
        answer.wait(WAIT)
        return Reply(200, {"late": True})

    return handler


def redis_key(alias: str, cache_key: str) -> str:
    """The key Redis holds for ``cache_key`` of the django-redis cache ``alias`` (its prefix and version added)."""
    return str(caches[alias].make_key(cache_key))


def masked(value: str | None) -> str:
    """A token or header value fit for an assertion message: its first 9 characters."""
    return "None" if value is None else value[:9] + "..."
