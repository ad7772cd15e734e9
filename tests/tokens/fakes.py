"""Test doubles for the token layer: a movable clock, scriptable providers, a two-"process" storage."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import (
    FetchContext,
    InMemoryTokenStorage,
    TokenData,
    TokenFetcherInterface,
    TokenObserver,
    TokenProviderInterface,
    TokenStorageInterface,
)

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
WAIT = 10.0  # generous upper bound for Event waits; tests normally finish in milliseconds


def run_now(job: Callable[[], None]) -> None:
    """Run refresh-ahead renewals synchronously, so tests can assert their result right away."""
    job()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


class FakeProvider(TokenProviderInterface):
    """Issues ``tok-1``, ``tok-2``, ... valid for ``lifetime`` seconds by ``clock``.

    ``gate``: when set to an Event, every fetch announces itself on ``entered`` and
    waits for the gate. ``fail_with``: raise this instead of issuing a token.
    """

    def __init__(self, clock: FakeClock, *, lifetime: float | None = 3600.0, name: str = "fake", refresh_tokens: bool = False) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._name = name
        self.refresh_tokens = refresh_tokens
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.fetch_calls = 0
        self.refresh_calls: list[str | None] = []
        self.invalidate_calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail_with: BaseException | None = None
        self.refresh_fail_with: BaseException | None = None
        self.refresh_omits_refresh_token = False

    @property
    def service_name(self) -> str:
        return self._name

    def _issue(self, prefix: str = "tok") -> TokenData:
        n = next(self._counter)
        now = self.clock()
        return TokenData(
            access_token=f"{prefix}-{n}",
            expires_at=now + timedelta(seconds=self.lifetime) if self.lifetime is not None else None,
            refresh_token=f"rt-{n}" if self.refresh_tokens else None,
            obtained_at=now,
        )

    def _wait_gate(self) -> None:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "test never opened the gate"

    def fetch_token(self) -> TokenData:
        with self._lock:
            self.fetch_calls += 1
        self._wait_gate()
        if self.fail_with is not None:
            raise self.fail_with
        return self._issue()

    def refresh_token(self, current: TokenData) -> TokenData:
        with self._lock:
            self.refresh_calls.append(current.refresh_token)
        self._wait_gate()
        if self.refresh_fail_with is not None:
            raise self.refresh_fail_with
        token = self._issue("refreshed")
        if self.refresh_omits_refresh_token:
            from dataclasses import replace

            token = replace(token, refresh_token=None)
        return token

    def invalidate(self) -> None:
        self.invalidate_calls += 1


def auth_error(message: str = "endpoint down") -> AuthenticationException:
    return AuthenticationException(message, service_name="fake")


class RecordingObserver(TokenObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []
        self.reasons: list[str] = []
        self._lock = threading.Lock()

    def on_obtained(self, key: str, token: TokenData) -> None:
        with self._lock:
            self.events.append(("obtained", key, token.access_token))

    def on_invalidated(self, key: str, reason: str = "manual") -> None:
        with self._lock:
            self.events.append(("invalidated", key, None))
            self.reasons.append(reason)

    def on_refresh_error(self, key: str, exc: BaseException) -> None:
        with self._lock:
            self.events.append(("refresh_error", key, exc))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


# -- two "processes" sharing one backend ------------------------------------------------------


class SharedBackend:
    """What Redis would be: one token table and one lease table, shared by every storage instance."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict] = {}
        self.leases: dict[str, object] = {}
        self.mutex = threading.Lock()
        self.failed_acquires = 0
        self.acquired = 0
        self.contended = threading.Event()


