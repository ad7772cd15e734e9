"""Concurrent sends for :meth:`HttpClient.request_many`.

Workers *pull* the next index from a shared counter instead of one future being
submitted per request: at most ``max_workers`` sends are in flight, a ``fail_fast``
stop takes effect before the next send rather than after the queue drains, and the
client's long-lived worker threads keep their sessions (and warm connections)
between calls.

The calling thread is one of the workers, and it waits for the *requests*, never for
the helper threads: if the client's pool is busy (another batch, or a batch started
from inside a worker), the caller still makes progress and simply does more of the
work itself, so a batch can neither deadlock nor starve. ``request_many`` returns
only when every send it started has finished, so no result (and no progress callback)
arrives after it returned.

Rate limits: the client's limiter is consulted by :meth:`HttpClient.request` before
every attempt, retries included, so it holds across all workers and batches. A
per-batch ``rate_limiter`` paces the *requests* of this batch (one permit each, taken
before the request starts); its refusal (:class:`RateLimitExceeded`) is that request's
result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .exceptions import ConfigurationError
from .rate_limit import RateLimiterInterface

if TYPE_CHECKING:
    from .client import HttpClient
    from .messages import HttpRequest, HttpResponse

logger = logging.getLogger("requestforge_django.http")

Progress = Callable[[int, int], None]


def run_concurrently(
    client: HttpClient,
    requests: Sequence[HttpRequest],
    *,
    max_workers: int,
    fail_fast: bool,
    on_progress: Progress | None,
    rate_limiter: RateLimiterInterface | None = None,
) -> list[HttpResponse | Exception]:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigurationError(f"must be a positive integer, got {max_workers!r}", field="max_workers")
    if on_progress is not None and not callable(on_progress):
        raise ConfigurationError(f"must be callable, got {on_progress!r}", field="on_progress")
    if rate_limiter is not None and not isinstance(rate_limiter, RateLimiterInterface):
        raise ConfigurationError(f"must implement RateLimiterInterface, got {rate_limiter!r}", field="rate_limiter")
    if not requests:
        return []
    batch = _Batch(client, requests, fail_fast=fail_fast, on_progress=on_progress, rate_limiter=rate_limiter)
    helpers = min(max_workers, len(requests)) - 1
    if helpers:
        try:
            client._start_workers(batch.work, helpers)
        except RuntimeError:  # no new threads (the interpreter is shutting down): the caller does it all
            logger.debug("request_many: no worker threads available; sending from the calling thread")
    batch.work()
    return batch.outcome()


class _Batch:
    """The shared state of one ``request_many`` call; every method is safe to call from any worker."""

    def __init__(
        self,
        client: HttpClient,
        requests: Sequence[HttpRequest],
        *,
        fail_fast: bool,
        on_progress: Progress | None,
        rate_limiter: RateLimiterInterface | None,
    ) -> None:
        self._client = client
        self._requests = requests
        self._total = len(requests)
        self._fail_fast = fail_fast
        self._on_progress = on_progress
        self._rate_limiter = rate_limiter
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._next = 0
        self._in_flight = 0
        self._stopped = False
        self._first_error: BaseException | None = None
        self._progress_lock = threading.Lock()
        self._reported = 0
        self.results: list[HttpResponse | Exception | None] = [None] * self._total

    def _claim(self) -> int | None:
        with self._lock:
            if self._stopped or self._next >= self._total:
                return None
            index = self._next
            self._next += 1
            self._in_flight += 1
            return index

    def work(self) -> None:
        """Send requests until none is left or the batch stopped."""
        while (index := self._claim()) is not None:
            try:
                result = self._send(self._requests[index])
                self.results[index] = result  # each index has one writer
                if self._fail_fast and isinstance(result, Exception):
                    self._stop(result)
                self._report_progress()
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the batch, re-raise in the caller
                self._stop(exc)
                raise
            finally:
                with self._lock:
                    self._in_flight -= 1
                    if not self._in_flight:
                        self._idle.notify_all()

    def _send(self, request: HttpRequest) -> HttpResponse | Exception:
        try:
            if self._rate_limiter is not None:
                self._rate_limiter.acquire()
            return self._client.request(request)
        except Exception as exc:
            return exc

    def _stop(self, error: BaseException) -> None:
        with self._lock:
            if not self._stopped:
                self._stopped = True
                self._first_error = error

    def _report_progress(self) -> None:
        if self._on_progress is None:
            return
        # Serialised, so the observer sees 1, 2, ..., total in order.
        with self._progress_lock:
            self._reported += 1
            try:
                self._on_progress(self._reported, self._total)
            except Exception:  # an observer; never breaks the batch
                logger.exception("request_many progress callback failed")

    def outcome(self) -> list[HttpResponse | Exception]:
        """Wait for the sends still in flight; raise the ``fail_fast`` error or return the results."""
        with self._lock:
            while self._in_flight:
                self._idle.wait()
            error = self._first_error
        if error is not None:
            raise error
        return self.results  # type: ignore[return-value]
