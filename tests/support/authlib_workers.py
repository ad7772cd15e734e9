"""Worker-process side of the cross-process tests against the Authlib server (spawned, one task per process).

Each worker is a fresh interpreter with Django configured on the suite's redis-server
(:func:`init_authlib_worker`), so a :class:`TokenManager` there shares its token (and its
single-flight lease) with the other processes through django-redis, as gunicorn workers
would. :func:`calls_task` builds the managers a ``spec`` describes (once per process,
kept for the process's life), waits for the other processes on a barrier, then makes many
calls to the server's protected API with the manager's token from several threads.

Answers are plain data: statuses and token *fingerprints*, never a token. The spec carries
the test client's secret or private key through the multiprocessing pipe only.

``spec``::

    {"kind": "client_credentials", "issuer" | "token_url": ..., "client_id": ..., "auth_method": ...,
     "client_secret" | "private_key" + "key_id": ..., "cache_key": ...}
    {"kind": "token_exchange", ..., "subject": <a client_credentials spec>}
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

import requests

from tests.support.django_caches import REDIS_ALIAS, configure_django
from tests.support.workers import fingerprint

__all__ = ["init_authlib_worker", "calls_task", "build_manager"]

_BARRIER: Any = None
_MANAGERS: dict[str, Any] = {}
_LOCK = threading.Lock()
_CREDENTIALS = ("client_id", "client_secret", "auth_method", "private_key", "key_id", "resource", "audience", "scope")


def init_authlib_worker(redis_url: str, barrier: Any = None) -> None:
    """Process initializer: Django on ``redis_url`` (the ``"redis"`` alias); ``barrier`` lines up the processes' tasks."""
    global _BARRIER
    configure_django(redis_url)
    _BARRIER = barrier


def build_manager(spec: dict[str, Any]) -> Any:
    """The :class:`TokenManager` for ``spec`` on the shared Redis storage (built once per process)."""
    with _LOCK:
        return _build(spec)


def _build(spec: dict[str, Any]) -> Any:
    key = spec["cache_key"]
    if key in _MANAGERS:
        return _MANAGERS[key]
    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
    from requestforge_django.tokens.manager import TokenManager
    from requestforge_django.tokens.providers import ClientCredentialsTokenProvider
    from requestforge_django.tokens.token_exchange import TokenExchangeTokenProvider

    where = {"issuer": spec["issuer"]} if spec.get("issuer") else {"token_url": spec["token_url"]}
    options = {name: spec[name] for name in _CREDENTIALS if spec.get(name) is not None}
    if spec["kind"] == "client_credentials":
        client_id, secret = options.pop("client_id"), options.pop("client_secret", None)
        provider: Any = ClientCredentialsTokenProvider(where.pop("token_url", None), client_id, secret, timeout=10.0, **where, **options)
    elif spec["kind"] == "token_exchange":
        subject = _build(spec["subject"])
        provider = TokenExchangeTokenProvider(subject_token_source=subject, timeout=10.0, **where, **options)
    else:
        raise ValueError(f"unknown kind {spec['kind']!r}")
    storage = DjangoCacheTokenStorage(REDIS_ALIAS, key_prefix=spec.get("key_prefix", "rf-authlib"))
    manager = TokenManager(provider, storage, cache_key=key, local_ttl=spec.get("local_ttl", 1.0))
    _MANAGERS[key] = manager
    return manager


def calls_task(spec: dict[str, Any], api_url: str, threads: int, calls: int) -> dict[str, Any]:
    """``threads`` threads each call ``api_url`` ``calls`` times with the manager's token, started with the other processes."""
    manager = build_manager(spec)  # a warm process, a cold token cache
    if _BARRIER is not None:
        _BARRIER.wait(timeout=60)
    statuses: Counter[int] = Counter()
    tokens: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        session = requests.Session()
        for _ in range(calls):
            try:
                token = manager.get_token().access_token
                status = session.get(api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code
            except Exception as exc:  # reported, not raised: the test asserts on it
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                statuses[status] += 1
                tokens.add(fingerprint(token))
        session.close()

    workers = [threading.Thread(target=run, name=f"caller-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"pid": os.getpid(), "statuses": dict(statuses), "tokens": sorted(tokens), "errors": errors[:5]}
