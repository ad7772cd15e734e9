"""The error a cache-backed token storage or lease raises when the cache cannot be used."""

from __future__ import annotations

from ..http.exceptions import HttpClientException

__all__ = ["TokenStorageError", "short_text"]


class TokenStorageError(HttpClientException):
    """The token cache could not be used (for example Redis is down or the cache table is missing).

    ``cache_alias``, ``key`` (the cache key, never the token) and ``operation``
    (``get``, ``set``, ``delete``, ``lock``) say which cache failed on what, so an
    alert tells the on-call engineer where to look without a debugger.
    """

    def __init__(
        self,
        message: str,
        *,
        cache_alias: str,
        key: str,
        operation: str,
        original: BaseException | None = None,
    ) -> None:
        self.cache_alias = cache_alias
        self.key = key
        self.operation = operation
        super().__init__(message, original=original)

    def __str__(self) -> str:
        cause = ""
        if self.original is not None:
            cause = f": {type(self.original).__name__}: {short_text(str(self.original))}"
        return f"{self.message} [cache={self.cache_alias!r}, key={self.key!r}, operation={self.operation}]{cause}"


def short_text(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
