"""Retry strategies and RetryPolicy: every rule, without sleeping."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from requestforge_django.http.circuit_breaker import CircuitBreaker
from requestforge_django.http.exceptions import (
    CircuitBreakerException,
    ConfigurationError,
    ConnectionException,
    HttpClientException,
    SSLException,
    TimeoutException,
)
from requestforge_django.http.messages import HttpRequest, HttpResponse, RequestContext
from requestforge_django.http.retry import (
    DEFAULT_RETRY_STATUSES,
    CircuitBreakerRetryStrategy,
    ExponentialBackoffRetryStrategy,
    NoRetryStrategy,
    RetryPolicy,
    RetryStrategyInterface,
    SimpleRetryStrategy,
    parse_retry_after,
)

STRATEGIES = [SimpleRetryStrategy, ExponentialBackoffRetryStrategy]


def ctx(method: str = "GET", attempt: int = 0, headers: dict[str, str] | None = None) -> RequestContext:
    return RequestContext(HttpRequest(method, "https://api.example.com/things", headers=headers or {}), attempt=attempt)


def resp(status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status_code=status, headers=headers or {}, content=b"", url="https://api.example.com/things")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- should_retry ---------------------------------------------------------------------


def test_default_statuses() -> None:
    assert frozenset({429, 502, 503, 504}) == DEFAULT_RETRY_STATUSES


@pytest.mark.parametrize("cls", STRATEGIES)
@pytest.mark.parametrize("status", sorted(DEFAULT_RETRY_STATUSES))
def test_retries_default_statuses(cls: type, status: int) -> None:
    assert cls().should_retry(ctx(), response=resp(status)) is True


@pytest.mark.parametrize("cls", STRATEGIES)
@pytest.mark.parametrize("status", [200, 201, 301, 400, 401, 404, 500, 501])
def test_does_not_retry_other_statuses(cls: type, status: int) -> None:
    assert cls().should_retry(ctx(), response=resp(status)) is False


@pytest.mark.parametrize("cls", STRATEGIES)
def test_custom_status_list(cls: type) -> None:
    strategy = cls(retry_on_status={500})
    assert strategy.retry_on_status == frozenset({500})
    assert strategy.should_retry(ctx(), response=resp(500)) is True
    assert strategy.should_retry(ctx(), response=resp(503)) is False


@pytest.mark.parametrize("cls", STRATEGIES)
@pytest.mark.parametrize("exc", [ConnectionException("refused"), TimeoutException("slow")])
def test_retries_transport_exceptions(cls: type, exc: Exception) -> None:
    assert cls().should_retry(ctx(), exception=exc) is True


@pytest.mark.parametrize("cls", STRATEGIES)
@pytest.mark.parametrize("exc", [ValueError("bug"), HttpClientException("generic"), CircuitBreakerException()])
def test_does_not_retry_other_exceptions(cls: type, exc: Exception) -> None:
    assert cls().should_retry(ctx(), exception=exc) is False


@pytest.mark.parametrize("cls", STRATEGIES)
def test_ssl_errors_are_not_retried_although_they_are_connection_errors(cls: type) -> None:
    assert isinstance(SSLException("bad cert"), ConnectionException)
    assert cls().should_retry(ctx(), exception=SSLException("bad cert")) is False


def test_ssl_errors_retried_only_when_listed_explicitly() -> None:
    strategy = SimpleRetryStrategy(retry_on_exceptions=(SSLException,))
    assert strategy.should_retry(ctx(), exception=SSLException("flaky middlebox")) is True


def test_custom_exception_types_single_class_accepted() -> None:
    strategy = SimpleRetryStrategy(retry_on_exceptions=ValueError)
    assert strategy.retry_on_exceptions == (ValueError,)
    assert strategy.should_retry(ctx(), exception=ValueError()) is True
    assert strategy.should_retry(ctx(), exception=ConnectionException("x")) is False


@pytest.mark.parametrize("cls", STRATEGIES)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_methods_not_retried(cls: type, method: str) -> None:
    strategy = cls()
    assert strategy.should_retry(ctx(method), response=resp(503)) is False
    assert strategy.should_retry(ctx(method), exception=ConnectionException("reset")) is False


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_methods_retried(method: str) -> None:
    assert SimpleRetryStrategy().should_retry(ctx(method), response=resp(503)) is True


@pytest.mark.parametrize("cls", STRATEGIES)
def test_idempotency_key_makes_post_retryable(cls: type) -> None:
    context = ctx("POST", headers={"idempotency-key": "abc-123"})  # case-insensitive lookup
    assert cls().should_retry(context, response=resp(503)) is True
    assert cls().should_retry(context, exception=TimeoutException("slow")) is True


@pytest.mark.parametrize("cls", STRATEGIES)
def test_retry_non_idempotent_opt_in(cls: type) -> None:
    assert cls(retry_non_idempotent=True).should_retry(ctx("POST"), response=resp(503)) is True


@pytest.mark.parametrize("cls", STRATEGIES)
def test_max_retries_bounds_attempts(cls: type) -> None:
    strategy = cls(max_retries=2)
    assert strategy.should_retry(ctx(attempt=0), response=resp(503)) is True
    assert strategy.should_retry(ctx(attempt=1), response=resp(503)) is True
    assert strategy.should_retry(ctx(attempt=2), response=resp(503)) is False
    assert strategy.should_retry(ctx(attempt=2), exception=ConnectionException("x")) is False


@pytest.mark.parametrize("cls", STRATEGIES)
def test_zero_max_retries_never_retries(cls: type) -> None:
    assert cls(max_retries=0).should_retry(ctx(), response=resp(503)) is False


def test_nothing_to_judge_is_not_retried() -> None:
    assert SimpleRetryStrategy().should_retry(ctx()) is False


# -- delays ----------------------------------------------------------------------------


def test_simple_fixed_delay() -> None:
    strategy = SimpleRetryStrategy(delay=2.5)
    assert [strategy.get_delay(ctx(attempt=n)) for n in range(3)] == [2.5, 2.5, 2.5]


def test_exponential_without_jitter_uses_the_cap() -> None:
    strategy = ExponentialBackoffRetryStrategy(base_delay=0.5, multiplier=2.0, max_delay=3.0, jitter=False)
    assert [strategy.get_delay(ctx(attempt=n)) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_exponential_full_jitter_draws_between_zero_and_cap() -> None:
    calls: list[tuple[float, float]] = []

    def fake_uniform(low: float, high: float) -> float:
        calls.append((low, high))
        return high * 0.25

    strategy = ExponentialBackoffRetryStrategy(base_delay=1.0, multiplier=3.0, max_delay=20.0, random=fake_uniform)
    delays = [strategy.get_delay(ctx(attempt=n)) for n in range(4)]
    assert calls == [(0.0, 1.0), (0.0, 3.0), (0.0, 9.0), (0.0, 20.0)]
    assert delays == [0.25, 0.75, 2.25, 5.0]


def test_exponential_jitter_real_random_stays_in_bounds() -> None:
    strategy = ExponentialBackoffRetryStrategy(base_delay=1.0, max_delay=4.0)
    for attempt in range(6):
        cap = min(4.0, 2.0**attempt)
        assert all(0.0 <= strategy.get_delay(ctx(attempt=attempt)) <= cap for _ in range(50))


def test_exponential_huge_attempt_does_not_overflow() -> None:
    strategy = ExponentialBackoffRetryStrategy(max_retries=10_000, max_delay=7.0, jitter=False)
    assert strategy.get_delay(ctx(attempt=5000)) == 7.0


def test_random_source_does_not_affect_equality_or_repr() -> None:
    a = ExponentialBackoffRetryStrategy(random=lambda lo, hi: lo)
    b = ExponentialBackoffRetryStrategy()
    assert a == b
    assert hash(a) == hash(b)
    assert "random" not in repr(a)


def test_strategies_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SimpleRetryStrategy().max_retries = 9  # type: ignore[misc]


@pytest.mark.parametrize("cls", STRATEGIES)
def test_retry_after_seconds(cls: type) -> None:
    assert cls().get_delay(ctx(), resp(503, {"Retry-After": "7"})) == 7.0


@pytest.mark.parametrize("cls", STRATEGIES)
def test_retry_after_capped_by_max_delay(cls: type) -> None:
    assert cls(max_delay=10.0).get_delay(ctx(), resp(429, {"Retry-After": "3600"})) == 10.0


def test_retry_after_http_date_in_the_future() -> None:
    future = datetime.now(timezone.utc) + timedelta(seconds=20)
    delay = SimpleRetryStrategy().get_delay(ctx(), resp(503, {"retry-after": format_datetime(future, usegmt=True)}))
    assert 18.0 <= delay <= 20.0  # the header has one-second resolution


def test_retry_after_http_date_in_the_past_means_now() -> None:
    assert SimpleRetryStrategy(delay=5.0).get_delay(ctx(), resp(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0


@pytest.mark.parametrize("garbage", ["soon", "-5", "", "  ", "1e3", "Someday, 99 Foo 2015 07:28:00 GMT"])
@pytest.mark.parametrize("cls", STRATEGIES)
def test_garbage_retry_after_falls_back_to_own_delay(cls: type, garbage: str) -> None:
    strategy = cls(delay=1.5) if cls is SimpleRetryStrategy else cls(base_delay=1.5, jitter=False)
    assert strategy.get_delay(ctx(), resp(503, {"Retry-After": garbage})) == 1.5


def test_retry_after_ignored_when_not_respected() -> None:
    strategy = SimpleRetryStrategy(delay=2.0, respect_retry_after=False)
    assert strategy.get_delay(ctx(), resp(503, {"Retry-After": "9"})) == 2.0


def test_own_delay_capped_by_max_delay_for_simple_too() -> None:
    assert SimpleRetryStrategy(delay=2.0, max_delay=2.0).get_delay(ctx()) == 2.0


def test_parse_retry_after_with_injected_now() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 -0000", now=now) == 30.0  # naive result, assumed GMT
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(" 120 ", now=now) == 120.0
    assert parse_retry_after("1.5", now=now) == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("tomorrow-ish") is None


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"base_delay": -0.1}, "base_delay"),
        ({"base_delay": "1"}, "base_delay"),
        ({"max_delay": -1.0}, "max_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"base_delay": 5.0, "max_delay": 1.0}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"multiplier": float("nan")}, "multiplier"),
        ({"retry_on_status": {503, "504"}}, "retry_on_status"),
        ({"retry_on_status": {True}}, "retry_on_status"),
        ({"retry_on_status": {42}}, "retry_on_status"),
        ({"retry_on_exceptions": (ValueError, "oops")}, "retry_on_exceptions"),
    ],
)
def test_exponential_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ExponentialBackoffRetryStrategy(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"delay": -1}, "delay"),
        ({"delay": 10.0, "max_delay": 5.0}, "max_delay"),
        ({"retry_on_status": [503.0]}, "retry_on_status"),
    ],
)
def test_simple_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SimpleRetryStrategy(**kwargs)
    assert info.value.field == field


def test_validation_normalises_values() -> None:
    strategy = ExponentialBackoffRetryStrategy(retry_on_status=[503, 503], base_delay=1, multiplier=3)
    assert strategy.retry_on_status == frozenset({503})
    assert isinstance(strategy.base_delay, float)
    assert isinstance(strategy.multiplier, float)
    assert hash(strategy) == hash(ExponentialBackoffRetryStrategy(retry_on_status={503}, base_delay=1.0, multiplier=3.0))


def test_strategies_implement_the_interface() -> None:
    for strategy in (SimpleRetryStrategy(), ExponentialBackoffRetryStrategy()):
        assert isinstance(strategy, RetryStrategyInterface)
    assert pickle.loads(pickle.dumps(SimpleRetryStrategy(max_retries=5))) == SimpleRetryStrategy(max_retries=5)


# -- CircuitBreakerRetryStrategy --------------------------------------------------------


def test_circuit_breaker_strategy_delegates_while_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=FakeClock())
    strategy = CircuitBreakerRetryStrategy(breaker, inner=SimpleRetryStrategy(max_retries=4, delay=2.0))
    assert strategy.circuit_breaker is breaker
    assert strategy.max_retries == 4
    assert strategy.should_retry(ctx(), response=resp(503)) is True
    assert strategy.should_retry(ctx(), response=resp(404)) is False
    assert strategy.get_delay(ctx(), resp(503, {"Retry-After": "3"})) == 3.0
    assert strategy.get_delay(ctx()) == 2.0


def test_circuit_breaker_strategy_refuses_when_open_and_resumes_lazily() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10.0, clock=clock)
    strategy = CircuitBreakerRetryStrategy(breaker, inner=SimpleRetryStrategy())
    breaker.record_failure()
    breaker.record_failure()
    assert strategy.should_retry(ctx(), response=resp(503)) is False
    assert strategy.should_retry(ctx(), exception=ConnectionException("x")) is False
    clock.advance(10.0)  # half-open now: the next attempt may be the probe
    assert strategy.should_retry(ctx(), response=resp(503)) is True


def test_circuit_breaker_strategy_default_inner_never_retries() -> None:
    strategy = CircuitBreakerRetryStrategy(CircuitBreaker())
    assert strategy.inner == NoRetryStrategy()
    assert strategy.max_retries == 0
    assert strategy.should_retry(ctx(), response=resp(503)) is False


def test_circuit_breaker_strategy_validation() -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreakerRetryStrategy("not a breaker")  # type: ignore[arg-type]
    assert info.value.field == "circuit_breaker"
    with pytest.raises(ConfigurationError) as info:
        CircuitBreakerRetryStrategy(CircuitBreaker(), inner=object())  # type: ignore[arg-type]
    assert info.value.field == "inner"


# -- RetryPolicy ----------------------------------------------------------------------


class Flaky:
    """Raises the given exceptions in turn, then returns ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_policy_delay_for_doubles_and_caps() -> None:
    policy = RetryPolicy(base_delay=timedelta(seconds=1), max_delay=timedelta(seconds=5))
    assert [policy.delay_for(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert RetryPolicy(base_delay=0.25).delay_for(3) == 2.0
    with pytest.raises(ValueError):
        policy.delay_for(-1)


def test_policy_succeeds_first_time_without_sleeping() -> None:
    sleeps: list[float] = []
    func = Flaky()
    assert RetryPolicy(sleep=sleeps.append).execute(func, 1, key="v") == "ok"
    assert func.calls == [((1,), {"key": "v"})]
    assert sleeps == []


def test_policy_retries_with_backoff_then_succeeds() -> None:
    sleeps: list[float] = []
    func = Flaky(ConnectionError("a"), ConnectionError("b"))
    policy = RetryPolicy(max_attempts=3, base_delay=0.5, retry_on=(ConnectionError,), sleep=sleeps.append)
    assert policy.execute(func) == "ok"
    assert len(func.calls) == 3
    assert sleeps == [0.5, 1.0]


def test_policy_reraises_last_exception_when_exhausted() -> None:
    sleeps: list[float] = []
    last = ConnectionError("third")
    func = Flaky(ConnectionError("first"), ConnectionError("second"), last)
    with pytest.raises(ConnectionError) as info:
        RetryPolicy(max_attempts=3, base_delay=1.0, sleep=sleeps.append).execute(func)
    assert info.value is last
    assert sleeps == [1.0, 2.0]  # no sleep after the final attempt


def test_policy_does_not_retry_unlisted_exceptions() -> None:
    sleeps: list[float] = []
    func = Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        RetryPolicy(retry_on=(ConnectionError,), sleep=sleeps.append).execute(func)
    assert len(func.calls) == 1
    assert sleeps == []


def test_policy_single_attempt_never_sleeps() -> None:
    sleeps: list[float] = []
    with pytest.raises(RuntimeError):
        RetryPolicy(max_attempts=1, sleep=sleeps.append).execute(Flaky(RuntimeError()))
    assert sleeps == []


def test_policy_jitter_uses_injected_random() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(base_delay=2.0, jitter=True, sleep=sleeps.append, random=lambda lo, hi: (lo + hi) / 2)
    policy.execute(Flaky(OSError(), OSError()))
    assert sleeps == [1.0, 2.0]


def test_policy_is_a_frozen_value() -> None:
    assert RetryPolicy(base_delay=timedelta(seconds=2)) == RetryPolicy(base_delay=2.0, sleep=lambda s: None)
    assert RetryPolicy(retry_on=ValueError).retry_on == (ValueError,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_attempts = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"base_delay": timedelta(seconds=-1)}, "base_delay"),
        ({"base_delay": 2.0, "max_delay": 1.0}, "max_delay"),
        ({"retry_on": ()}, "retry_on"),
        ({"retry_on": (42,)}, "retry_on"),
    ],
)
def test_policy_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == field


def test_policy_as_strategy() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=timedelta(milliseconds=250), retry_on=(TimeoutException,), max_delay=2.0)
    strategy = policy.as_strategy()
    assert strategy == ExponentialBackoffRetryStrategy(
        max_retries=3, base_delay=0.25, max_delay=2.0, multiplier=2.0, jitter=False, retry_on_exceptions=(TimeoutException,)
    )
    assert [strategy.get_delay(ctx(attempt=n)) for n in range(3)] == [policy.delay_for(n) for n in range(3)]
    assert strategy.should_retry(ctx(attempt=2), exception=TimeoutException("x")) is True
    assert strategy.should_retry(ctx(attempt=3), exception=TimeoutException("x")) is False


def test_policy_as_strategy_without_max_delay_caps_at_thirty_seconds() -> None:
    assert RetryPolicy().as_strategy().max_delay == 30.0
    assert RetryPolicy(base_delay=45.0).as_strategy().max_delay == 45.0
