"""A thread-safe token-bucket rate limiter for outbound calls.

A partner that allows "10 requests per second, bursts of 20" is described by a
bucket of ``burst`` permits refilled at ``rate`` permits per second. The bucket starts
full, so a quiet client may send ``burst`` requests at once.

Waiting is done with *reservations*: a caller that finds the bucket empty takes its
permit anyway, driving the count below zero, and sleeps (outside the lock) until the
debt it created has been refilled. Each caller therefore learns its own turn the moment
it asks, so waiters are served in the order they arrived, nobody re-polls the lock, no
herd of sleepers wakes at once to race for one permit, and the long-run rate is exact:
a late wake-up of one caller does not shift the turns of the others.

All state is one immutable :class:`BucketState` kept in a :class:`BucketStore`
(``store=``; in this process by default), and the only transition is the pure function
:func:`reserve`. A limiter shared by every process is this class with a store that keeps
the bucket in a cache (``requestforge_django.shared``; on Redis it reserves in one
atomic script) and a wall clock (``time.time``): ``updated_at`` is a reading of
``clock``, and a monotonic clock means nothing to another process. This is the same
shape as :mod:`.circuit_breaker`.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigurationError, RateLimitExceeded
from .state import MemoryStateStore, StateStore, call_store


def default_burst(rate: float) -> int:
    """The bucket size when none is given: one second's worth of permits, at least one."""
    return max(1, math.ceil(rate))


class RateLimiterInterface(ABC):
    """What :class:`HttpClient` needs from a limiter: it calls :meth:`acquire` before every attempt.

    Implement this to plug another limiter (a shared one, a per-tenant one) into
    ``HttpClientConfig.rate_limiter``.
    """

    @abstractmethod
    def acquire(self, permits: int = 1) -> float:
        """Take ``permits``, waiting if needed; return the seconds waited.

        Raise :class:`RateLimitExceeded` (with ``retry_after``) instead of waiting when
        the limiter is configured not to wait that long.
        """

    @abstractmethod
    def try_acquire(self, permits: int = 1) -> bool:
        """Take ``permits`` only if that needs no waiting; never blocks."""

    async def aacquire(self, permits: int = 1) -> float:
        """:meth:`acquire` for the async path. Default: the sync method in a worker thread."""
        return await asyncio.to_thread(self.acquire, permits)


@dataclass(frozen=True, slots=True)
class BucketState:
    """The bucket as one value: ``tokens`` permits as of clock reading ``updated_at``.

    ``tokens`` is negative while reservations are outstanding: ``-tokens`` permits are
    promised to callers that are still sleeping until their turn.
    """

    tokens: float
    updated_at: float


def refill(state: BucketState, now: float, *, rate: float, burst: int) -> BucketState:
    """``state`` brought forward to ``now``: ``rate`` permits per second, never above ``burst``.

    A clock reading older than ``updated_at`` (another process's wall clock running a
    little behind) refills nothing and does not move the bucket back in time.
    """
    elapsed = now - state.updated_at
    if elapsed <= 0:
        return state
    return BucketState(min(float(burst), state.tokens + elapsed * rate), now)


def reserve(state: BucketState | None, now: float, permits: int, *, rate: float, burst: int) -> tuple[BucketState, float]:
    """The transition: take ``permits`` at ``now``; return the new state and the seconds to wait.

    ``state`` ``None`` is a bucket never used: full. The wait is how long until the
    refill covers the debt the permits leave behind (``0.0`` when they were there).
    """
    current = BucketState(float(burst), now) if state is None else refill(state, now, rate=rate, burst=burst)
    tokens = current.tokens - permits
    wait = -tokens / rate if tokens < 0 else 0.0
    return BucketState(tokens, max(current.updated_at, now)), wait


def take(
    state: BucketState | None, now: float, permits: int, *, rate: float, burst: int, block: bool, max_wait: float | None
) -> tuple[BucketState | None, tuple[bool, float]]:
    """:func:`reserve` with a limit on waiting: the state to store (``None``: unchanged) and ``(granted, wait)``.

    A wait the caller may not do (``block`` false, or longer than ``max_wait``) is a
    refusal that leaves the bucket as it was.
    """
    new, wait = reserve(state, now, permits, rate=rate, burst=burst)
    if wait > 0 and (not block or (max_wait is not None and wait > max_wait)):
        return None, (False, wait)
    return (new if new != state else None), (True, wait)


class BucketStore(StateStore[BucketState]):
    """Where a :class:`RateLimiter` keeps its bucket (``None``: never used, i.e. full)."""

    def reserve(
        self, permits: int, *, rate: float, burst: int, block: bool, max_wait: float | None, clock: Callable[[], float]
    ) -> tuple[bool, float]:
        """Take ``permits`` (see :func:`take`): ``(granted, wait)``.

        By default :func:`take` under :meth:`update`; a store that can reserve in one
        round trip (a Redis script) does so here instead.
        """
        return self.update(lambda state: take(state, clock(), permits, rate=rate, burst=burst, block=block, max_wait=max_wait))


