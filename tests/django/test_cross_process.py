"""One token fetch for many OS processes sharing DjangoCacheTokenStorage on a real redis-server.

Four spawned worker processes (fresh interpreters, each running ``django.setup()``
with a django-redis alias) ask for a token at the same moment, released together by
a barrier, from a cold cache while the token endpoint takes ~200 ms. The endpoint
lives in this process and counts requests, so its counter is the authoritative
number of fetches whatever happens inside the workers.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, TOKEN_PATH, StubTokenEndpoint
from tests.support import workers

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROCESSES = 4
DELAY = 0.2


@pytest.fixture(scope="module")
def token_server() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(delay=DELAY, expires_in=3600) as server:
        yield server


@pytest.fixture(scope="module")
def pool(redis_server: str) -> Iterator[ProcessPoolExecutor]:
    """Four long-lived worker processes (spawned: no state inherited from pytest)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    executor = ProcessPoolExecutor(max_workers=PROCESSES, mp_context=ctx, initializer=workers.init_worker, initargs=(redis_server, barrier))
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def server(token_server: StubTokenEndpoint, redis_client: Any) -> StubTokenEndpoint:
    """The shared token server with fresh counters, on a flushed (cold) Redis."""
    token_server.recover()
    token_server.reset_counters()
    return token_server


def all_processes(pool: ProcessPoolExecutor, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Run ``get_token_task`` in every worker at once (the barrier guarantees one task per process)."""
    futures = [pool.submit(workers.get_token_task, spec) for _ in range(PROCESSES)]
    results = [future.result(timeout=90) for future in futures]
    assert len({r["pid"] for r in results}) == PROCESSES, "the tasks did not run in distinct processes"
    return results


def test_token_manager_fetches_once_for_all_processes(pool: ProcessPoolExecutor, server: StubTokenEndpoint) -> None:
    spec = {"kind": "manager", "token_url": server.token_url, "cache_key": f"cold-{uuid.uuid4().hex}"}
    results = all_processes(pool, spec)
    assert server.stats().token_requests == 1
    assert len({r["fingerprint"] for r in results}) == 1  # everybody got the same token
    # The waiters were released by the fetch, not by a timeout.
    assert max(r["seconds"] for r in results) < DELAY + 2.0


def test_invalidation_in_one_process_causes_exactly_one_refetch(pool: ProcessPoolExecutor, server: StubTokenEndpoint) -> None:
    # local_ttl=0: every process re-reads Redis on each call, so the invalidation is seen at
    # once (by default it is seen within local_ttl; tests/tokens/test_local_memo.py covers that).
    spec = {"kind": "manager", "token_url": server.token_url, "cache_key": f"inv-{uuid.uuid4().hex}", "local_ttl": 0}
    first = all_processes(pool, spec)
    assert server.stats().token_requests == 1
    pool.submit(workers.invalidate_task, spec).result(timeout=60)
    second = all_processes(pool, spec)
    assert server.stats().token_requests == 2
    fingerprints = {r["fingerprint"] for r in second}
    assert len(fingerprints) == 1  # every process dropped the old token and shares the new one
    assert fingerprints.isdisjoint({r["fingerprint"] for r in first})


def test_two_step_pipeline_fetches_each_step_once(pool: ProcessPoolExecutor, server: StubTokenEndpoint) -> None:
    spec = {"kind": "pipeline", "base_url": server.url, "cache_key_prefix": f"pipe-{uuid.uuid4().hex}"}
    results = all_processes(pool, spec)
    stats = server.stats()
    assert stats.requests.get(DEVICE_PATH) == 1
    assert stats.requests.get(APP_TOKEN_PATH) == 1
    assert stats.requests.get(TOKEN_PATH, 0) == 0
    assert len({r["fingerprint"] for r in results}) == 1
