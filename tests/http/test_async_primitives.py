"""The async path of the breaker, the rate limiter, the retry policy and the auth hooks (plain ``asyncio.run``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from requestforge_django.http.auth import ApiKeyAuthHook, BearerTokenAuthHook, CompositeAuthHook
from requestforge_django.http.circuit_breaker import CircuitBreaker, CircuitSnapshot, CircuitState
from requestforge_django.http.exceptions import CircuitBreakerException, ConfigurationError, RateLimitExceeded
from requestforge_django.http.hooks import AuthHookInterface
from requestforge_django.http.messages import HttpMethod, HttpRequest, RequestContext
from requestforge_django.http.rate_limit import BucketState, BucketStore, RateLimiter, RateLimiterInterface, take
from requestforge_django.http.retry import RetryPolicy
from requestforge_django.http.state import StateStore

S = TypeVar("S")
R = TypeVar("R")


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ThreadRecordingStore(StateStore[S]):
    """A store that is not in memory as far as the breaker knows (think Redis): records the thread of every call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: S | None = None
        self.threads: list[int] = []

    def read(self) -> S | None:
        self.threads.append(threading.get_ident())
        return self._value

    def update(self, step: Callable[[S | None], tuple[S | None, R]]) -> R:
        self.threads.append(threading.get_ident())
        with self._lock:
            new, result = step(self._value)
            if new is not None:
                self._value = new
            return result

    def write(self, value: S) -> None:
        self.threads.append(threading.get_ident())
        self._value = value


class ThreadRecordingBucketStore(ThreadRecordingStore[BucketState], BucketStore):
    pass


