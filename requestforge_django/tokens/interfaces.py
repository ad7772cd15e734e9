"""The two plug-in points of the token layer, and the context a pipeline step sees.

* :class:`TokenProviderInterface`: where a :class:`TokenManager` gets tokens from
  (OAuth2 grants, a pipeline, anything custom).
* :class:`TokenFetcherInterface`: one step of a :class:`TokenFetchPipeline`.
* :class:`FetchContext`: the tokens of the steps already run, handed to the next step.
* :class:`TokenSource`: what a client authenticates with, a :class:`TokenManager` or a
  :class:`PipelineTokenManager` alike (the auth hook needs nothing else of them).

They live apart from their implementations so custom providers and fetchers depend
on a few small contracts, not on the HTTP machinery of the built-in ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from .data import Clock, TokenData, system_clock


@runtime_checkable
class TokenSource(Protocol):
    """Hands out the current token of one service and replaces it when it is rejected."""

    @property
    def service_name(self) -> str: ...

    def get_token(self) -> TokenData:
        """A valid token, fetched at most once across threads and processes."""
        ...

    def force_refresh(self, rejected: TokenData | None = None) -> TokenData:
        """Replace ``rejected`` (or the current token); a token already replaced is reused, not fetched again."""
        ...

    def invalidate_token(self, reason: str = "manual") -> None:
        """Drop the cached token everywhere; the next :meth:`get_token` fetches."""
        ...

    async def aget_token(self) -> TokenData:
        """:meth:`get_token` for asyncio callers: never blocks the event loop; one flight per token for all tasks."""
        ...

    async def aforce_refresh(self, rejected: TokenData | None = None) -> TokenData:
        """:meth:`force_refresh` for asyncio callers."""
        ...

    async def ainvalidate_token(self, reason: str = "manual") -> None:
        """:meth:`invalidate_token` for asyncio callers (the storage call runs off the loop)."""
        ...


class TokenProviderInterface(ABC):
    """Obtains tokens for one service; :class:`TokenManager` decides *when* (caching, locking)."""

    @property
    @abstractmethod
    def service_name(self) -> str:
        """Names the service in cache keys, logs and :class:`AuthenticationException`."""

    @abstractmethod
    def fetch_token(self) -> TokenData:
        """Obtain a brand-new token; raise :class:`AuthenticationException` on failure."""

    def refresh_token(self, current: TokenData) -> TokenData:
        """Obtain a token replacing ``current`` (e.g. an OAuth2 refresh grant); default: :meth:`fetch_token`."""
        return self.fetch_token()

    def invalidate(self) -> None:
        """Forget tokens the provider caches itself, so the next fetch really asks the server.

        The manager calls this when its token is invalidated or rejected. Plain
        providers cache nothing (no-op); :class:`PipelineTokenProvider` invalidates its
        pipeline steps, otherwise a 401 would be "fixed" with the same cached token.
        """
        return None


class TokenFetcherInterface(ABC):
    """One step of a pipeline: fetch a token, possibly using earlier steps' tokens.

    ``name`` identifies the step (cache key, context key, error reports);
    ``depends_on`` names earlier steps whose tokens :meth:`fetch` needs; ``ttl`` caps
    how long the step's token is cached (the token's own shorter expiry wins).
    Plain class or instance attributes are fine.
    """

    name: str
    depends_on: tuple[str, ...] = ()
    ttl: timedelta | None = None

    @abstractmethod
    def fetch(self, context: FetchContext) -> TokenData:
        """Fetch this step's token; dependencies are in ``context``. Raise :class:`AuthenticationException` on failure."""


@dataclass
class FetchContext:
    """The tokens obtained so far in one pipeline execution, by step name.

    Mutable and private to one execution (never shared between threads).
    ``metadata`` is scratch space for custom fetchers; ``clock`` is the pipeline's,
    so fetchers compute expiry with the same notion of "now" as the cache.
    Supports ``"step" in context`` and ``context["step"]`` like a dict.
    """

    tokens: dict[str, TokenData] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    clock: Clock = system_clock

    def add_token(self, name: str, token: TokenData) -> None:
        self.tokens[name] = token

    def get_token(self, name: str) -> TokenData | None:
        return self.tokens.get(name)

    def now(self) -> datetime:
        return self.clock()

    def __contains__(self, name: object) -> bool:
        return name in self.tokens

    def __getitem__(self, name: str) -> TokenData:
        try:
            return self.tokens[name]
        except KeyError:
            raise KeyError(f"no token for step {name!r} in this pipeline execution") from None

    def __repr__(self) -> str:
        return f"FetchContext(steps={list(self.tokens)!r}, metadata_keys={list(self.metadata)!r})"
