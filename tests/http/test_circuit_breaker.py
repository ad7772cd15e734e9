"""The circuit breaker's state machine, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from requestforge_django.http.circuit_breaker import CircuitBreaker, CircuitSnapshot, CircuitState
from requestforge_django.http.exceptions import CircuitBreakerException, ConfigurationError
from requestforge_django.http.state import StateStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, threshold: int = 3, timeout: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, recovery_timeout=timeout, name="payments", clock=clock)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN


def boom() -> None:
    raise ConnectionError("down")


# -- closed -> open --------------------------------------------------------------------


def test_starts_closed(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
    assert breaker.retry_after == 0.0
    assert breaker.allow_request() is True


def test_opens_at_threshold(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 2
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.failure_count == 3
    assert breaker.allow_request() is False
    assert breaker.retry_after == 10.0


def test_threshold_of_one_opens_on_first_failure(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN


def test_success_resets_consecutive_count(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.failure_count == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED  # 2 consecutive, not 4 in total


# -- open -> half-open (lazily) ----------------------------------------------------------


def test_half_open_only_after_timeout_on_the_clock(clock: FakeClock) -> None:
    breaker = make(clock, timeout=10.0)
    open_breaker(breaker)
    clock.advance(9.5)
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after == pytest.approx(0.5)
    assert breaker.allow_request() is False
    clock.advance(0.5)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.retry_after == 0.0


def test_timedelta_recovery_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=timedelta(minutes=1), clock=clock)
    assert breaker.recovery_timeout == 60.0
    breaker.record_failure()
    clock.advance(59)
    assert breaker.state is CircuitState.OPEN
    clock.advance(1)
    assert breaker.state is CircuitState.HALF_OPEN


def test_half_open_admits_a_single_probe(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)
    assert breaker.allow_request() is True
    assert breaker.allow_request() is False
    assert breaker.allow_request() is False
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.retry_after == 10.0  # until a lost probe would be replaced


def test_single_probe_under_concurrency(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)
    threads_count = 20
    barrier = threading.Barrier(threads_count)
    results: list[bool] = []
    results_lock = threading.Lock()

    def contend() -> None:
        barrier.wait()
        allowed = breaker.allow_request()
        with results_lock:
            results.append(allowed)

    threads = [threading.Thread(target=contend) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == threads_count
    assert results.count(True) == 1


def test_single_probe_under_concurrency_through_call(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)
    threads_count = 20
    barrier = threading.Barrier(threads_count)
    release_probe = threading.Event()
    outcomes: list[str] = []
    changed = threading.Condition()

    def probe() -> str:
        release_probe.wait(timeout=10)  # keep the probe in flight until everyone else was turned away
        return "ok"

    def contend() -> None:
        barrier.wait()
        try:
            outcome = breaker.call(probe)
        except CircuitBreakerException:
            outcome = "rejected"
        with changed:
            outcomes.append(outcome)
            changed.notify_all()

    threads = [threading.Thread(target=contend) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    with changed:
        assert changed.wait_for(lambda: outcomes.count("rejected") == threads_count - 1, timeout=10)
    assert breaker.state is CircuitState.HALF_OPEN
    release_probe.set()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["ok"] + ["rejected"] * (threads_count - 1)
    assert breaker.state is CircuitState.CLOSED


def test_probe_success_closes_and_resets(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)
    assert breaker.allow_request() is True
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
    assert breaker.allow_request() is True
    assert breaker.allow_request() is True


def test_probe_failure_reopens_and_restarts_the_timeout(clock: FakeClock) -> None:
    breaker = make(clock, timeout=10.0)
    open_breaker(breaker)
    clock.advance(15)
    assert breaker.allow_request() is True
    clock.advance(2)  # the probe took 2s to fail
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after == 10.0  # measured from the probe's failure, not from the first opening
    clock.advance(9.9)
    assert breaker.state is CircuitState.OPEN
    assert breaker.allow_request() is False
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow_request() is True


def test_lost_probe_is_replaced_after_recovery_timeout(clock: FakeClock) -> None:
    breaker = make(clock, timeout=10.0)
    open_breaker(breaker)
    clock.advance(10)
    assert breaker.allow_request() is True  # this probe never reports back
    clock.advance(9)
    assert breaker.allow_request() is False
    clock.advance(1)
    assert breaker.allow_request() is True


def test_record_ignored_frees_the_probe_slot(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)
    assert breaker.allow_request() is True
    breaker.record_ignored()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow_request() is True


def test_straggler_outcomes_while_open_are_ignored(clock: FakeClock) -> None:
    breaker = make(clock, timeout=10.0)
    open_breaker(breaker)
    clock.advance(5)
    breaker.record_failure()  # a slow call admitted before the circuit opened
    assert breaker.retry_after == 5.0  # the timeout was not restarted
    breaker.record_success()
    assert breaker.state is CircuitState.OPEN


# -- call() ------------------------------------------------------------------------------


def test_call_returns_and_records_success(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.record_failure()
    assert breaker.call(lambda a, b=0: a + b, 1, b=2) == 3
    assert breaker.failure_count == 0


def test_call_records_failures_and_rejects_when_open(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2, timeout=10.0)
    calls = []

    def failing() -> None:
        calls.append(1)
        boom()

    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(failing)
    clock.advance(4)
    with pytest.raises(CircuitBreakerException) as info:
        breaker.call(failing)
    assert len(calls) == 2  # rejected without running
    assert info.value.retry_after == 6.0
    assert "payments" in str(info.value)


def test_circuit_breaker_exception_inside_func_is_not_a_failure(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)
    downstream = CircuitBreaker(failure_threshold=1, clock=clock)
    downstream.record_failure()
    for _ in range(3):
        with pytest.raises(CircuitBreakerException):
            breaker.call(downstream.call, lambda: None)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0


def test_circuit_breaker_exception_from_probe_frees_the_slot(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)

    def rejected_elsewhere() -> None:
        raise CircuitBreakerException()

    with pytest.raises(CircuitBreakerException):
        breaker.call(rejected_elsewhere)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_probe_failure_through_call_reopens(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(10)
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    assert breaker.state is CircuitState.OPEN
    assert breaker.failure_count == 4


# -- misc --------------------------------------------------------------------------------


def test_reset(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
    assert breaker.allow_request() is True


def test_repr(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.record_failure()
    assert repr(breaker) == "CircuitBreaker(name='payments', state=CLOSED, failures=1)"
    open_breaker(breaker)
    assert "state=OPEN" in repr(breaker)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"recovery_timeout": 0}, "recovery_timeout"),
        ({"recovery_timeout": -1.0}, "recovery_timeout"),
        ({"recovery_timeout": timedelta(0)}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
    ],
)
def test_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreaker(**kwargs)
    assert info.value.field == field


class RecordingStore(StateStore[CircuitSnapshot]):
    """What a shared-cache store looks like: the snapshot outside the breaker, every write recorded."""

    def __init__(self, shared: dict) -> None:
        self.shared = shared
        self.writes: list[CircuitSnapshot] = []
        self.lock = threading.Lock()  # a cache lock in real life

    def read(self) -> CircuitSnapshot | None:
        return self.shared.get("snapshot")

    def update(self, step):  # type: ignore[no-untyped-def]
        with self.lock:
            new, result = step(self.read())
            if new is not None:
                self.write(new)
            return result

    def write(self, value: CircuitSnapshot) -> None:
        self.writes.append(value)
        self.shared["snapshot"] = value


class RecordingBreaker(CircuitBreaker):
    """The core breaker with a :class:`RecordingStore` on ``store``."""

    store: RecordingStore

    def __init__(self, store: dict, **kwargs: object) -> None:
        super().__init__(store=RecordingStore(store), **kwargs)  # type: ignore[arg-type]

    @property
    def writes(self) -> list[CircuitSnapshot]:
        return self.store.writes


def test_state_lives_only_in_the_store(clock: FakeClock) -> None:
    shared: dict = {}
    first = RecordingBreaker(shared, failure_threshold=2, recovery_timeout=10.0, clock=clock)
    second = RecordingBreaker(shared, failure_threshold=2, recovery_timeout=10.0, clock=clock)
    first.record_failure()
    second.record_failure()
    assert first.state is CircuitState.OPEN  # both instances see one state
    assert shared["snapshot"] == CircuitSnapshot(CircuitState.OPEN, failures=2, opened_at=500.0)
    writes = len(first.writes)
    assert first.state is CircuitState.OPEN and first.allow_request() is False
    assert len(first.writes) == writes  # reads and refusals write nothing
    clock.advance(10)
    assert second.allow_request() is True
    assert first.allow_request() is False  # the probe claim is shared too
    first.record_success()
    assert second.state is CircuitState.CLOSED