async def with_ticker(work: Awaitable[R], period: float = 0.005) -> tuple[R, float, int]:
    """Run ``work`` while a ticker on the same loop measures how late its ticks are: ``(result, max lag, ticks)``."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    lag = 0.0
    ticks = 0

    async def ticker() -> None:
        nonlocal lag, ticks
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(period)
            lag = max(lag, loop.time() - before - period)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        result = await work
    finally:
        stop.set()
        await task
    return result, lag, ticks


# -- circuit breaker ---------------------------------------------------------------------------


def make_breaker(clock: FakeClock, store: StateStore[CircuitSnapshot] | None = None) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, recovery_timeout=10.0, name="payments", clock=clock, store=store)


async def ok_coro(value: str) -> str:
    await asyncio.sleep(0)
    return value


async def failing_coro() -> None:
    await asyncio.sleep(0)
    raise ConnectionError("down")


def test_acall_awaits_coroutines_and_calls_plain_functions() -> None:
    breaker = make_breaker(FakeClock())
    assert asyncio.run(breaker.acall(ok_coro, "a")) == "a"
    assert asyncio.run(breaker.acall(lambda x, y=0: x + y, 1, y=2)) == 3
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 0


def test_acall_counts_failures_opens_and_rejects_like_call() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            asyncio.run(breaker.acall(failing_coro))
    assert breaker.state is CircuitState.OPEN
    calls: list[int] = []

    async def never() -> None:  # pragma: no cover - must not run
        calls.append(1)

    with pytest.raises(CircuitBreakerException) as info:
        asyncio.run(breaker.acall(never))
    assert calls == [] and info.value.retry_after == pytest.approx(10.0)
    clock.advance(10.0)
    assert asyncio.run(breaker.acall(ok_coro, "probe")) == "probe"  # the single probe closes it
    assert breaker.failure_count == 0 and breaker.allow_request()


def test_acall_does_not_count_another_breakers_refusal_and_frees_the_probe() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10.0)

    async def refused() -> None:
        raise CircuitBreakerException("inner open")

    with pytest.raises(CircuitBreakerException, match="inner open"):
        asyncio.run(breaker.acall(refused))
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow_request()  # the probe slot was freed


def test_a_cancelled_probe_frees_the_slot_and_counts_nothing() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10.0)

    async def main() -> None:
        started = asyncio.Event()

        async def hangs() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(breaker.acall(hangs))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    snapshot = breaker.store.read()
    assert snapshot is not None and snapshot.state is CircuitState.HALF_OPEN and not snapshot.probe_in_flight
    assert snapshot.failures == 3


def test_half_open_admits_one_probe_among_many_tasks() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10.0)

    async def main() -> list[bool]:
        return await asyncio.gather(*(breaker.aallow_request() for _ in range(50)))

    assert sum(asyncio.run(main())) == 1


def test_a_store_that_is_not_in_memory_is_called_off_the_loop() -> None:
    store: ThreadRecordingStore[CircuitSnapshot] = ThreadRecordingStore()
    breaker = make_breaker(FakeClock(), store)

    async def main() -> int:
        assert await breaker.aallow_request()
        await breaker.arecord_failure()
        await breaker.arecord_success()
        with pytest.raises(ConnectionError):
            await breaker.acall(failing_coro)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert store.threads and loop_thread not in store.threads
    assert breaker.failure_count == 1


# -- rate limiter ----------------------------------------------------------------------------


def test_aacquire_waits_its_turn_without_blocking_the_loop() -> None:
    limiter = RateLimiter(rate=50.0, burst=1)  # one permit every 20 ms

    async def main() -> tuple[list[float], float, int]:
        async def burst() -> list[float]:
            return [await limiter.aacquire() for _ in range(6)]

        return await with_ticker(burst())

    waits, lag, ticks = asyncio.run(main())
    assert waits[0] == 0.0 and all(w > 0 for w in waits[1:])
    assert sum(waits) >= 0.09  # five turns of 20 ms, reserved in order
    assert ticks >= 10 and lag < 0.05, f"loop blocked for {lag * 1000:.1f} ms"


def test_aacquire_serves_concurrent_tasks_in_turn() -> None:
    limiter = RateLimiter(rate=200.0, burst=2)

    async def main() -> list[float]:
        return await asyncio.gather(*(limiter.aacquire() for _ in range(6)))

    waits = asyncio.run(main())
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == sorted(waits[2:]) and waits[-1] == pytest.approx(4 / 200.0, abs=0.005)


def test_aacquire_refuses_like_acquire() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_wait=0.1, name="partner")
    assert asyncio.run(limiter.aacquire()) == 0.0
    with pytest.raises(RateLimitExceeded) as info:
        asyncio.run(limiter.aacquire())
    assert info.value.retry_after == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ConfigurationError):
        asyncio.run(limiter.aacquire(2))


def test_aacquire_calls_a_shared_bucket_store_off_the_loop() -> None:
    store = ThreadRecordingBucketStore()
    limiter = RateLimiter(rate=1000.0, burst=5, store=store, clock=FakeClock())

    async def main() -> int:
        await asyncio.gather(*(limiter.aacquire() for _ in range(5)))
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert len(store.threads) == 5 and loop_thread not in store.threads
    assert limiter.try_acquire() is False  # the five permits came out of that store


def test_a_custom_limiter_gets_a_default_aacquire_off_the_loop() -> None:
    class Counting(RateLimiterInterface):
        def __init__(self) -> None:
            self.threads: list[int] = []

        def acquire(self, permits: int = 1) -> float:
            self.threads.append(threading.get_ident())
            return 0.0

        def try_acquire(self, permits: int = 1) -> bool:
            return True

    limiter = Counting()

    async def main() -> tuple[float, int]:
        return await limiter.aacquire(), threading.get_ident()

    waited, loop_thread = asyncio.run(main())
    assert waited == 0.0 and limiter.threads and loop_thread not in limiter.threads


def test_take_is_unchanged_by_the_async_path() -> None:
    state, (granted, wait) = take(None, 0.0, 1, rate=1.0, burst=1, block=True, max_wait=None)
    assert granted and wait == 0.0 and state == BucketState(0.0, 0.0)


# -- retry policy ------------------------------------------------------------------------------


class Flaky:
    """Raises the given exceptions in turn, then returns ``"ok"``; async when ``coroutine``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class AsyncFlaky(Flaky):
    async def run(self, *args: object, **kwargs: object) -> str:
        await asyncio.sleep(0)
        return self(*args, **kwargs)


def recorder() -> tuple[list[float], Callable[[float], Awaitable[None]]]:
    delays: list[float] = []

    async def asleep(seconds: float) -> None:
        delays.append(seconds)

    return delays, asleep


def test_aexecute_retries_coroutines_with_backoff_then_succeeds() -> None:
    delays, asleep = recorder()
    func = AsyncFlaky(ConnectionError("a"), ConnectionError("b"))
    policy = RetryPolicy(max_attempts=3, base_delay=0.5, retry_on=(ConnectionError,), asleep=asleep)
    assert asyncio.run(policy.aexecute(func.run, 1, key="v")) == "ok"
    assert func.calls == [((1,), {"key": "v"})] * 3
    assert delays == [0.5, 1.0]


