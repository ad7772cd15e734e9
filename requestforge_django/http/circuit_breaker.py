"""A thread-safe circuit breaker with lazy state transitions.

When a dependency is down, every call to it costs a timeout; a breaker turns that
into an immediate :class:`CircuitBreakerException` after ``failure_threshold``
consecutive failures, then lets exactly one probe through once ``recovery_timeout``
has passed to find out whether the dependency is back.

There are no timers or threads: OPEN becomes HALF_OPEN when someone looks at the
state after the timeout. All state lives in one immutable :class:`CircuitSnapshot`
kept in a :class:`~.state.StateStore` (``store=``; in this process by default), and
every transition is a pure function of ``(snapshot, now)``. A breaker shared by all
processes is this class with a store that keeps the snapshot in a cache
(``requestforge_django.shared``) and a wall clock (``time.time``), because
``opened_at`` is a reading of ``clock`` and a monotonic clock means nothing to
another process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar, overload

from .exceptions import CircuitBreakerException, ConfigurationError
from .state import MemoryStateStore, StateStore, call_store

logger = logging.getLogger("requestforge_django.http")

T = TypeVar("T")

#: Defaults of :class:`CircuitBreaker`, also the ``CIRCUIT_BREAKER`` setting's (``setting.specs.BreakerSpec`` imports them).
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RECOVERY_TIMEOUT = 30.0
R = TypeVar("R")


class CircuitState(str, Enum):
    """Breaker states; string values so a snapshot serialises plainly into a cache."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """Everything a breaker knows, as one value.

    ``opened_at`` is the ``clock`` reading when the current wait began: when the
    circuit opened or, in HALF_OPEN with ``probe_in_flight``, when the probe was
    admitted (so a probe whose outcome never arrives is treated like a failed one and
    another probe is admitted after ``recovery_timeout``, instead of the breaker
    staying stuck).
    """

    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float | None = None
    probe_in_flight: bool = False


_CLOSED = CircuitSnapshot()


class CircuitBreaker:
    """Counts consecutive failures of one dependency and short-circuits calls while it is down.

    Use :meth:`call` to guard a callable, or :meth:`allow_request` followed by
    exactly one of :meth:`record_success`, :meth:`record_failure` or
    :meth:`record_ignored` when the caller decides what counts as a failure (the HTTP
    client does this). ``store`` holds the state (default: this process's memory).
    """

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        recovery_timeout: float | timedelta = DEFAULT_RECOVERY_TIMEOUT,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        store: StateStore[CircuitSnapshot] | None = None,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise ConfigurationError(f"must be an integer >= 1, got {failure_threshold!r}", field="failure_threshold")
        timeout = recovery_timeout.total_seconds() if isinstance(recovery_timeout, timedelta) else recovery_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError(f"must be a positive number of seconds, got {recovery_timeout!r}", field="recovery_timeout")
        if not callable(clock):
            raise ConfigurationError(f"must be callable, got {clock!r}", field="clock")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = float(timeout)
        self.name = name
        self._clock = clock
        self.store: StateStore[CircuitSnapshot] = MemoryStateStore() if store is None else store

    def _update(self, transition: Callable[[CircuitSnapshot, float], tuple[CircuitSnapshot, R]]) -> R:
        """Apply ``transition`` to the settled snapshot atomically and store the result if it changed."""

        def step(stored: CircuitSnapshot | None) -> tuple[CircuitSnapshot | None, R]:
            now = self._clock()
            current = self._settle(_CLOSED if stored is None else stored, now)
            new, result = transition(current, now)
            return (new if new != current else None), result

        return self.store.update(step)

    def _current(self) -> tuple[CircuitSnapshot, float]:
        stored = self.store.read()
        now = self._clock()
        return self._settle(_CLOSED if stored is None else stored, now), now

    # -- pure transitions ----------------------------------------------------------
    def _waited_out(self, snapshot: CircuitSnapshot, now: float) -> bool:
        return snapshot.opened_at is None or now - snapshot.opened_at >= self.recovery_timeout

    def _settle(self, snapshot: CircuitSnapshot, now: float) -> CircuitSnapshot:
        """The lazy part: OPEN past its timeout is HALF_OPEN; a probe lost for as long is forgotten."""
        if snapshot.state is CircuitState.OPEN and self._waited_out(snapshot, now):
            return replace(snapshot, state=CircuitState.HALF_OPEN, probe_in_flight=False)
        if snapshot.state is CircuitState.HALF_OPEN and snapshot.probe_in_flight and self._waited_out(snapshot, now):
            return replace(snapshot, probe_in_flight=False)
        return snapshot

    @staticmethod
    def _admit(snapshot: CircuitSnapshot, now: float) -> tuple[CircuitSnapshot, bool]:
        if snapshot.state is CircuitState.CLOSED:
            return snapshot, True
        if snapshot.state is CircuitState.HALF_OPEN and not snapshot.probe_in_flight:
            return replace(snapshot, probe_in_flight=True, opened_at=now), True
        return snapshot, False

    @staticmethod
    def _succeed(snapshot: CircuitSnapshot, now: float) -> tuple[CircuitSnapshot, None]:
        # A success reported while OPEN comes from a call admitted before the circuit
        # opened; it says nothing about the dependency now, so it is ignored.
        if snapshot.state is CircuitState.OPEN:
            return snapshot, None
        return _CLOSED, None

    def _fail(self, snapshot: CircuitSnapshot, now: float) -> tuple[CircuitSnapshot, None]:
        if snapshot.state is CircuitState.OPEN:
            # A straggler from before the circuit opened: restarting the timeout would
            # let slow old calls keep the circuit open indefinitely.
            return snapshot, None
        failures = snapshot.failures + 1
        if snapshot.state is CircuitState.HALF_OPEN or failures >= self.failure_threshold:
            return CircuitSnapshot(state=CircuitState.OPEN, failures=failures, opened_at=now), None
        return replace(snapshot, failures=failures), None

    @staticmethod
    def _release(snapshot: CircuitSnapshot, now: float) -> tuple[CircuitSnapshot, None]:
        if snapshot.state is CircuitState.HALF_OPEN and snapshot.probe_in_flight:
            return replace(snapshot, probe_in_flight=False), None
        return snapshot, None

    # -- public API ----------------------------------------------------------------
    @property
    def state(self) -> CircuitState:
        """The current state, with OPEN -> HALF_OPEN applied if ``recovery_timeout`` has passed."""
        return self._current()[0].state

    @property
    def failure_count(self) -> int:
        """Consecutive failures recorded since the last success or reset."""
        return self._current()[0].failures

    @property
    def retry_after(self) -> float:
        """Seconds until a call could be admitted again (0 when one would be now)."""
        snapshot, now = self._current()
        if snapshot.state is CircuitState.CLOSED or (snapshot.state is CircuitState.HALF_OPEN and not snapshot.probe_in_flight):
            return 0.0
        assert snapshot.opened_at is not None  # OPEN, or HALF_OPEN with a probe in flight
        return max(0.0, snapshot.opened_at + self.recovery_timeout - now)

    def allow_request(self) -> bool:
        """Whether a call may go ahead now; in HALF_OPEN this claims the single probe slot.

        A ``True`` must be followed by one ``record_*`` call reporting the outcome,
        or the probe slot stays taken until ``recovery_timeout`` runs out.
        """
        return self._update(self._admit)

    def record_success(self) -> None:
        """Close the circuit and reset the failure count."""
        self._update(self._succeed)

    def record_failure(self) -> None:
        """Count a failure: opens at the threshold, and a failed probe reopens with a fresh timeout."""
        self._update(self._fail)

    def record_ignored(self) -> None:
        """An admitted call ended without saying anything about the dependency (cancelled,
        rejected by another breaker); frees the probe slot so the next caller can probe."""
        self._update(self._release)

    def reset(self) -> None:
        """Forget everything: CLOSED with no failures (for admin actions and tests)."""
        self.store.write(_CLOSED)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func`` through the breaker, raising :class:`CircuitBreakerException` if it is open.

        Any ``Exception`` from ``func`` counts as a failure and propagates, except a
        ``CircuitBreakerException`` (another breaker refused: not this dependency's
        fault). ``BaseException`` such as ``KeyboardInterrupt`` is not counted either.
        """
        if not self.allow_request():
            label = f" {self.name!r}" if self.name else ""
            raise CircuitBreakerException(f"Circuit breaker{label} is open", retry_after=self.retry_after)
        try:
            result = func(*args, **kwargs)
        except CircuitBreakerException:
            self.record_ignored()
            raise
        except Exception:
            self.record_failure()
            raise
        except BaseException:
            self.record_ignored()
            raise
        self.record_success()
        return result

    # -- the async path: the same transitions, the store called off the loop unless it is in memory --
    async def _aupdate(self, transition: Callable[[CircuitSnapshot, float], tuple[CircuitSnapshot, R]]) -> R:
        return await call_store(self.store, self._update, transition)

    async def aallow_request(self) -> bool:
        """:meth:`allow_request` without blocking the event loop."""
        return await self._aupdate(self._admit)

    async def arecord_success(self) -> None:
        """:meth:`record_success` without blocking the event loop."""
        await self._aupdate(self._succeed)

    async def arecord_failure(self) -> None:
        """:meth:`record_failure` without blocking the event loop."""
        await self._aupdate(self._fail)

    async def arecord_ignored(self) -> None:
        """:meth:`record_ignored` without blocking the event loop."""
        await self._aupdate(self._release)

    def record_ignored_nowait(self) -> None:
        """:meth:`record_ignored` from a coroutine that is being cancelled or closed: never awaits, never blocks the loop.

        For the ``except BaseException`` branch of an async send. Awaiting the store there
        would hold the cancellation up for a lease wait and a Redis round trip (seconds
        while Redis is down), could itself be cancelled again and lose the release, and is
        impossible when the coroutine is closed (``GeneratorExit``). So: a
        :class:`~.state.MemoryStateStore` is updated inline (a brief thread lock); any
        other store in the running loop's default executor, not awaited (``asyncio.run``
        waits for that executor before it returns), or in a thread of its own once the
        loop no longer takes work; with no event loop in this thread, inline.
        """
        if isinstance(self.store, MemoryStateStore):
            self.record_ignored()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a coroutine closed after its loop): blocking stalls nobody
            self._record_ignored_logged()
            return
        try:
            loop.run_in_executor(None, self._record_ignored_logged)
        except RuntimeError:  # the loop is closing and its executor is shut down
            threading.Thread(target=self._record_ignored_logged, name="requestforge-breaker-release", daemon=True).start()

    def _record_ignored_logged(self) -> None:
        """:meth:`record_ignored` where nobody waits for it: a failure is logged, not left in an unread future."""
        try:
            self.record_ignored()
        except Exception:
            logger.warning("Circuit breaker %r could not free its probe slot", self.name, exc_info=True)

    async def aretry_after(self) -> float:
        """:attr:`retry_after` without blocking the event loop."""
        return await call_store(self.store, lambda: self.retry_after)

    @overload
    async def acall(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T: ...
    @overload
    async def acall(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    async def acall(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """:meth:`call` for the async path: ``func`` may be a coroutine function (awaited) or a plain one (called).

        The same rules: :class:`CircuitBreakerException` when open; any ``Exception``
        counts as a failure except another breaker's refusal; cancellation
        (``asyncio.CancelledError``) and other ``BaseException`` are not counted and free
        the probe slot (:meth:`record_ignored_nowait`: the cancellation is not held up by the store).
        """
        if not await self.aallow_request():
            label = f" {self.name!r}" if self.name else ""
            raise CircuitBreakerException(f"Circuit breaker{label} is open", retry_after=await self.aretry_after())
        try:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except CircuitBreakerException:
            await self.arecord_ignored()
            raise
        except Exception:
            await self.arecord_failure()
            raise
        except BaseException:
            self.record_ignored_nowait()
            raise
        await self.arecord_success()
        return result

    def __repr__(self) -> str:
        snapshot, _ = self._current()
        return f"CircuitBreaker(name={self.name!r}, state={snapshot.state.name}, failures={snapshot.failures})"