class MemoryBucketStore(MemoryStateStore[BucketState], BucketStore):
    """The bucket in this process, under a thread lock (the default)."""


class RateLimiter(RateLimiterInterface):
    """At most ``rate`` permits per second on average, at most ``burst`` at once.

    ``block`` (default) makes :meth:`acquire` wait its turn; with ``max_wait`` set, a
    turn further away than that raises :class:`RateLimitExceeded` instead (nothing is
    consumed, ``retry_after`` says when to come back). ``block=False`` never waits.
    One limiter may be shared by several clients, threads and ``request_many`` batches:
    they all draw from the same bucket.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        block: bool = True,
        max_wait: float | None = None,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        store: BucketStore | None = None,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ConfigurationError(f"must be a positive number of permits per second, got {rate!r}", field="rate")
        if burst is None:
            burst = default_burst(rate)
        elif isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigurationError(f"must be an integer >= 1, got {burst!r}", field="burst")
        if not isinstance(block, bool):
            raise ConfigurationError(f"must be a bool, got {block!r}", field="block")
        if max_wait is not None and (
            isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or math.isnan(max_wait) or max_wait < 0
        ):
            raise ConfigurationError(f"must be None or a non-negative number of seconds, got {max_wait!r}", field="max_wait")
        if not isinstance(name, str):
            raise ConfigurationError(f"must be a string, got {name!r}", field="name")
        for field_name, value in (("clock", clock), ("sleep", sleep)):
            if not callable(value):
                raise ConfigurationError(f"must be callable, got {value!r}", field=field_name)
        self.rate = float(rate)
        self.burst = burst
        self.block = block
        self.max_wait = None if max_wait is None else float(max_wait)
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self.store: BucketStore = MemoryBucketStore() if store is None else store

    # -- the public API ------------------------------------------------------------------
    def acquire(self, permits: int = 1) -> float:
        """Take ``permits``, sleeping until they are due; return the seconds waited.

        The turn is reserved under the lock and the sleep happens outside it. Raises
        :class:`RateLimitExceeded`, consuming nothing, when the wait would exceed
        ``max_wait`` or the limiter does not block.
        """
        self._check(permits)
        granted, wait = self._reserve(permits, block=self.block, max_wait=self.max_wait)
        if not granted:
            label = f" {self.name!r}" if self.name else ""
            raise RateLimitExceeded(f"Rate limit{label} exceeded: next permit in {wait:.3f}s", retry_after=wait)
        if wait > 0:
            self._sleep(wait)
        return wait

    async def aacquire(self, permits: int = 1) -> float:
        """:meth:`acquire` for the async path: the same turn, awaited with ``asyncio.sleep``.

        The reservation is made inline for an in-memory bucket and in a worker thread
        for a shared one (a cache store does I/O); the wait never blocks the event loop.
        A task cancelled while it waits has still consumed its permit, as a thread
        interrupted in :meth:`acquire` would have.
        """
        self._check(permits)
        granted, wait = await call_store(
            self.store,
            self.store.reserve,
            permits,
            rate=self.rate,
            burst=self.burst,
            block=self.block,
            max_wait=self.max_wait,
            clock=self._clock,
        )
        if not granted:
            label = f" {self.name!r}" if self.name else ""
            raise RateLimitExceeded(f"Rate limit{label} exceeded: next permit in {wait:.3f}s", retry_after=wait)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait

    def try_acquire(self, permits: int = 1) -> bool:
        """Take ``permits`` if they are available right now; never waits, never raises for a full bucket."""
        self._check(permits)
        return self._reserve(permits, block=False, max_wait=None)[0]

    def _reserve(self, permits: int, *, block: bool, max_wait: float | None) -> tuple[bool, float]:
        """Reserve ``permits``: ``(granted, wait)``; a refusal leaves the bucket as it was."""
        return self.store.reserve(permits, rate=self.rate, burst=self.burst, block=block, max_wait=max_wait, clock=self._clock)

    @property
    def available(self) -> float:
        """Permits in the bucket now; negative while reservations are outstanding."""
        state, now = self.store.read(), self._clock()
        return float(self.burst) if state is None else refill(state, now, rate=self.rate, burst=self.burst).tokens

    def _check(self, permits: int) -> None:
        if isinstance(permits, bool) or not isinstance(permits, int) or permits < 1:
            raise ConfigurationError(f"must be a positive integer, got {permits!r}", field="permits")
        if permits > self.burst:
            # A bucket never holds more than ``burst``: such a request could never be granted at once.
            raise ConfigurationError(f"{permits} exceeds the bucket size (burst={self.burst})", field="permits")

    def __repr__(self) -> str:
        label = f"name={self.name!r}, " if self.name else ""
        return f"RateLimiter({label}rate={self.rate:g}, burst={self.burst}, block={self.block}, max_wait={self.max_wait})"
