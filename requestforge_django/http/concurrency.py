"""Concurrent sends for :meth:`HttpClient.request_many`.

Workers *pull* the next index from a shared counter instead of one future being
submitted per request: at most ``max_workers`` sends are in flight, a ``fail_fast``
stop takes effect before the next send rather than after the queue drains, and the
client's long-lived worker threads keep their sessions (and warm connections)
between calls.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .client import HttpClient
    from .messages import HttpRequest, HttpResponse

logger = logging.getLogger("requestforge_django.http")


def run_concurrently(
    client: HttpClient,
    requests: Sequence[HttpRequest],
    *,
    max_workers: int,
    fail_fast: bool,
    on_progress: Callable[[int, int], None] | None,
) -> list[HttpResponse | Exception]:
    if not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigurationError(f"must be a positive integer, got {max_workers!r}", field="max_workers")
    total = len(requests)
    results: list[HttpResponse | Exception | None] = [None] * total
    if total == 0:
        return []
    next_index = itertools.count().__next__  # atomic under the GIL
    stop = threading.Event()
    progress_lock = threading.Lock()
    done = 0
    first_error: list[Exception] = []

    def worker() -> None:
        nonlocal done
        while not stop.is_set():
            index = next_index()
            if index >= total:
                return
            try:
                results[index] = client.request(requests[index])
            except Exception as exc:
                results[index] = exc
                if fail_fast:
                    with progress_lock:
                        first_error.append(exc)
                    stop.set()
            if on_progress is not None:
                with progress_lock:
                    done += 1
                    finished = done
                try:
                    on_progress(finished, total)
                except Exception:  # an observer; never breaks the batch
                    logger.exception("request_many progress callback failed")

    workers = min(max_workers, total)
    if workers == 1:
        worker()
    else:
        pool = client._worker_pool(workers)
        futures = [pool.submit(worker) for _ in range(workers)]
        for future in futures:
            future.result()
    if first_error:
        raise first_error[0]
    return results  # type: ignore[return-value]
