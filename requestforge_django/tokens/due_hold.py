"""A valid token that is due for renewal, held for an event loop's tasks while it is renewed.

Shared by :class:`~.manager.TokenManager` (one token) and
:class:`~.pipeline.TokenFetchPipeline` (a chain of step tokens, the last one served).

**Why.** Their ``a``-methods answer at once only from the single-flight cache's memory,
and a token inside its refresh-ahead window is never served from there (the sync path
re-reads the storage, to start the renewal or see it done). So every call made during
a renewal would cost a worker thread and a storage read: with 64 tasks and a 300 ms
token endpoint, dozens of thread hops competing with the loop for the GIL, and calls
made during a renewal about twice as slow at p99 (``benchmarks/bench_async.py --only
rollover``). For a pipeline one due step is enough to close the fast path.

**What.** When a worker thread comes back from the sync path with valid tokens of
which one is due (the sync path has then started its renewal, or one is running or
backing off), the served token is *held* for the loop's tasks for at most
``local_ttl`` (less if the storage allows less, never past the expiry of any token of
the chain): the bound of any memory hit. The owner serves the cache's memory first, so
a renewed token wins as soon as it is there, and wraps every forced refresh and
invalidation in :meth:`DueTokenHold.dropped`, so a refused or forgotten token is not
served from here; a read that overlapped such a call never installs its token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from .data import TokenData
from .single_flight import SingleFlightTokenCache


class DueTokenHold:
    """The due token one owner serves its event-loop callers while it is renewed (see the module doc); thread-safe."""

    def __init__(self, cache: SingleFlightTokenCache, local_ttl: float) -> None:
        self._cache = cache
        self._local_ttl = float(local_ttl)
        self._held: tuple[TokenData, datetime] | None = None
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every drop: a read begun before it must not install its token

    def token(self) -> TokenData | None:
        """The held token while its time lasts, else ``None``: no I/O, for the event loop."""
        held = self._held
        if held is not None and self._cache.now() < held[1]:
            return held[0]
        return None

    def read(self, chain: Callable[[], Sequence[TokenData]]) -> TokenData:
        """The last token of ``chain()``, held when the chain is valid and any of its tokens is due.

        Run it in a worker thread: ``chain`` reads through the sync path (a manager's
        ``get_token``, a pipeline's steps) and returns the tokens it went through, the
        served one last. The storage's allowance is asked in this thread, right after
        its read: the Django layer's credential fence judges by what this thread saw.
        """
        with self._lock:
            generation = self._generation
        tokens = chain()
        token = tokens[-1]
        now = self._cache.now()
        if any(t.is_expiring(0.0, now) for t in tokens) or not any(self._cache.is_due(t, now) for t in tokens):
            return token
        allowance = self._cache.storage.memory_allowance(token)
        keep = self._local_ttl if allowance is None else min(self._local_ttl, allowance)
        if keep <= 0:
            return token
        until = min([now + timedelta(seconds=keep), *(t.expires_at for t in tokens if t.expires_at is not None)])
        with self._lock:
            if generation == self._generation:  # no forced refresh or invalidation meanwhile
                self._held = (token, until)
        return token

    def drop(self) -> None:
        """Serve nothing from here until a read that begins after this call holds a token again."""
        with self._lock:
            self._generation += 1
            self._held = None

    @contextmanager
    def dropped(self) -> Iterator[None]:
        """Around a forced refresh or an invalidation: nothing held is served during it, nor kept from a read that overlapped it."""
        self.drop()
        try:
            yield
        finally:
            self.drop()

    def __repr__(self) -> str:
        return f"DueTokenHold(local_ttl={self._local_ttl!r}, holding={self._held is not None})"
