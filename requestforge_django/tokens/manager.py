"""``TokenManager``: one service's token, cached, renewed ahead of expiry, fetched once.

The manager owns the *policy* (which provider call renews a token, how a refresh
token is kept); :class:`~.single_flight.SingleFlightTokenCache` owns the *mechanics*
(lock-free hits, one fetch per key across threads and processes, refresh-ahead,
stale-if-error). See that module for the algorithm.

Which provider call renews a token:

* nothing cached: ``provider.fetch_token()``;
* a cached token with a ``refresh_token`` (expired, due, forced or rejected):
  ``provider.refresh_token(current)``; if that grant fails, ``fetch_token()``. A
  refresh answer without a new refresh token keeps the old one (rotation-safe);
* forced or rejected: ``provider.invalidate()`` first, so a provider with its own
  cache (a pipeline) really fetches instead of handing back the same token.

Whatever the provider (custom ones too), a token that cannot be sent in a header
(:func:`~.data.validate_token`) is refused before it is cached: an
:class:`AuthenticationException` naming the service, nothing stored, and the next call
fetches again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..http.exceptions import AuthenticationException
from .async_flight import AsyncFlights
from .data import Clock, TokenData, validate_token
from .due_hold import DueTokenHold
from .interfaces import TokenProviderInterface
from .observer import TokenObserver
from .single_flight import FetchReason, RenewResult, SingleFlightTokenCache
from .storage import InMemoryTokenStorage, TokenStorageInterface

if TYPE_CHECKING:
    from .auth_hook import TokenAuthHook

logger = logging.getLogger("requestforge_django.tokens")


class TokenManager:
    """Caches and renews the token of one provider; share one instance between threads.

    ``storage`` defaults to a private :class:`InMemoryTokenStorage`; pass a shared
    storage (the Django cache) so every process uses, and fetches, one token.
    ``refresh_ahead`` is how many seconds before expiry a token is renewed (by one
    caller, while the others keep using it); ``lock_timeout`` bounds one fetch and the
    cross-process lease. ``observer`` hears about obtained, invalidated and failed tokens.
    ``local_ttl`` is how long this process reuses a token it read from the storage
    without reading again (see :mod:`.single_flight`); ``run_renewal`` runs a
    refresh-ahead renewal (default: a daemon thread, so no caller waits for it).
    """

    def __init__(
        self,
        provider: TokenProviderInterface,
        storage: TokenStorageInterface | None = None,
        *,
        refresh_ahead: float = 60.0,
        lock_timeout: float = 30.0,
        local_ttl: float = 1.0,
        run_renewal: Callable[[Callable[[], None]], None] | None = None,
        cache_key: str | None = None,
        observer: TokenObserver | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(provider, TokenProviderInterface):
            raise TypeError(f"provider must implement TokenProviderInterface, got {type(provider).__name__}")
        self._provider = provider
        self._service_name = provider.service_name
        self._key = cache_key or f"token:{self._service_name}"
        self._cache = SingleFlightTokenCache(
            storage if storage is not None else InMemoryTokenStorage(),
            refresh_ahead=refresh_ahead,
            lock_timeout=lock_timeout,
            observer=observer,
            clock=clock,
            local_ttl=local_ttl,
            run_renewal=run_renewal,
        )
        self._flights: AsyncFlights[TokenData] = AsyncFlights()
        # A valid token that is due for renewal, kept for asyncio callers while it is renewed (see aget_token).
        self._hold = DueTokenHold(self._cache, local_ttl)

    # -- identity ------------------------------------------------------------------------

    @property
    def service_name(self) -> str:
        return self._service_name

    @property
    def provider(self) -> TokenProviderInterface:
        return self._provider

    @property
    def storage(self) -> TokenStorageInterface:
        return self._cache.storage

    @property
    def cache_key(self) -> str:
        return self._key

    @property
    def cache(self) -> SingleFlightTokenCache:
        return self._cache

    # -- tokens --------------------------------------------------------------------------

    def get_token(self) -> TokenData:
        """A valid token: cached if possible, otherwise fetched once for all concurrent callers.

        Raises :class:`AuthenticationException` only when no valid token can be had.
        """
        return self._cache.get(self._key, self._obtain, service_name=self._service_name)

    def peek_token(self) -> TokenData | None:
        """The cached token (possibly expired), without fetching: for status pages and commands."""
        return self._cache.peek(self._key)

    def invalidate_token(self, reason: str = "manual") -> None:
        """Forget the token in every process sharing the storage (and in the provider's own cache)."""
        with self._hold.dropped():
            self._cache.invalidate(self._key, reason)
            self._provider.invalidate()

    def renew_if_due(self) -> RenewResult:
        """Renew the token now if it is missing or due (see :meth:`SingleFlightTokenCache.renew_if_due`)."""
        return self._cache.renew_if_due(self._key, self._obtain, service_name=self._service_name)

    def force_refresh(self, rejected: TokenData | None = None) -> TokenData:
        """A token newer than the current one, single-flight.

        Without arguments: replace the token cached at call time. Ten threads calling
        this together cause one fetch and all get its result; a call made after a
        replacement gets the replacement if it is newer than what the caller saw. On
        failure the current token stays cached and the exception is raised.

        ``rejected`` is a token the server refused (what :class:`TokenAuthHook` passes
        after a 401): if the cache already holds a different valid token it is
        returned without fetching; if the fetch fails, ``rejected`` is removed from the
        cache so it is not sent again.
        """
        with self._hold.dropped():
            if rejected is None:
                return self._cache.refresh(self._key, self._obtain, service_name=self._service_name)
            return self._cache.refresh(self._key, self._obtain, stale=rejected, rejected=True, service_name=self._service_name)

    # -- the same, for asyncio callers (see :mod:`.async_flight`) -------------------------------

    async def aget_token(self) -> TokenData:
        """:meth:`get_token` without blocking the event loop.

        A token held in this process's memory is returned at once; otherwise one task
        per loop runs :meth:`get_token` in a worker thread (which joins the sync
        path's single flight across threads and processes) and the loop's other tasks
        share its token or its :class:`AuthenticationException`.

        **Refresh-ahead without a thread per call.** A token inside its refresh-ahead
        window is not served from the cache's memory (the sync path re-reads the storage
        there, to start the renewal or see it done), so every call of the window would
        cost a worker thread and a storage read: with 64 tasks and a 300 ms token
        endpoint, dozens of thread hops competing with the loop for the GIL, and calls
        made during a renewal about twice as slow at p99 (``benchmarks/bench_async.py
        --only rollover``). So when the worker thread comes back with a valid token that
        is due (the sync path has then started its renewal, or one is running or backing
        off), that token is *held* for the loop's tasks for at most ``local_ttl`` (less
        if the storage allows less, never past its expiry): the bound of any memory hit.
        The renewed token, once in the cache's memory, is served first; a forced refresh
        or an invalidation drops the held one (:class:`~.due_hold.DueTokenHold`, shared
        with :meth:`TokenFetchPipeline.aexecute`).
        """
        token = self.token_in_memory()
        if token is not None:
            return token
        return await self._flights.run("get", self._get_token_for_loop)

    def token_in_memory(self) -> TokenData | None:
        """The token :meth:`aget_token` would return at once (no I/O, nothing awaited); else ``None``.

        For callers on an event loop that check before awaiting (the auth hook, on every call).
        """
        token = self._cache.memory_hit(self._key)
        return token if token is not None else self._hold.token()

    async def aforce_refresh(self, rejected: TokenData | None = None) -> TokenData:
        """:meth:`force_refresh` without blocking the event loop; tasks replacing the same token share one call."""
        return await self._flights.run(("refresh", rejected), lambda: self.force_refresh(rejected))

    async def ainvalidate_token(self, reason: str = "manual") -> None:
        """:meth:`invalidate_token` run off the event loop (the storage may be Redis)."""
        await asyncio.to_thread(self.invalidate_token, reason)

    def _get_token_for_loop(self) -> TokenData:
        """:meth:`get_token` in a worker thread, holding a due token for the loop (see :meth:`aget_token`)."""
        return self._hold.read(lambda: (self.get_token(),))

    def auth_hook(self, **kwargs: Any) -> TokenAuthHook:
        """A :class:`TokenAuthHook` over this manager (lets ``http`` config builders stay import-free of ``tokens``)."""
        from .auth_hook import TokenAuthHook

        return TokenAuthHook(self, **kwargs)

    # -- the fetch policy (runs in the one leading caller) -------------------------------------

    def _obtain(self, current: TokenData | None, reason: FetchReason) -> TokenData:
        try:
            if reason in (FetchReason.FORCED, FetchReason.REJECTED):
                self._provider.invalidate()
            has_refresh_token = current is not None and bool(current.refresh_token)
            token = self._refresh_grant(current) if has_refresh_token else self._provider.fetch_token()  # type: ignore[arg-type]
        except AuthenticationException as exc:
            if exc.service_name is None:
                exc.service_name = self._service_name
            raise
        except Exception as exc:
            raise AuthenticationException(
                f"Token provider {type(self._provider).__name__} failed ({type(exc).__name__})",
                service_name=self._service_name,
                original=exc,
            ) from exc
        if not isinstance(token, TokenData):
            raise AuthenticationException(
                f"Token provider {type(self._provider).__name__} returned {type(token).__name__}, not TokenData",
                service_name=self._service_name,
            )
        try:
            validate_token(token)
        except AuthenticationException as exc:
            raise AuthenticationException(exc.message, service_name=self._service_name) from None
        return token

    def _refresh_grant(self, current: TokenData) -> TokenData:
        try:
            token = self._provider.refresh_token(current)
        except Exception as exc:
            logger.warning(
                "Refresh grant for %s failed (%s); fetching a new token instead",
                self._service_name,
                str(exc) if isinstance(exc, AuthenticationException) else type(exc).__name__,
            )
            return self._provider.fetch_token()
        if isinstance(token, TokenData) and token.refresh_token is None:
            # Servers that do not rotate refresh tokens omit them from the answer.
            token = replace(token, refresh_token=current.refresh_token)
        return token

    def __repr__(self) -> str:
        return f"TokenManager(service_name={self._service_name!r}, cache_key={self._key!r}, storage={self.storage!r})"
