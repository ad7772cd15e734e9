"""``PipelineTokenManager``: a pipeline's final token with the surface of a :class:`TokenManager`.

A client authenticated by a pipeline needs what :class:`TokenAuthHook` asks of a
manager (``get_token``, ``force_refresh(rejected=)``, ``invalidate_token``). Wrapping
the pipeline in a :class:`TokenManager` over a :class:`PipelineTokenProvider` would
cache the final token twice, under the manager's key and as the last step, and the
manager's copy would hide the steps from refresh-ahead (a hit on the manager's key
never runs the pipeline, so its due steps would only be renewed once the manager's
copy expired, by a request that then waits). This adaptor caches nothing itself: every
read runs the pipeline, whose steps are served lock-free from their own caches (and
the local memo), so refresh-ahead, cascading invalidation and the cross-process
lease work exactly as for the pipeline alone. For asyncio callers the pipeline holds the
final token while a step is renewed (:meth:`TokenFetchPipeline.aexecute`); this adaptor
only reaches it through :meth:`token_in_memory` and drops it when a token is rejected.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .async_flight import AsyncFlights
from .data import TokenData
from .pipeline import PipelineConfigurationError, TokenFetchPipeline
from .single_flight import RenewResult

if TYPE_CHECKING:
    from .auth_hook import TokenAuthHook


class PipelineTokenManager:
    """The final token of ``pipeline``, renewed from ``refresh_from_step`` when rejected.

    ``refresh_from_step`` is the step re-fetched (with its dependents) when the API
    rejects the final token or a refresh is forced; ``None`` means every step.
    """

    def __init__(self, pipeline: TokenFetchPipeline, refresh_from_step: str | None = None) -> None:
        if refresh_from_step is not None and pipeline.get_step(refresh_from_step) is None:
            raise PipelineConfigurationError(f"refresh_from_step {refresh_from_step!r} is not a step of pipeline {pipeline.name!r}")
        if not pipeline.step_names:
            raise PipelineConfigurationError(f"pipeline {pipeline.name!r} has no steps")
        self._pipeline = pipeline
        self._refresh_from_step = refresh_from_step
        self._last_step = pipeline.step_names[-1]
        self._flights: AsyncFlights[TokenData] = AsyncFlights()

    @property
    def service_name(self) -> str:
        return self._pipeline.name

    @property
    def pipeline(self) -> TokenFetchPipeline:
        return self._pipeline

    @property
    def cache_key(self) -> str:
        """The storage key of the final token (the last step's)."""
        return self._pipeline.step_cache_key(self._last_step)

    def get_token(self) -> TokenData:
        """The last step's token, running (only) the steps that are missing or expired."""
        return self._pipeline.execute()

    def peek_token(self) -> TokenData | None:
        return self._pipeline.peek_step(self._last_step)

    def force_refresh(self, rejected: TokenData | None = None) -> TokenData:
        """Re-fetch ``refresh_from_step`` and its dependents, single-flight.

        With ``rejected`` (the token a 401 refused): if the cache already holds a
        different valid token, another thread or process has replaced it, so it is
        returned without fetching. Either way the final token the pipeline held for
        asyncio callers is dropped (the reuse path runs no pipeline refresh that would).
        If the refresh fails and ``rejected`` is still the stored final token, it is
        forgotten (as :class:`TokenManager` does): the next call fetches instead of sending
        a token the API already refused.
        """
        with self._pipeline.due_hold.dropped():
            if rejected is not None:
                current = self.peek_token()
                if current is not None and current != rejected and not current.is_expiring(0.0, self._pipeline.cache.now()):
                    return current
            try:
                return self._pipeline.refresh_from(self._refresh_from_step)
            except Exception:
                if rejected is not None and self.peek_token() == rejected:
                    self._pipeline.invalidate_step(self._last_step, "rejected")
                raise

    def invalidate_token(self, reason: str = "manual") -> None:
        """Forget ``refresh_from_step`` and its dependents (or every step) in every process."""
        if self._refresh_from_step is None:
            self._pipeline.invalidate_all(reason)
        else:
            self._pipeline.invalidate_step(self._refresh_from_step, reason)

    async def aget_token(self) -> TokenData:
        """:meth:`get_token` without blocking the event loop (see :meth:`TokenFetchPipeline.aexecute`)."""
        return await self._pipeline.aexecute()

    def token_in_memory(self) -> TokenData | None:
        """The token :meth:`aget_token` would return at once (no I/O, nothing awaited); else ``None``.

        For callers on an event loop that check before awaiting: the auth hook calls it
        on every request, so a token in memory (or held during a renewal) costs no coroutine.
        """
        return self._pipeline.token_in_memory()

    async def aforce_refresh(self, rejected: TokenData | None = None) -> TokenData:
        """:meth:`force_refresh` without blocking the event loop; tasks replacing the same token share one call."""
        return await self._flights.run(("refresh", rejected), lambda: self.force_refresh(rejected))

    async def ainvalidate_token(self, reason: str = "manual") -> None:
        """:meth:`invalidate_token` run off the event loop (the storage may be Redis)."""
        await asyncio.to_thread(self.invalidate_token, reason)

    def renew_if_due(self) -> RenewResult:
        """Renew every due step now (see :meth:`TokenFetchPipeline.renew_due`); the last step's result."""
        return self._pipeline.renew_due()[self._last_step]

    def auth_hook(self, **kwargs: Any) -> TokenAuthHook:
        from .auth_hook import TokenAuthHook

        return TokenAuthHook(self, **kwargs)

    def __repr__(self) -> str:
        return f"PipelineTokenManager(pipeline={self._pipeline.name!r}, refresh_from_step={self._refresh_from_step!r})"
