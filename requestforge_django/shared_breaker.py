"""``CacheCircuitBreaker``: one circuit breaker for every process, kept in a Django cache.

With per-process breakers, twenty gunicorn and Celery processes each have to see
``failure_threshold`` failures before they stop calling a partner that is down, and
each sends its own probe when it recovers. A client whose ``CIRCUIT_BREAKER`` has
``"SHARED": True`` gets this breaker instead: the snapshot of
:class:`~requestforge_django.http.circuit_breaker.CircuitBreaker` lives under one
cache key, so one process's failures open the circuit for all and exactly one probe
goes out across all of them.

Cost: a closed circuit is one cache ``get`` per request (the transition function is
pure, so a call that changes nothing writes nothing). A transition (a failure, the
probe, a recovery) is done under a :class:`~requestforge_django.cache.DjangoCacheLease`
and re-read under it, so two processes recording failures together both count.

If the cache is unreachable the breaker does not fail the request: it logs once and
keeps counting in this process until the cache answers again (the partner call is
what matters; a breaker that breaks calls because Redis blinked would be worse than
none).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches

from .cache import CacheOutageNotice, DjangoCacheLease
from .http.circuit_breaker import CircuitBreaker, CircuitSnapshot, CircuitState

R = TypeVar("R")

#: How long a transition waits for the lease before applying its change anyway.
LEASE_WAIT = 1.0
#: The lease's own expiry: a transition is a get and a set, far below this.
LEASE_TIMEOUT = 5.0


def snapshot_to_cache(snapshot: CircuitSnapshot) -> dict[str, Any]:
    return {
        "state": snapshot.state.value,
        "failures": snapshot.failures,
        "opened_at": snapshot.opened_at,
        "probe": snapshot.probe_in_flight,
    }


def snapshot_from_cache(value: Any) -> CircuitSnapshot:
    """The stored snapshot, or a closed one for a missing or unreadable entry."""
    if not isinstance(value, dict):
        return CircuitSnapshot()
    try:
        return CircuitSnapshot(
            state=CircuitState(value["state"]),
            failures=int(value["failures"]),
            opened_at=None if value["opened_at"] is None else float(value["opened_at"]),
            probe_in_flight=bool(value["probe"]),
        )
    except (KeyError, TypeError, ValueError):
        return CircuitSnapshot()


class CacheCircuitBreaker(CircuitBreaker):
    """A :class:`CircuitBreaker` whose state is shared through the cache ``cache_alias`` under ``key``.

    ``clock`` must be a wall clock (default ``time.time``): ``opened_at`` is compared
    across processes and machines.
    """

    def __init__(
        self,
        cache_alias: str,
        key: str,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        name: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(failure_threshold=failure_threshold, recovery_timeout=recovery_timeout, name=name, clock=clock)
        self.cache_alias = cache_alias
        self.key = key
        self._outage = CacheOutageNotice(f"Circuit breaker {name or key!r}", "counting in this process")

    def _load(self) -> CircuitSnapshot:
        try:
            value = caches[self.cache_alias].get(self.key)
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)
            return self._snapshot
        self._outage.clear()
        snapshot = snapshot_from_cache(value)
        self._snapshot = snapshot  # the fallback if the cache goes away
        return snapshot

    def _store(self, snapshot: CircuitSnapshot) -> None:
        self._snapshot = snapshot
        try:
            caches[self.cache_alias].set(self.key, snapshot_to_cache(snapshot), timeout=None)
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)

    def _update(self, transition: Callable[[CircuitSnapshot, float], tuple[CircuitSnapshot, R]]) -> R:
        with self._lock:
            now = self._clock()
            current = self._settle(self._load(), now)
            new, result = transition(current, now)
            if new == current:
                return result  # the common case: nothing to write, no lease
            lease = DjangoCacheLease(self.cache_alias, f"{self.key}:lock", LEASE_TIMEOUT)
            try:
                leased = lease.acquire(blocking=True, timeout=LEASE_WAIT)
            except Exception as exc:
                self._outage.report(self.cache_alias, exc)
                leased = False
            try:
                if leased:  # re-read: another process may have moved the state meanwhile
                    now = self._clock()
                    current = self._settle(self._load(), now)
                    new, result = transition(current, now)
                if new != current:
                    self._store(new)
                return result
            finally:
                if leased:
                    lease.release()

    def __repr__(self) -> str:
        return f"CacheCircuitBreaker(name={self.name!r}, cache_alias={self.cache_alias!r}, key={self.key!r})"
