"""Two OS processes: a token invalidated by ``manage.py requestforge_invalidate`` in one is refetched, once, by the other.

Process B is a long-lived registry worker (``tests.support.registry_worker``) that
calls the protected API through ``get_client``; process A is a fresh
``python -m django requestforge_invalidate`` run. Both use the same settings module
on the session's redis-server; the token server lives here and counts fetches.

B keeps using the token it last read for at most ``local_ttl`` (1 s) after the
invalidation (documented in ``tokens/single_flight.py``), so the test asks B to call
until it reports a different token instead of sleeping a guessed amount.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from requestforge_django.testing import StubTokenEndpoint
from tests.support.registry_worker import ROOT, RegistryWorkerProcess, process_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def server() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(expires_in=3600) as server:
        yield server


@pytest.fixture
def env(redis_server: str, redis_client: Any, server: StubTokenEndpoint) -> dict[str, str]:
    """Environment of the Django processes: the session's Redis (flushed) and this test's token server."""
    return process_env(redis_server, server.url)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("client", "target", "fetches_per_token"), [("billing", "billing", 1), ("partner-api", "partner", 2)])
def test_invalidated_in_one_process_refetched_once_by_the_other(
    env: dict[str, str], server: StubTokenEndpoint, client: str, target: str, fetches_per_token: int
) -> None:
    worker = RegistryWorkerProcess(env)
    try:
        first = worker.call(client)
        assert first["status"] == 200
        assert server.stats().fetches == fetches_per_token

        result = manage(env, "requestforge_invalidate", target)
        assert result.returncode == 0, result.stderr
        assert f"Invalidated {target}" in result.stdout

        deadline = time.monotonic() + 10
        answer = worker.call(client)
        while answer["token"] == first["token"]:
            assert answer["status"] == 200  # the old token is still accepted by the partner meanwhile
            assert time.monotonic() < deadline, "the worker never noticed the invalidation"
            answer = worker.call(client)
        assert answer["status"] == 200
        for _ in range(20):  # and it keeps the new token: exactly one refetch
            assert worker.call(client)["token"] == answer["token"]
        assert server.stats().fetches == 2 * fetches_per_token
    finally:
        worker.stop()


def test_unknown_name_exits_non_zero_in_a_real_process(env: dict[str, str]) -> None:
    result = manage(env, "requestforge_invalidate", "nope")
    assert result.returncode == 1
    assert "No token-backed client or pipeline named 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
