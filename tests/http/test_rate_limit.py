"""The token-bucket RateLimiter, timed by an injected clock and sleep (no real waiting)."""

from __future__ import annotations

import math
import threading

import pytest
import responses

from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import ConfigurationError, RateLimitExceeded
from requestforge_django.http.hooks import ErrorHookInterface
from requestforge_django.http.rate_limit import BucketState, BucketStore, RateLimiter, RateLimiterInterface, refill, reserve
from requestforge_django.http.retry import SimpleRetryStrategy

BASE = "https://partner.test"


class FakeTime:
    """A clock and a sleep in one: ``sleep`` records the wait and, if ``advance``, moves the clock."""

    def __init__(self, now: float = 1000.0, *, advance: bool = False, overshoot: float = 0.0) -> None:
        self.now = now
        self.advance = advance
        self.overshoot = overshoot
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.advance:
                self.now += seconds + self.overshoot

    def limiter(self, rate: float, burst: int | None = None, **options) -> RateLimiter:
        return RateLimiter(rate, burst, clock=self.clock, sleep=self.sleep, **options)


# -- the bucket ------------------------------------------------------------------------------
def test_starts_full_then_each_permit_waits_one_interval():
    fake = FakeTime()
    limiter = fake.limiter(rate=2, burst=3)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert fake.sleeps == []  # a burst does not sleep at all
    assert limiter.acquire() == 0.5
    assert fake.sleeps == [0.5]


@pytest.mark.parametrize(("rate", "burst"), [(10, 10), (2.5, 3), (0.5, 1), (1, 1)])
def test_default_burst_is_one_second_of_rate_at_least_one(rate, burst):
    assert RateLimiter(rate).burst == burst


def test_refills_at_rate_and_never_above_burst():
    fake = FakeTime()
    limiter = fake.limiter(rate=4, burst=2)
    limiter.acquire(2)
    assert limiter.available == 0.0
    fake.now += 0.25
    assert limiter.available == 1.0
    fake.now += 3600
    assert limiter.available == 2.0  # a long idle period earns one burst, not an hour of permits
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.25]


def test_waiters_are_served_in_arrival_order_with_evenly_spaced_turns():
    fake = FakeTime()
    limiter = fake.limiter(rate=10, burst=1)
    waits = [limiter.acquire() for _ in range(5)]  # five callers arriving at the same instant
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert limiter.available == pytest.approx(-4.0)  # four reservations outstanding
    fake.now += 0.4
    assert limiter.available == pytest.approx(0.0)


def test_late_wake_ups_do_not_slow_the_long_run_rate():
    # Every sleep oversleeps by 3 ms (an interval is 20 ms): the debt model credits it back.
    fake = FakeTime(0.0, advance=True, overshoot=0.003)
    limiter = fake.limiter(rate=50, burst=1)
    for _ in range(1000):
        limiter.acquire()
    assert fake.now == pytest.approx(999 / 50 + 0.003, abs=1e-6)


def test_max_wait_refuses_without_consuming_and_says_when_to_come_back():
    fake = FakeTime()
    limiter = fake.limiter(rate=1, burst=1, max_wait=0.5)
    assert limiter.acquire() == 0.0
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.acquire()
    assert caught.value.retry_after == pytest.approx(1.0)
    assert fake.sleeps == []
    assert limiter.available == 0.0  # nothing was reserved by the refusal
    fake.now += 0.5
    assert limiter.acquire() == pytest.approx(0.5)  # within max_wait now: reserved and slept


