"""``CacheCircuitBreaker``: one breaker state for every process, through Redis and the database cache."""

from __future__ import annotations

from typing import Any

import pytest

from requestforge_django.http.circuit_breaker import CircuitState
from requestforge_django.shared.breaker import CacheCircuitBreaker
from tests.support.wall_clock import WallClock


def pair(alias: str, clock: WallClock, threshold: int = 2) -> tuple[CacheCircuitBreaker, CacheCircuitBreaker]:
    """Two breakers on one key: what two processes build from the same settings."""
    return tuple(  # type: ignore[return-value]
        CacheCircuitBreaker(alias, "rf:breaker:partner", failure_threshold=threshold, recovery_timeout=10, name="partner", clock=clock)
        for _ in range(2)
    )


def test_failures_in_one_process_open_the_circuit_for_all(shared_alias: str) -> None:
    clock = WallClock()
    here, there = pair(shared_alias, clock)
    here.record_failure()
    there.record_failure()  # the two failures add up
    assert here.state is CircuitState.OPEN and there.state is CircuitState.OPEN
    assert not there.allow_request()
    assert there.retry_after == pytest.approx(10)


def test_exactly_one_probe_across_processes_then_recovery(shared_alias: str) -> None:
    clock = WallClock()
    here, there = pair(shared_alias, clock, threshold=1)
    here.record_failure()
    clock.now += 10
    assert here.allow_request() is True  # the probe
    assert there.allow_request() is False  # the other process waits for its outcome
    here.record_success()
    assert there.state is CircuitState.CLOSED and there.allow_request()


def test_a_success_resets_the_shared_count(shared_alias: str) -> None:
    clock = WallClock()
    here, there = pair(shared_alias, clock, threshold=2)
    here.record_failure()
    there.record_success()
    here.record_failure()
    assert here.state is CircuitState.CLOSED and here.failure_count == 1


@pytest.mark.django_db(databases=[])
def test_an_unreachable_cache_degrades_to_a_local_breaker(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        },
    }
    breaker = CacheCircuitBreaker("down", "rf:breaker:x", failure_threshold=2, recovery_timeout=10, clock=WallClock())
    assert breaker.allow_request() is True
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow_request() is False  # still protects this process
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per call
