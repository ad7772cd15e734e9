"""The exception hierarchy of the HTTP core.

Every exception raised while sending a request carries the method, the URL (with
secret query values masked) and the original exception, so a log line or a Sentry
event says *which* call failed without anyone re-deriving it from a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .masking import mask_url

if TYPE_CHECKING:
    from .messages import HttpResponse


class HttpClientException(Exception):
    """Base class of everything this library raises about an HTTP call."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        original: BaseException | None = None,
    ) -> None:
        self.message = message
        self.method = str(method) if method is not None else None
        self.url = mask_url(url) if url else url
        self.original = original
        super().__init__(message)

    def _where(self) -> str:
        if self.method and self.url:
            return f" ({self.method} {self.url})"
        if self.url:
            return f" ({self.url})"
        return ""

    def __str__(self) -> str:
        return f"{self.message}{self._where()}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling; Celery result
        # backends and multiprocessing need these to cross process boundaries.
        return (_rebuild_exception, (type(self), self.args, self.__dict__))


def _rebuild_exception(cls: type[HttpClientException], args: tuple[Any, ...], state: dict[str, Any]) -> HttpClientException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class ConfigurationError(HttpClientException, ValueError):
    """A configuration value is invalid; ``field`` names the offending setting."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        prefix = f"{field}: " if field else ""
        super().__init__(f"{prefix}{message}")


class ConnectionException(HttpClientException):
    """The connection could not be established or was dropped."""


class TimeoutException(HttpClientException):
    """The server did not answer within the timeout."""


class SSLException(ConnectionException):
    """TLS negotiation or certificate verification failed."""


class ResponseParseException(HttpClientException):
    """The response body could not be parsed (for example invalid JSON)."""


class HttpStatusException(HttpClientException):
    """Raised by :meth:`HttpResponse.raise_for_status` for 4xx/5xx answers."""

    def __init__(self, response: HttpResponse, message: str | None = None) -> None:
        self.response = response
        self.status_code = response.status_code
        request = response.request
        super().__init__(
            message or f"HTTP {response.status_code}",
            method=str(request.method) if request is not None else None,
            url=response.url,
        )


class AuthenticationException(HttpClientException):
    """Obtaining or refreshing credentials failed.

    ``service_name`` names the token provider (and ``step`` the pipeline step)
    so callers can invalidate exactly what failed; ``error`` and
    ``error_description`` carry the OAuth2 error fields when the endpoint sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        service_name: str | None = None,
        step: str | None = None,
        status_code: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
        method: str | None = None,
        url: str | None = None,
        original: BaseException | None = None,
    ) -> None:
        self.service_name = service_name
        self.step = step
        self.status_code = status_code
        self.error = error
        self.error_description = error_description
        super().__init__(message, method=method, url=url, original=original)

    def __str__(self) -> str:
        parts = []
        if self.service_name:
            parts.append(f"service={self.service_name}")
        if self.step:
            parts.append(f"step={self.step}")
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.error:
            parts.append(f"error={self.error}")
        if self.error_description:
            parts.append(f"error_description={self.error_description}")
        context = f" [{', '.join(parts)}]" if parts else ""
        return f"{self.message}{context}{self._where()}"


class UntrustedOriginException(HttpClientException):
    """A request (or a redirect hop) would have carried credentials to an origin the client does not trust.

    ``origin`` is ``scheme://host[:port]`` only: never a path or query, which may hold secrets.
    """

    def __init__(self, message: str, *, origin: str, method: str | None = None, url: str | None = None) -> None:
        self.origin = origin
        super().__init__(message, method=method, url=url)


class MaxRetryException(HttpClientException):
    """Retries were exhausted; carries how many attempts were made and what the last one gave."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_exception: BaseException | None = None,
        last_response: HttpResponse | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.attempts = attempts
        self.last_exception = last_exception
        self.last_response = last_response
        super().__init__(message, method=method, url=url, original=last_exception)


class CircuitBreakerException(HttpClientException):
    """The circuit is open: the call was rejected without touching the network."""

    def __init__(
        self,
        message: str = "Circuit breaker is open",
        *,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, method=method, url=url)


class RateLimitExceeded(HttpClientException):
    """The client-side rate limiter refused to wait for a permit."""

    def __init__(self, message: str = "Rate limit exceeded", *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)