def test_max_wait_counts_the_queue_of_reservations_ahead():
    fake = FakeTime()
    limiter = fake.limiter(rate=10, burst=1, max_wait=0.25)
    assert [limiter.acquire() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.acquire()
    assert caught.value.retry_after == pytest.approx(0.3)


def test_a_wait_equal_to_max_wait_is_allowed():
    fake = FakeTime()
    limiter = fake.limiter(rate=4, burst=1, max_wait=0.25)
    limiter.acquire()
    assert limiter.acquire() == 0.25


def test_non_blocking_limiter_raises_instead_of_waiting():
    fake = FakeTime()
    limiter = fake.limiter(rate=5, burst=2, block=False, name="partner")
    assert limiter.acquire() == 0.0 and limiter.acquire() == 0.0
    with pytest.raises(RateLimitExceeded, match="'partner'") as caught:
        limiter.acquire()
    assert caught.value.retry_after == pytest.approx(0.2)
    assert fake.sleeps == []
    fake.now += 0.2
    assert limiter.acquire() == 0.0


def test_try_acquire_never_waits_or_reserves():
    fake = FakeTime()
    limiter = fake.limiter(rate=1, burst=2)
    assert limiter.try_acquire(2) is True
    assert limiter.try_acquire() is False
    assert limiter.available == 0.0 and fake.sleeps == []
    fake.now += 1
    assert limiter.try_acquire() is True


def test_several_permits_at_once():
    fake = FakeTime()
    limiter = fake.limiter(rate=2, burst=4)
    assert limiter.acquire(3) == 0.0
    assert limiter.acquire(3) == pytest.approx(1.0)  # one left, two owed at 2/s


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": -1}, "rate"),
        ({"rate": math.nan}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": "10"}, "rate"),
        ({"rate": 1, "burst": 0}, "burst"),
        ({"rate": 1, "burst": 1.5}, "burst"),
        ({"rate": 1, "burst": True}, "burst"),
        ({"rate": 1, "max_wait": -1}, "max_wait"),
        ({"rate": 1, "max_wait": math.nan}, "max_wait"),
        ({"rate": 1, "block": "yes"}, "block"),
        ({"rate": 1, "clock": 3}, "clock"),
        ({"rate": 1, "sleep": None}, "sleep"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigurationError) as caught:
        RateLimiter(**kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize("permits", [0, -1, 1.0, True, 6])
def test_invalid_permits_are_refused(permits):
    limiter = RateLimiter(1, 5)
    for method in (limiter.acquire, limiter.try_acquire):
        with pytest.raises(ConfigurationError) as caught:
            method(permits)
        assert caught.value.field == "permits"


# -- the pure transition ------------------------------------------------------------------------
def test_reserve_is_a_pure_function_of_state_and_time():
    state, wait = reserve(None, 10.0, 1, rate=2, burst=3)
    assert (state, wait) == (BucketState(2.0, 10.0), 0.0)
    state, wait = reserve(BucketState(-1.0, 10.0), 10.0, 1, rate=2, burst=3)
    assert (state, wait) == (BucketState(-2.0, 10.0), 1.0)
    # A clock reading from the past (another process's wall clock) refills nothing and keeps the time.
    assert refill(BucketState(0.0, 10.0), 9.0, rate=2, burst=3) == BucketState(0.0, 10.0)
    assert reserve(BucketState(0.0, 10.0), 9.0, 1, rate=2, burst=3) == (BucketState(-1.0, 10.0), 0.5)


class DictBucketStore(BucketStore):
    """What a cache-backed store looks like: the bucket lives outside the limiter."""

    def __init__(self, shared: dict, lock: threading.Lock) -> None:
        self.shared, self.lock = shared, lock

    def read(self):
        raw = self.shared.get("bucket")
        return None if raw is None else BucketState(*raw)

    def update(self, step):
        with self.lock:  # a cache lock in real life
            new, result = step(self.read())
            if new is not None:
                self.write(new)
            return result

    def write(self, value):
        self.shared["bucket"] = (value.tokens, value.updated_at)


class SharedStoreLimiter(RateLimiter):
    """The core limiter with a :class:`DictBucketStore`."""

    def __init__(self, store: dict, lock: threading.Lock, *args, **kwargs) -> None:
        super().__init__(*args, store=DictBucketStore(store, lock), **kwargs)


def test_the_bucket_can_live_in_a_shared_store():
    fake, store, lock = FakeTime(), {}, threading.Lock()
    web = SharedStoreLimiter(store, lock, 10, 2, clock=fake.clock, sleep=fake.sleep)
    worker = SharedStoreLimiter(store, lock, 10, 2, clock=fake.clock, sleep=fake.sleep)
    assert [web.acquire(), worker.acquire(), web.acquire(), worker.acquire()] == pytest.approx([0.0, 0.0, 0.1, 0.2])
    assert store["bucket"] == pytest.approx((-2.0, fake.now))


# -- threads ------------------------------------------------------------------------------------
def test_concurrent_acquires_lose_no_reservation():
    fake = FakeTime()  # frozen clock: every permit after the burst is a reservation
    limiter = fake.limiter(rate=4, burst=3)
    threads_count, per_thread = 8, 250
    barrier = threading.Barrier(threads_count)
    waits: list[float] = []
    waits_lock = threading.Lock()

    def caller() -> None:
        barrier.wait()
        mine = [limiter.acquire() for _ in range(per_thread)]
        with waits_lock:
            waits.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = threads_count * per_thread
    # Each turn handed out exactly once: 3 free permits, then one turn every 0.25 s.
    assert sorted(waits) == [0.0] * 3 + [n / 4 for n in range(1, total - 2)]
    assert limiter.available == 3 - total


# -- the client ------------------------------------------------------------------------------
class CountingLimiter(RateLimiterInterface):
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self, permits: int = 1) -> float:
        self.calls += 1
        return 0.0

    def try_acquire(self, permits: int = 1) -> bool:
        return True


@responses.activate
def test_client_consults_the_limiter_once_per_attempt_including_retries():
    limiter = CountingLimiter()
    responses.get(f"{BASE}/flaky", status=503)
    responses.get(f"{BASE}/flaky", status=503)
    responses.get(f"{BASE}/flaky", json={"ok": True})
    config = (
        HttpClientConfigBuilder()
        .with_base_url(BASE)
        .with_retry_strategy(SimpleRetryStrategy(max_retries=3, delay=0))
        .with_rate_limiter(limiter)  # type: ignore[arg-type]
        .build()
    )
    response = HttpClient(config, sleep=lambda _s: None).get("/flaky")
    assert response.status_code == 200
    assert len(responses.calls) == 3 and limiter.calls == 3


@responses.activate
def test_client_waits_for_the_limiter_before_each_send():
    fake = FakeTime(advance=True)
    limiter = fake.limiter(rate=5, burst=1)
    responses.get(f"{BASE}/items", json=[])
    client = HttpClient(HttpClientConfigBuilder().with_base_url(BASE).with_rate_limiter(limiter).build())
    for _ in range(4):
        client.get("/items")
    assert fake.sleeps == pytest.approx([0.2, 0.2, 0.2])
    assert len(responses.calls) == 4


@responses.activate
def test_a_refusing_limiter_stops_the_call_before_the_network_and_error_hooks_see_it():
    seen: list[Exception] = []

    class Seen(ErrorHookInterface):
        def on_error(self, error, context):
            seen.append(error)

    fake = FakeTime()
    limiter = fake.limiter(rate=1, burst=1, block=False)
    responses.get(f"{BASE}/items", json=[])
    client = HttpClient(HttpClientConfigBuilder().with_base_url(BASE).with_rate_limiter(limiter).with_error_hook(Seen()).build())
    client.get("/items")
    with pytest.raises(RateLimitExceeded) as caught:
        client.get("/items")
    assert caught.value.retry_after == pytest.approx(1.0)
    assert len(responses.calls) == 1
    assert seen == [caught.value]
