"""Async callers for the cross-process tests: code that runs in spawned worker processes.

The async twin of :mod:`tests.support.oauth_server.callers` (whose :func:`init_caller`
configures each worker like a deployed Django process: the suite's django-redis alias
as the requestforge ``CACHE`` and a ``REQUESTFORGE`` setting naming the clients). A
task runs one event loop (``asyncio.run``) with many tasks calling
``await (await aget_client(name)).aget(path)``, released together with the tasks of
the other processes by the pool's ``multiprocessing`` barrier, so the processes race
for the token on a cold cache for real. Results are plain data: statuses and what the
partner answered (a token *fingerprint*), never a token.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from tests.support.oauth_server import callers

__all__ = ["acall_task"]


async def _acall(name: str, path: str) -> dict[str, Any]:
    from requestforge_django import aget_client

    try:
        response = await (await aget_client(name)).aget(path)
    except Exception as exc:  # reported, not raised: the test asserts on it
        return {"status": -1, "error": f"{type(exc).__name__}: {exc}"}
    body = response.json_or_none() if response.status_code == 200 else None
    return {"status": response.status_code, "token": (body or {}).get("token")}


async def _acall_all(name: str, path: str, tasks: int) -> dict[str, Any]:
    from requestforge_django import aget_client

    await aget_client(name)  # built before the barrier: a warm process, a cold token cache
    barrier = callers._BARRIER
    if barrier is not None:
        # The barrier blocks, so it is waited for off the loop; every task is created after it.
        await asyncio.to_thread(barrier.wait, 60)
    released_at, released = time.time(), time.perf_counter()  # wall clock: the one clock all processes share
    results = await asyncio.gather(*(_acall(name, path) for _ in range(tasks)))
    return {"pid": os.getpid(), "results": results, "released_at": released_at, "seconds": time.perf_counter() - released}


def acall_task(name: str, path: str, tasks: int) -> dict[str, Any]:
    """``tasks`` tasks of one event loop call ``path`` once each, at the same moment as the other processes' tasks."""
    return asyncio.run(_acall_all(name, path, tasks))
