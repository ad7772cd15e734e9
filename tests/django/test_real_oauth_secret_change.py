"""A credential's secret changed while four processes keep calling django-oauth-toolkit.

The application's secret is changed at the authorization server first, keeping the old
one accepted (as a rotation with overlap does, and so a process still holding the old
secret *could* obtain tokens with it); then the ``Credential`` row is saved. Four
spawned processes (two threads each) call a protected resource throughout, through
clients built from ``REQUESTFORGE`` with ``"CREDENTIAL"``; a fifth makes the change.

DOT's ledger files every issued token with the secret version that obtained it and
every protected call with the token it carried. The guarantee checked: **no call that
started after the save committed carried a token obtained with the old secret**, and
no old-secret token obtained after the save was ever used. See
``requestforge_django/fencing.py`` for how.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.oauth_server import BEARER_401_PATH, OAuthApp, OAuthServer
from tests.support.secret_change_workers import AFTER_CALLS, call_task, change_task, init_worker, prepare_task

pytestmark = [pytest.mark.slow, pytest.mark.redis]

CALLERS = 4
THREADS = 2
APP = OAuthApp("rotating-app", "rotating-app-secret-1")
NEW_SECRET = "rotating-app-secret-2"
FERNET_KEY = "9lrjcDK1nqbXgNjm3wz7PZ3tNGgtsM2Yq6_tV9m1nPA="


@pytest.fixture
def dot() -> Iterator[OAuthServer]:
    with OAuthServer(apps=[APP], users=[]) as server:
        yield server


@pytest.fixture
def pool(redis_server: str, redis_client: Any, dot: OAuthServer, tmp_path: Path) -> Iterator[ProcessPoolExecutor]:
    """Five spawned Django processes sharing Redis and a SQLite file holding the credential."""
    requestforge = {
        "CACHE": "redis",
        "KEY_PREFIX": f"rf-rotate-{uuid.uuid4().hex[:8]}",
        "ENCRYPTION_KEYS": [FERNET_KEY],
        "CLIENTS": {
            "partner": {
                "BASE_URL": dot.url,
                "TIMEOUT": 10,
                "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": dot.token_url, "CREDENTIAL": "partner-cred"},
            }
        },
    }
    ctx = multiprocessing.get_context("spawn")
    shared = {
        "warm": ctx.Value("i", 0),
        "after": ctx.Value("i", 0),
        "changed_at": ctx.Value("d", 0.0),
        "warmed": ctx.Event(),
        "done": ctx.Event(),
        "stop": ctx.Event(),
    }
    initargs = (redis_server, requestforge, str(tmp_path / "shared.sqlite3"), ctx.Barrier(CALLERS + 1), shared)
    executor = ProcessPoolExecutor(CALLERS + 1, mp_context=ctx, initializer=init_worker, initargs=initargs)
    try:
        yield executor
    finally:
        shared["stop"].set()
        executor.shutdown(wait=True, cancel_futures=True)


def test_no_call_after_the_change_commits_uses_a_token_obtained_with_the_old_secret(pool: ProcessPoolExecutor, dot: OAuthServer) -> None:
    pool.submit(prepare_task, "partner-cred", APP.client_id, APP.secret).result(timeout=60)
    callers = [pool.submit(call_task, "partner", BEARER_401_PATH, THREADS) for _ in range(CALLERS)]
    change = pool.submit(change_task, dot.url + "/_control/secret/", APP.client_id, "partner-cred", NEW_SECRET)
    changed = change.result(timeout=90)
    reports = [caller.result(timeout=90) for caller in callers]
    assert len({r["pid"] for r in reports} | {changed["pid"]}) == CALLERS + 1, "the tasks did not run in distinct processes"
    assert changed["server_version"] == 2

    issued = {entry["token"]: entry for entry in dot.issued(APP.client_id)}
    calls = [call for report in reports for call in report["calls"]]
    assert {c["status"] for c in calls} == {200}, [c for c in calls if c["status"] != 200][:5]
    version = {c["token"]: issued[c["token"]]["secret_version"] for c in calls}
    committed = changed["committed"]
    before = [c for c in calls if c["started"] < changed["saving"]]
    after = [c for c in calls if c["started"] >= committed]
    assert {version[c["token"]] for c in before} == {1}  # the old secret was in use until the change
    assert len(after) >= AFTER_CALLS

    stale = [c for c in after if version[c["token"]] != 2]
    shown = f"the first {stale[0]['started'] - committed:.3f} s after the commit" if stale else ""
    assert not stale, f"{len(stale)} of {len(after)} calls after the change used an old-secret token, {shown}"
    late_old = {t for t, e in issued.items() if e["secret_version"] == 1 and e["issued_at"] >= committed}
    assert not late_old & {c["token"] for c in calls}, "an old-secret token obtained after the change was used"
    assert len({c["token"] for c in after}) == 1  # one new token, shared by every process
