"""Worker-process side of the credential-change test against django-oauth-toolkit.

Five spawned processes share the session's Redis and one SQLite file (the database
holding the ``Credential`` row): four *callers* keep calling a protected resource
through ``get_client``; one *changer* changes the application's secret at the
authorization server (the old one stays accepted: a stale process could still obtain
tokens with it) and then saves the ``Credential`` row, as an admin would. Every call
is reported with the wall-clock instant it started and the token fingerprint the
server saw, so the test can tell calls made after the change committed.

Coordination is by events, not sleeps: the changer waits until the callers have made
``WARM_CALLS`` calls, and the callers stop once ``AFTER_CALLS`` calls started after the
change and ``AFTER_SECONDS`` have passed since it (longer than every per-process
interval: the 0.5 s definitions check and the 1 s token memory).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from typing import Any

from tests.support.oauth_server.callers import init_caller

__all__ = ["AFTER_CALLS", "AFTER_SECONDS", "WARM_CALLS", "call_task", "change_task", "init_worker", "prepare_task"]

WARM_CALLS = 40
AFTER_CALLS = 200
AFTER_SECONDS = 1.2

_STATE: dict[str, Any] = {}


def init_worker(redis_url: str, requestforge: dict[str, Any], database: str, barrier: Any, shared: dict[str, Any]) -> None:
    """Process initializer: Django on the shared Redis and SQLite file; ``shared`` holds the events and counters."""
    init_caller(redis_url, requestforge, barrier, database)
    _STATE.update(shared, barrier=barrier)


def prepare_task(credential: str, client_id: str, secret: str) -> int:
    """Create the tables and the credential (run once, before the others)."""
    from django.core.management import call_command

    from requestforge_django.models import Credential

    call_command("migrate", verbosity=0, interactive=False)
    return Credential.objects.create(name=credential, client_id=client_id, client_secret=secret).pk


def call_task(name: str, path: str, threads: int) -> dict[str, Any]:
    """``threads`` threads call ``path`` until told to stop; every call with its start instant and token fingerprint."""
    from requestforge_django import get_client

    get_client(name).get(path)  # a warm process, holding a token of the first secret
    _STATE["barrier"].wait(timeout=60)
    warm, after, changed_at = _STATE["warm"], _STATE["after"], _STATE["changed_at"]
    calls: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run() -> None:
        client = get_client(name)  # held across the change, as a module-level client would be
        while not _STATE["stop"].is_set():
            started = time.time()
            try:
                response = client.get(path)
                body = response.json_or_none() or {}
                call = {"started": started, "status": response.status_code, "token": body.get("token")}
            except Exception as exc:
                call = {"started": started, "status": -1, "error": f"{type(exc).__name__}: {exc}"}
            with lock:
                calls.append(call)
            _count(warm, _STATE["warmed"], WARM_CALLS)
            if 0 < changed_at.value <= started:
                _count(after, _STATE["done"], AFTER_CALLS, not_before=changed_at.value + AFTER_SECONDS)

    workers = [threading.Thread(target=run, name=f"caller-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"pid": os.getpid(), "calls": calls}


def _count(counter: Any, event: Any, target: int, not_before: float = 0.0) -> None:
    with counter.get_lock():
        counter.value += 1
        reached = counter.value >= target
    if reached and time.time() >= not_before:
        event.set()


def change_task(control_url: str, client_id: str, credential: str, new_secret: str) -> dict[str, Any]:
    """Change the secret at the server (old one kept for overlap), then save the credential; report when it committed."""
    from requestforge_django.models import Credential

    _STATE["barrier"].wait(timeout=60)
    try:
        assert _STATE["warmed"].wait(30), "the callers never warmed up"
        body = json.dumps({"client_id": client_id, "secret": new_secret, "keep_old": True}).encode()
        request = urllib.request.Request(control_url, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            server = json.loads(answer.read())
        row = Credential.objects.get(name=credential)
        row.client_secret = new_secret
        saving = time.time()
        row.save()  # autocommit: committed, and its version published, when save() returns
        committed = time.time()
        _STATE["changed_at"].value = committed
        assert _STATE["done"].wait(30), "the callers never made enough calls after the change"
        return {"pid": os.getpid(), "saving": saving, "committed": committed, "server_version": server["version"]}
    finally:
        _STATE["stop"].set()
