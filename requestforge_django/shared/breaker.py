"""One circuit breaker for every process: :class:`CacheCircuitStore` keeps the breaker's state in a Django cache.

With per-process breakers, twenty gunicorn and Celery processes each have to see
``failure_threshold`` failures before they stop calling a partner that is down, and
each sends its own probe when it recovers. A client whose ``CIRCUIT_BREAKER`` has
``"SHARED": True`` gets :class:`CacheCircuitBreaker`: the core
:class:`~requestforge_django.http.circuit_breaker.CircuitBreaker` with its snapshot in
a :class:`CacheCircuitStore` under one cache key, so one process's failures open the
circuit for all and exactly one probe goes out across all of them.

Cost: a closed circuit is one cache ``get`` per request (the transition function is
pure, so a call that changes nothing writes nothing). A transition (a failure, the
probe, a recovery) is done under a :class:`~.lease.DjangoCacheLease` and re-read
under it, so two processes recording failures together both count.

If the cache is unreachable the breaker does not fail the request: it logs once and
keeps counting in this process until the cache answers again (the partner call is
what matters; a breaker that breaks calls because Redis blinked would be worse than
none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches

from ..http.circuit_breaker import CircuitBreaker, CircuitSnapshot, CircuitState
from ..http.state import StateStore
from .lease import CacheOutageNotice, DjangoCacheLease

__all__ = ["CacheCircuitBreaker", "CacheCircuitStore", "snapshot_from_cache", "snapshot_to_cache"]

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


class CacheCircuitStore(StateStore[CircuitSnapshot]):
    """A breaker's snapshot under ``key`` in the cache ``cache_alias``; this process's last copy while the cache is down.

    A step that changes nothing costs one ``get``; a change is re-applied and written
    under a lease (or without it when the lease cannot be had within ``LEASE_WAIT``).
    """

    def __init__(self, cache_alias: str, key: str, label: str = "") -> None:
        self.cache_alias = cache_alias
        self.key = key
        self._lock = threading.Lock()
        self._local = CircuitSnapshot()
        self._outage = CacheOutageNotice(f"Circuit breaker {label or key!r}", "counting in this process")

    def read(self) -> CircuitSnapshot:
        with self._lock:
            return self._load()

    def update(self, step: Callable[[CircuitSnapshot | None], tuple[CircuitSnapshot | None, R]]) -> R:
        with self._lock:
            new, result = step(self._load())
            if new is None:
                return result  # the common case: nothing to write, no lease
            lease = DjangoCacheLease(self.cache_alias, f"{self.key}:lock", LEASE_TIMEOUT)
            try:
                leased = lease.acquire(blocking=True, timeout=LEASE_WAIT)
            except Exception as exc:
                self._outage.report(self.cache_alias, exc)
                leased = False
            try:
                if leased:  # re-read: another process may have moved the state meanwhile
                    new, result = step(self._load())
                if new is not None:
                    self._store(new)
                return result
            finally:
                if leased:
                    lease.release()

    def write(self, value: CircuitSnapshot) -> None:
        with self._lock:
            self._store(value)

    def _load(self) -> CircuitSnapshot:
        try:
            value = caches[self.cache_alias].get(self.key)
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)
            return self._local
        self._outage.clear()
        self._local = snapshot_from_cache(value)  # the fallback if the cache goes away
        return self._local

    def _store(self, snapshot: CircuitSnapshot) -> None:
        self._local = snapshot
        try:
            caches[self.cache_alias].set(self.key, snapshot_to_cache(snapshot), timeout=None)
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)

    def __repr__(self) -> str:
        return f"CacheCircuitStore(cache_alias={self.cache_alias!r}, key={self.key!r})"


class CacheCircuitBreaker(CircuitBreaker):
    """A :class:`CircuitBreaker` with a :class:`CacheCircuitStore`: state shared through ``cache_alias`` under ``key``.

    Only the constructor differs from the core class. ``clock`` must be a wall clock
    (default ``time.time``): ``opened_at`` is compared across processes and machines.
    """

    store: CacheCircuitStore

    def __init__(
        self,
        cache_alias: str,
        key: str,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        name: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        store = CacheCircuitStore(cache_alias, key, label=name)
        super().__init__(failure_threshold=failure_threshold, recovery_timeout=recovery_timeout, name=name, clock=clock, store=store)

    @property
    def cache_alias(self) -> str:
        return self.store.cache_alias

    @property
    def key(self) -> str:
        return self.store.key

    def __repr__(self) -> str:
        return f"CacheCircuitBreaker(name={self.name!r}, cache_alias={self.cache_alias!r}, key={self.key!r})"
