"""Celery beat keeps every token warm: a real worker and beat on a Redis broker, a load in a third process.

Processes (all real, all on the session's redis-server):

* ``celery worker`` and ``celery beat`` (``tests.support.celery_app``), beat running
  ``refresh_due_tokens`` every 0.5 s, with ``REFRESH_AHEAD`` 1.5 s;
* a registry worker (``tests.support.registry_worker``) calling the protected API
  through ``get_client`` from 4 threads, with ``REFRESH_AHEAD`` 0.5 s, so it would only
  renew a token itself if the warm-up had let it get within half a second of expiry;
* the token server here, issuing 6-second tokens after a 600 ms delay.

"No call waits for a token endpoint" is shown without trusting wall-clock latencies
(a loaded 2-core machine can stall any call): the load process checks, after every
call, how long each token in the shared cache has left. If every token always had
more than the load process's own refresh window left, and the load process fetched
nothing, then every call was served from the cache: none could have waited.

Tokens: the ``billing`` client-credentials token and both steps of the ``partner``
pipeline (device token: a header with a 5 s TTL, app token: a body with expires_in).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, TOKEN_PATH, StubTokenEndpoint
from tests.support.registry_worker import ROOT, RegistryWorkerProcess, process_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]

LIFETIME = 6.0
FETCH_DELAY = 0.6
INTERVAL = 0.5
WORKER_REFRESH_AHEAD = 2.5
LOAD_REFRESH_AHEAD = 0.5
LOAD_SECONDS = 3 * LIFETIME + 1


@pytest.fixture
def server() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(expires_in=LIFETIME, delay=FETCH_DELAY) as server:
        yield server


@pytest.fixture
def celery(redis_server: str, redis_client: Any, server: StubTokenEndpoint, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Celery worker and a beat process; yields the environment of the load process."""
    common = {"RF_DEVICE_TTL": str(LIFETIME), "RF_WARM_INTERVAL": str(INTERVAL)}
    broker = redis_server.rsplit("/", 1)[0] + "/1"
    env = process_env(redis_server, server.url, RF_BROKER_URL=broker, RF_REFRESH_AHEAD=str(WORKER_REFRESH_AHEAD), **common)
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("worker", "beat")}
    celery_cmd = [sys.executable, "-m", "celery", "-A", "tests.support.celery_app"]
    worker = subprocess.Popen(
        [*celery_cmd, "worker", "--pool=threads", "--concurrency=2", "--loglevel=INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=env,
        stdout=logs["worker"],
        stderr=subprocess.STDOUT,
    )
    beat = subprocess.Popen(
        [*celery_cmd, "beat", "--loglevel=INFO", f"--schedule={tmp_path / 'beat-schedule'}"],
        cwd=ROOT,
        env=env,
        stdout=logs["beat"],
        stderr=subprocess.STDOUT,
    )
    try:
        yield process_env(redis_server, server.url, RF_REFRESH_AHEAD=str(LOAD_REFRESH_AHEAD), **common)
    finally:
        for proc in (beat, worker):
            proc.terminate()
        for proc in (beat, worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs.values():
            log.close()
        for name in logs:
            sys.stdout.write(f"--- celery {name} log (tail) ---\n" + "".join((tmp_path / f"{name}.log").read_text().splitlines(True)[-15:]))


def wait_until(condition: Any, seconds: float, what: str) -> None:
    """Poll ``condition`` (a cheap read of another process's state) until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def fetches_by_path(server: StubTokenEndpoint) -> dict[str, int]:
    requests = server.stats().requests
    return {path: requests.get(path, 0) for path in (TOKEN_PATH, DEVICE_PATH, APP_TOKEN_PATH)}


def issued_by_path(server: StubTokenEndpoint) -> dict[str, int]:
    """Tokens actually answered (a request in flight is counted by ``fetches_by_path`` already)."""
    issued = server.stats().issued
    return {path: issued.get(path, 0) for path in (TOKEN_PATH, DEVICE_PATH, APP_TOKEN_PATH)}


def test_no_call_waits_and_each_token_is_fetched_once_per_renewal(celery: dict[str, str], server: StubTokenEndpoint) -> None:
    # Beat warms the cold cache by itself: no request has been made yet.
    wait_until(lambda: all(issued_by_path(server).values()), 30, "the first warm-up run")
    load = RegistryWorkerProcess(celery)
    try:
        stats = load.load(LOAD_SECONDS, 4, "billing", "partner-api")
    finally:
        load.stop()

    assert stats["errors"] == [] and stats["non_200"] == 0, stats
    assert stats["calls"] > 500
    # Every token always had more than the load's refresh window left (never expired, never
    # due where the calls are made), and the load process fetched nothing: Celery did every
    # renewal and no call waited for a token endpoint.
    assert set(stats["min_left"]) == {"billing", "partner/device", "partner/app"}
    assert min(stats["min_left"].values()) > LOAD_REFRESH_AHEAD, stats["min_left"]
    assert stats["obtained_here"] == []
    print(f"calls {stats['calls']}, slowest {stats['max_ms']:.0f} ms, least time left {min(stats['min_left'].values()):.2f} s")

    # Each token was renewed once per cycle of (lifetime - refresh window), never twice by
    # two processes: the count per endpoint stays within the number of cycles that fit.
    cycles = (LOAD_SECONDS + 5) / (LIFETIME - WORKER_REFRESH_AHEAD - INTERVAL)
    for path, count in fetches_by_path(server).items():
        assert 3 <= count <= cycles + 1, (path, count, cycles)


def test_a_failing_cycle_is_signalled_and_the_next_one_recovers(
    celery: dict[str, str], server: StubTokenEndpoint, redis_client: Any
) -> None:
    wait_until(lambda: issued_by_path(server)[TOKEN_PATH] >= 1, 30, "the first warm-up run")
    first = server.stats().issued.get(TOKEN_PATH, 0)
    server.fail_with(503, times=1, path=TOKEN_PATH)  # the next renewal attempt of billing fails
    load = RegistryWorkerProcess(celery)
    try:
        stats = load.load(LIFETIME + 2, 2, "billing")
    finally:
        load.stop()
    # Calls kept succeeding on the still-valid token, without waiting and without fetching.
    assert stats["errors"] == [] and stats["non_200"] == 0, stats
    assert stats["obtained_here"] == []
    assert stats["min_left"]["billing"] > 0  # the token never expired, though one renewal cycle was lost
    # The failure was signalled in the worker (counted in Redis by its receiver) ...
    assert int(redis_client.get("rf-signals:token_refresh_failed:billing") or 0) == 1
    # ... and a later cycle recovered: a new token was issued after the failed attempt.
    stats_now = server.stats()
    assert stats_now.requests[TOKEN_PATH] >= stats_now.issued[TOKEN_PATH] + 1  # the failed attempt
    assert stats_now.issued[TOKEN_PATH] >= first + 1
