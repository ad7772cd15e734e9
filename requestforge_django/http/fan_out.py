"""Many requests through one async client: a fixed set of workers, results in input order.

Memory is bounded by the concurrency, not by the number of requests: ``max_concurrency``
worker tasks pull from one shared iterator (a generator is read lazily), so no task or
coroutine exists for a request that has not started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sized
from typing import cast

from .messages import HttpRequest, HttpResponse


async def send_in_order(
    send: Callable[[HttpRequest], Awaitable[HttpResponse]],
    requests: Iterable[HttpRequest],
    max_concurrency: int,
    fail_fast: bool,
    on_progress: Callable[[int, int], None] | None,
) -> list[HttpResponse | Exception]:
    """See :meth:`HttpClient.arequest_many`."""
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    total = len(requests) if isinstance(requests, Sized) else -1
    source = enumerate(requests)
    # A list of known length is filled in place; an iterator's results are kept by index until the end.
    results: list[HttpResponse | Exception | None] | dict[int, HttpResponse | Exception] = [None] * total if total >= 0 else {}
    failure: list[Exception] = []
    done = 0

    async def worker() -> None:
        nonlocal done
        for index, request in source:  # one shared iterator: each item is taken by one worker
            try:
                results[index] = await send(request)
            except Exception as exc:
                results[index] = exc
                if fail_fast and not failure:
                    failure.append(exc)
            done += 1
            if on_progress is not None:
                on_progress(done, total)
            if failure:
                return

    workers = [asyncio.ensure_future(worker()) for _ in range(max_concurrency)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        raise
    if failure:
        raise failure[0]
    if isinstance(results, dict):
        return [results[index] for index in range(len(results))]
    return cast("list[HttpResponse | Exception]", results)
