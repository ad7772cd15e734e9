"""One token fetch for 8 processes x 64 async tasks on a cold cache (real Redis, real sockets).

The async twin of the 8-process test in ``test_real_oauth_server.py``: eight spawned
worker processes (fresh interpreters, each ``django.setup()`` with the suite's
django-redis alias as the requestforge ``CACHE``) each run one event loop with 64 tasks
calling ``await (await aget_client("herd")).aget(...)`` at a loopback partner. The
processes are released together by a ``multiprocessing`` barrier, every task is created
after it, and the token endpoint takes 500 ms, so all 512 calls really wait on one
cold token. The token endpoint and the partner live in this process, so their counters
and records are the authoritative account of what went over the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from requestforge_django.testing import StubTokenEndpoint
from tests.support.async_callers import acall_task
from tests.support.oauth_server.callers import caller_pool
from tests.support.partner_server import PartnerServer, Received, Reply
from tests.support.processes import SpawnedPool
from tests.support.workers import fingerprint

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROCESSES = 8
TASKS = 64
DELAY = 0.5  # long enough that every process is released before the one fetch is answered, even on a busy machine
ORDERS_PATH = "/api/orders"


def bearer_of(received: Received) -> str:
    scheme, _, token = (received.header("Authorization") or "").partition(" ")
    return token if scheme == "Bearer" else ""


@pytest.fixture(scope="module")
def token_endpoint() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(delay=DELAY, expires_in=3600) as server:
        yield server


@pytest.fixture(scope="module")
def partner() -> Iterator[PartnerServer]:
    """The partner API: answers each call with the fingerprint of the bearer token it carried."""
    with PartnerServer(quiet=True) as server:
        server.route("GET", ORDERS_PATH, lambda received: Reply(200, {"token": fingerprint(bearer_of(received))}))
        yield server


@pytest.fixture(scope="module")
def pool(redis_server: str, token_endpoint: StubTokenEndpoint, partner: PartnerServer) -> Iterator[SpawnedPool]:
    """Eight spawned Django processes whose registry has the ``herd`` client (partner + token endpoint)."""
    auth = {
        "TYPE": "client_credentials",
        "TOKEN_URL": token_endpoint.token_url,
        "CLIENT_ID": token_endpoint.client_id,
        "CLIENT_SECRET": token_endpoint.client_secret,
    }
    herd = {"BASE_URL": partner.url, "TIMEOUT": 10, "AUTH": auth}
    with caller_pool(PROCESSES, redis_server, "rf-async", {"herd": herd}) as executor:
        yield executor


def test_8_processes_with_64_tasks_each_on_a_cold_cache_make_one_token_fetch(
    pool: SpawnedPool, token_endpoint: StubTokenEndpoint, partner: PartnerServer, redis_client: Any
) -> None:
    token_endpoint.reset_counters()
    tasks = pool.in_every_process(acall_task, "herd", ORDERS_PATH, TASKS, timeout=120)

    results = [r for t in tasks for r in t["results"]]
    assert len(results) == PROCESSES * TASKS == 512
    assert [r for r in results if r["status"] != 200] == []
    assert token_endpoint.fetches == 1
    assert token_endpoint.tokens_issued == 1

    # The right token: every call carried the one token the endpoint issued, still valid there.
    # (Compared by fingerprint: a failing assertion never shows a token.)
    received = partner.requests_to(ORDERS_PATH)
    assert len(received) == 512
    sent = {fingerprint(bearer_of(r)) for r in received}
    assert len(sent) == 1
    issued_here = all(token_endpoint.is_valid(bearer_of(r)) for r in received)
    assert issued_here, "a call carried a token the endpoint did not issue, or an expired one"
    assert {r["token"] for r in results} == sent
    # They raced: every process was released before the one fetch was answered...
    [(_, answered)] = token_endpoint.stats().fetch_times
    assert max(t["released_at"] for t in tasks) < answered
    # ...and the waiters were released by that fetch (500 ms), not by a lease timeout or a poll giving up.
    assert max(t["seconds"] for t in tasks) < DELAY + 5.0
