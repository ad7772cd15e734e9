"""The client side of the DOT tests: code that runs in spawned worker processes.

Each worker is a fresh interpreter configured like a deployed Django process
(:func:`init_caller`): the suite's django-redis alias as the requestforge ``CACHE``,
and a ``REQUESTFORGE`` setting naming clients that point at the DOT server. Tasks
call a client from the registry (``get_client(name)``) and report plain data: the
statuses and the token *fingerprints* the server answered, never a token.

Tasks that start together wait on a ``multiprocessing`` barrier shared by the pool
(one task per process), so callers in different processes really race. The test side
makes that pool with :func:`caller_pool`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

from tests.support.processes import SpawnedPool

__all__ = ["caller_pool", "init_caller", "call_task", "load_task"]

_BARRIER: Any = None


def init_caller(redis_url: str, requestforge: dict[str, Any], barrier: Any = None, database: str = ":memory:") -> None:
    """Process initializer: Django with the ``"redis"`` alias on ``redis_url`` and ``requestforge`` as ``REQUESTFORGE``.

    ``database``: the SQLite file shared with the test when definitions or credentials
    live in the database (its own empty in-memory database otherwise).
    """
    global _BARRIER
    import django
    from django.conf import settings

    from tests.support.django_caches import REDIS_ALIAS, redis_cache_config

    settings.configure(
        SECRET_KEY="tests-only-not-secret",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "requestforge_django"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, REDIS_ALIAS: redis_cache_config(redis_url)},
        REQUESTFORGE=requestforge,
        LOGGING_CONFIG=None,
    )
    django.setup()
    _BARRIER = barrier


def caller_pool(processes: int, redis_url: str, key_prefix: str, clients: dict[str, Any], **setting: Any) -> SpawnedPool:
    """``processes`` spawned callers (:func:`init_caller`) whose ``REQUESTFORGE`` has ``clients``, with ``setting`` added.

    The cache is the suite's Redis under a fresh ``KEY_PREFIX`` (``key_prefix`` plus a random
    suffix), so each pool starts cold and shares its tokens with no other.
    """
    requestforge = {"CACHE": "redis", "KEY_PREFIX": f"{key_prefix}-{uuid.uuid4().hex[:8]}", **setting, "CLIENTS": clients}
    return SpawnedPool(processes, init_caller, redis_url, requestforge)


def _call(name: str, path: str) -> dict[str, Any]:
    from requestforge_django import get_client

    try:
        response = get_client(name).get(path)
    except Exception as exc:  # reported, not raised: the test asserts on it
        return {"status": -1, "error": f"{type(exc).__name__}: {exc}"}
    body = response.json_or_none() if response.status_code == 200 else None
    return {"status": response.status_code, "token": (body or {}).get("token"), "secret_version": (body or {}).get("secret_version")}


def _run_threads(threads: int, target: Any) -> None:
    workers = [threading.Thread(target=target, name=f"caller-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def call_task(name: str, path: str, threads: int) -> dict[str, Any]:
    """``threads`` threads call ``path`` once each, at the same moment as the other processes' tasks."""
    from requestforge_django import get_client

    get_client(name)  # built before the barrier: a warm process, a cold token cache
    if _BARRIER is not None:
        _BARRIER.wait(timeout=60)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run() -> None:
        outcome = _call(name, path)
        with lock:
            results.append(outcome)

    _run_threads(threads, run)
    return {"pid": os.getpid(), "results": results}


def load_task(name: str, path: str, threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` threads call ``path`` in a loop for ``seconds`` (started together across processes)."""
    from requestforge_django import get_client

    get_client(name)
    if _BARRIER is not None:
        _BARRIER.wait(timeout=60)
    deadline = time.monotonic() + seconds
    statuses: Counter[int] = Counter()
    tokens: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        while time.monotonic() < deadline:
            outcome = _call(name, path)
            with lock:
                statuses[outcome["status"]] += 1
                if outcome.get("token"):
                    tokens.add(outcome["token"])
                if "error" in outcome:
                    errors.append(outcome["error"])

    _run_threads(threads, run)
    return {"pid": os.getpid(), "statuses": dict(statuses), "tokens": sorted(tokens), "errors": errors[:5]}