def test_aexecute_reraises_the_last_exception_and_skips_unlisted_ones() -> None:
    delays, asleep = recorder()
    last = ConnectionError("third")
    func = AsyncFlaky(ConnectionError("first"), ConnectionError("second"), last)
    with pytest.raises(ConnectionError) as info:
        asyncio.run(RetryPolicy(max_attempts=3, base_delay=1.0, asleep=asleep).aexecute(func.run))
    assert info.value is last and delays == [1.0, 2.0]

    delays.clear()
    bug = AsyncFlaky(KeyError("bug"))
    with pytest.raises(KeyError):
        asyncio.run(RetryPolicy(retry_on=(ConnectionError,), asleep=asleep).aexecute(bug.run))
    assert len(bug.calls) == 1 and delays == []


def test_aexecute_accepts_a_plain_function_and_jitter() -> None:
    delays, asleep = recorder()
    policy = RetryPolicy(base_delay=2.0, jitter=True, asleep=asleep, random=lambda lo, hi: (lo + hi) / 2)
    assert asyncio.run(policy.aexecute(Flaky(OSError(), OSError()))) == "ok"
    assert delays == [1.0, 2.0]
    assert RetryPolicy(asleep=asleep) == RetryPolicy()  # asleep does not take part in equality


def test_aexecute_waits_with_asyncio_sleep_not_blocking_the_loop() -> None:
    sync_sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=4, base_delay=0.02, sleep=sync_sleeps.append)
    func = AsyncFlaky(OSError(), OSError(), OSError())

    async def main() -> tuple[str, float, int]:
        return await with_ticker(policy.aexecute(func.run))

    result, lag, ticks = asyncio.run(main())
    assert result == "ok" and sync_sleeps == []  # 20 + 40 + 80 ms awaited on the loop
    assert ticks >= 10 and lag < 0.05


# -- auth hooks ----------------------------------------------------------------------------------


def context_for(path: str = "/things") -> RequestContext:
    return RequestContext(HttpRequest(HttpMethod.GET, path))


def test_static_hooks_apply_their_header_inline_on_the_async_path() -> None:
    hook = BearerTokenAuthHook("static-secret-value")
    context = context_for()

    async def main() -> tuple[HttpRequest, bool]:
        return await hook.abefore_request(context.request, context), await hook.arefresh_auth(context)

    request, refreshed = asyncio.run(main())
    assert request.headers["Authorization"] == "Bearer static-secret-value"
    assert refreshed is False  # static credentials cannot refresh: the 401 reaches the caller


class LegacyRefreshHook(AuthHookInterface):
    """A hook written against the old ``refresh_auth()`` signature, with only sync methods."""

    def __init__(self) -> None:
        self.refresh_threads: list[int] = []

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        return request.with_headers({"X-Legacy": "1"}, sensitive=True)

    def refresh_auth(self) -> bool:  # type: ignore[override]
        self.refresh_threads.append(threading.get_ident())
        return True


def test_default_arefresh_auth_runs_the_sync_refresh_off_the_loop_with_legacy_signatures() -> None:
    hook = LegacyRefreshHook()

    async def main() -> tuple[bool, int]:
        return await hook.arefresh_auth(context_for()), threading.get_ident()

    refreshed, loop_thread = asyncio.run(main())
    assert refreshed is True and hook.refresh_threads and loop_thread not in hook.refresh_threads


def test_composite_forwards_the_async_methods() -> None:
    legacy = LegacyRefreshHook()
    composite = CompositeAuthHook(ApiKeyAuthHook("gateway-key-value"), legacy, excluded_paths=())
    context = context_for()

    async def main() -> tuple[HttpRequest, bool]:
        return await composite.abefore_request(context.request, context), await composite.arefresh_auth(context)

    request, refreshed = asyncio.run(main())
    assert request.headers["X-API-Key"] == "gateway-key-value" and request.headers["X-Legacy"] == "1"
    assert refreshed is True and len(legacy.refresh_threads) == 1


def test_composite_skips_children_excluded_from_a_path() -> None:
    composite = CompositeAuthHook(ApiKeyAuthHook("gateway-key-value"), BearerTokenAuthHook("user-token-value", excluded_paths=["/public"]))
    context = context_for("/public/x")
    request = asyncio.run(composite.abefore_request(context.request, context))
    assert request.headers["X-API-Key"] == "gateway-key-value" and "Authorization" not in request.headers
