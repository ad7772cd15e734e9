"""Code that runs in separate OS processes (spawned) for the cross-process tests and benchmarks.

Each worker process configures Django itself with a django-redis alias on the test
redis-server (:func:`init_worker`), keeps its token managers and pipelines for its
whole life (as a web or Celery process would), and answers tasks with plain data:
never a token, only a short fingerprint to compare tokens between processes.

A task describes what to build with a plain dict (``spec``), so tasks pickle cleanly:

``{"kind": "manager", "token_url": ..., "cache_key": ...}``
    a :class:`TokenManager` with a :class:`ClientCredentialsTokenProvider`.
``{"kind": "pipeline", "base_url": ..., "cache_key_prefix": ...}``
    a two-step :class:`TokenFetchPipeline` (device token from a header, then an app
    token from a body that needs the device token), as served by ``token_server``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

from tests.support.django_caches import REDIS_ALIAS, configure_django

__all__ = ["fingerprint", "init_worker", "get_token_task", "invalidate_task", "herd_process"]

_BARRIER: Any = None
_OBJECTS: dict[tuple[Any, ...], Any] = {}
_OBJECTS_LOCK = threading.Lock()

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"


def fingerprint(secret: str) -> str:
    """A short, one-way name for a token: enough to compare, useless to an attacker."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def init_worker(redis_url: str, barrier: Any = None) -> None:
    """Process initializer: Django on ``redis_url``; ``barrier`` lines up tasks of several processes."""
    global _BARRIER
    configure_django(redis_url)
    _BARRIER = barrier


def _build(spec: dict[str, Any]) -> Any:
    """The manager or pipeline described by ``spec``, built once per process and reused."""
    identity = tuple(sorted((k, repr(v)) for k, v in spec.items()))
    with _OBJECTS_LOCK:
        built = _OBJECTS.get(identity)
        if built is not None:
            return built
        from requestforge_django.shared.token_storage import DjangoCacheTokenStorage

        storage = DjangoCacheTokenStorage(spec.get("alias", REDIS_ALIAS), key_prefix=spec.get("key_prefix", "requestforge"))
        if spec["kind"] == "manager":
            from requestforge_django.tokens.manager import TokenManager
            from requestforge_django.tokens.providers import ClientCredentialsTokenProvider

            provider = ClientCredentialsTokenProvider(spec["token_url"], CLIENT_ID, CLIENT_SECRET, timeout=10.0)
            built = TokenManager(
                provider,
                storage,
                cache_key=spec.get("cache_key"),
                refresh_ahead=spec.get("refresh_ahead", 60.0),
                lock_timeout=spec.get("lock_timeout", 30.0),
                local_ttl=spec.get("local_ttl", 1.0),
            )
        elif spec["kind"] == "pipeline":
            built = build_pipeline(spec["base_url"], storage, cache_key_prefix=spec.get("cache_key_prefix", ""))
        else:
            raise ValueError(f"unknown kind {spec['kind']!r}")
        _OBJECTS[identity] = built
        return built


def build_pipeline(base_url: str, storage: Any, *, cache_key_prefix: str = "") -> Any:
    """The two-step pipeline the token server's ``/device/register`` and ``/app/token`` implement."""
    from requestforge_django.tokens.fetchers import BodyTokenFetcher, HeaderTokenFetcher
    from requestforge_django.tokens.pipeline import TokenFetchPipeline

    steps = [
        HeaderTokenFetcher(
            name="device_token",
            base_url=base_url,
            endpoint="/device/register",
            request_headers={"X-Device-ID": "device-123"},
            token_header="X-Device-Token",
        ),
        BodyTokenFetcher(
            name="app_token",
            base_url=base_url,
            endpoint="/app/token",
            request_headers={"X-Device-Token": "{device_token}"},
            request_data={"client_id": "app-id"},
            depends_on=["device_token"],
        ),
    ]
    return TokenFetchPipeline(steps, storage=storage, cache_key_prefix=cache_key_prefix)


def _token_of(built: Any) -> str:
    if hasattr(built, "get_token"):
        return str(built.get_token().access_token)
    result = built.execute()
    return str(getattr(result, "access_token", result))


def get_token_task(spec: dict[str, Any], synchronized: bool = True) -> dict[str, Any]:
    """Get a token (after all processes reached the barrier); returns pid, fingerprint, seconds taken."""
    built = _build(spec)
    if synchronized and _BARRIER is not None:
        _BARRIER.wait(timeout=60)
    started = time.perf_counter()
    token = _token_of(built)
    return {"pid": os.getpid(), "fingerprint": fingerprint(token), "seconds": time.perf_counter() - started}


def invalidate_task(spec: dict[str, Any]) -> int:
    """Invalidate the manager's token in every process sharing the storage; returns this pid."""
    built = _build(spec)
    if hasattr(built, "invalidate_token"):
        built.invalidate_token()
    else:
        built.invalidate_all()
    return os.getpid()


def herd_process(redis_url: str, spec: dict[str, Any], threads: int, ready: Any, go: Any, go_at: Any, results: Any) -> None:
    """Benchmark worker: ``threads`` threads ask for the token the moment ``go`` is set.

    Puts one dict per thread on ``results``: pid, fingerprint (or the error type),
    ``seconds`` from its own wake-up to the token and ``since_go`` from the instant the
    parent set ``go`` (``go_at.value``, wall clock: the one clock all processes share).
    The process builds everything, and every thread opens its cache connection with a
    read of an unrelated key, before saying ``ready``: the *token* cache is cold, the
    processes are warm, as in a running deployment.
    """
    init_worker(redis_url)
    built = _build(spec)
    outcomes: list[dict[str, Any]] = []
    outcomes_lock = threading.Lock()
    warmed = threading.Barrier(threads + 1)

    def run() -> None:
        built.storage.get("herd-warmup")
        warmed.wait()
        go.wait()
        started = time.perf_counter()
        try:
            outcome: dict[str, Any] = {"fingerprint": fingerprint(_token_of(built))}
        except Exception as exc:  # reported, not raised: the benchmark counts failures
            outcome = {"error": type(exc).__name__}
        outcome.update(pid=os.getpid(), seconds=time.perf_counter() - started, since_go=time.time() - go_at.value)
        with outcomes_lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=run, name=f"herd-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    warmed.wait()
    ready.put(os.getpid())
    for worker in workers:
        worker.join()
    results.put(outcomes)