class FakeLease:
    """A lease in the shared backend; one object per acquisition, like the Django cache lease."""

    def __init__(self, backend: SharedBackend, key: str) -> None:
        self.backend = backend
        self.key = key

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        assert not blocking, "the token cache must only try leases without blocking"
        with self.backend.mutex:
            if self.key in self.backend.leases:
                self.backend.failed_acquires += 1
                self.backend.contended.set()
                return False
            self.backend.leases[self.key] = self
            self.backend.acquired += 1
            return True

    def release(self) -> None:
        with self.backend.mutex:
            if self.backend.leases.get(self.key) is self:
                del self.backend.leases[self.key]

    def __enter__(self) -> bool:
        return self.acquire(blocking=False)

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class SharedLeaseStorage(TokenStorageInterface):
    """One "process"'s view of the shared backend: tokens go through ``to_dict`` like a real cache."""

    def __init__(self, backend: SharedBackend) -> None:
        self.backend = backend
        self.gets = 0
        self.sets: list[tuple[str, float | None]] = []

    def get(self, key: str) -> TokenData | None:
        with self.backend.mutex:
            self.gets += 1
            raw = self.backend.tokens.get(key)
        return TokenData.from_dict(raw) if raw is not None else None

    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        with self.backend.mutex:
            self.sets.append((key, ttl))
            self.backend.tokens[key] = token.to_dict()

    def delete(self, key: str) -> None:
        with self.backend.mutex:
            self.backend.tokens.pop(key, None)

    def lock(self, key: str, timeout: float) -> FakeLease:
        return FakeLease(self.backend, key)


class CountingStorage(TokenStorageInterface):
    """In-memory storage that counts reads, so a test knows when N threads have looked."""

    def __init__(self, signal_after_gets: int | None = None) -> None:
        self._tokens: dict[str, TokenData] = {}
        self._lock = threading.Lock()
        self.gets = 0
        self.ttls: dict[str, float | None] = {}
        self.signal_after_gets = signal_after_gets
        self.reached = threading.Event()

    def get(self, key: str) -> TokenData | None:
        with self._lock:
            self.gets += 1
            if self.signal_after_gets is not None and self.gets >= self.signal_after_gets:
                self.reached.set()
            return self._tokens.get(key)

    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        with self._lock:
            self._tokens[key] = token
            self.ttls[key] = ttl

    def delete(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


class ReadCountingStorage(InMemoryTokenStorage):
    """The in-memory storage, counting reads: a stand-in for Redis shared by several managers (processes).

    Being a subclass, not the in-memory class itself, it is treated like Redis: never read
    inline on the event loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> TokenData | None:
        self.reads += 1
        return super().get(key)


# -- pipeline steps -----------------------------------------------------------------------------


class FakeStep(TokenFetcherInterface):
    """A pipeline step issuing ``<name>-1``, ``<name>-2``, ... and recording what it saw."""

    def __init__(
        self,
        name: str,
        clock: FakeClock,
        *,
        depends_on: tuple[str, ...] = (),
        ttl: timedelta | None = None,
        lifetime: float | None = 3600.0,
    ) -> None:
        self.name = name
        self.depends_on = depends_on
        self.ttl = ttl
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.seen: list[dict[str, str]] = []
        self.fail_with: BaseException | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def fetch(self, context: FetchContext) -> TokenData:
        with self._lock:
            self.calls += 1
            n = self.calls
            self.seen.append({dep: context[dep].access_token for dep in self.depends_on})
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT)
        if self.fail_with is not None:
            raise self.fail_with
        now = context.now()
        return TokenData(
            access_token=f"{self.name}-{n}",
            expires_at=now + timedelta(seconds=self.lifetime) if self.lifetime is not None else None,
            obtained_at=now,
        )


def run_threads(count: int, target: Callable[[int], object], *, timeout: float = WAIT) -> tuple[list[object], list[BaseException]]:
    """Run ``target(i)`` on ``count`` threads started together; return results and errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout)
            results[i] = target(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a worker thread hung"
    return results, errors


class Renewals:
    """``run_renewal`` on threads the test can join, so it knows when a background renewal has finished."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def __call__(self, job: Callable[[], None]) -> None:
        thread = threading.Thread(target=job, name="test-renewal")
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive()


def recording_offloads(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """Record every ``run_in_executor`` of ``loop`` (``asyncio.to_thread`` goes through it too)."""
    offloaded: list[Any] = []
    run_in_executor = loop.run_in_executor

    def recording(*args: Any) -> Any:
        offloaded.append(args)
        return run_in_executor(*args)

    loop.run_in_executor = recording  # type: ignore[method-assign,assignment]
    return offloaded
