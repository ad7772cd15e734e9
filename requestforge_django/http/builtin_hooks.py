"""Built-in observer hooks: logging, correlation ids, dynamic authorization, rate-limit headers.

Every hook here is stateless after construction. Per-call state (the correlation id
reused by each retry, the parsed rate limits) lives in ``context.metadata``, so one
hook instance serves every thread of a client without locks.

Metadata keys shared with other components:

* ``"correlation_id"`` -- set by :class:`CorrelationIdHook`, included in log records.
* ``"rate_limit"`` -- a :class:`RateLimitInfo` set by :class:`RateLimitResponseHook`.
* ``"sensitive_headers"`` -- extra names (any iterable of str) the logging hooks mask for
  this call; the client may pre-fill it from ``HttpClientConfig.sensitive_headers`` and
  :class:`AuthorizationHook` adds its header name when that name is not secret-looking.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeAlias

from .exceptions import ConfigurationError
from .hooks import ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from .masking import is_sensitive_name, mask_headers, mask_mapping, mask_url
from .messages import find_header
from .retry import parse_retry_after

if TYPE_CHECKING:
    from .messages import HttpRequest, HttpResponse, RequestContext

DEFAULT_LOGGER_NAME = "requestforge_django.http"
CORRELATION_ID_KEY = "correlation_id"
RATE_LIMIT_KEY = "rate_limit"
SENSITIVE_HEADERS_KEY = "sensitive_headers"

_logger = logging.getLogger(DEFAULT_LOGGER_NAME)

#: Longest rendered body put in a log line; longer ones are cut (after masking).
MAX_LOGGED_BODY_CHARS = 2048

# A string: ``LoggerAdapter`` is subscriptable at run time only from Python 3.11.
LoggerLike: TypeAlias = "logging.Logger | logging.LoggerAdapter[logging.Logger]"


def _resolve_logger(logger: LoggerLike | str | None) -> LoggerLike:
    if logger is None:
        return logging.getLogger(DEFAULT_LOGGER_NAME)
    if isinstance(logger, str):
        return logging.getLogger(logger)
    return logger


def _extra_sensitive(own: frozenset[str], context: RequestContext) -> frozenset[str]:
    """The hook's own sensitive names plus those registered for this call in the metadata."""
    registered = context.metadata.get(SENSITIVE_HEADERS_KEY)
    if not registered:
        return own
    return own | {str(name).lower() for name in registered}


def _register_sensitive(context: RequestContext, name: str) -> None:
    registered = context.metadata.get(SENSITIVE_HEADERS_KEY) or ()
    if name not in registered:
        context.metadata[SENSITIVE_HEADERS_KEY] = frozenset(registered) | {name}


def _truncate(text: str) -> str:
    if len(text) <= MAX_LOGGED_BODY_CHARS:
        return text
    return f"{text[:MAX_LOGGED_BODY_CHARS]}... ({len(text)} chars)"


def _describe_request_body(request: HttpRequest, extra: frozenset[str]) -> str | None:
    """Render a body for a log line, masked; bodies we cannot mask field by field are only summarised."""
    if request.json_data is not None:
        return _truncate(json.dumps(mask_mapping(request.json_data, extra), default=str))
    data = request.data
    if data is None:
        return None
    if isinstance(data, Mapping):
        return _truncate(json.dumps(mask_mapping(data, extra), default=str))
    size = f", {len(data)} long" if isinstance(data, (str, bytes, bytearray)) else ""
    return f"<{type(data).__name__} body{size}>"


def _describe_response_body(response: HttpResponse, extra: frozenset[str]) -> str:
    parsed = response.json_or_none()
    if parsed is not None:
        return _truncate(json.dumps(mask_mapping(parsed, extra), default=str))
    content_type = response.header("Content-Type") or "unknown type"
    return f"<{len(response.content)} bytes, {content_type}>"


class _LoggingHookBase:
    def __init__(
        self,
        logger: LoggerLike | str | None,
        level: int,
        log_headers: bool,
        log_body: bool,
        sensitive_headers: Iterable[str],
    ) -> None:
        self.logger = _resolve_logger(logger)
        self.level = level
        self.log_headers = log_headers
        self.log_body = log_body
        self.sensitive_headers = frozenset(name.lower() for name in sensitive_headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(logger={self.logger.name!r}, level={logging.getLevelName(self.level)!r})"


def _record_extra(method: str, url: str, context: RequestContext) -> dict[str, Any]:
    """Structured fields for JSON log formatters (names prefixed to avoid LogRecord clashes)."""
    return {
        "http_method": method,
        "http_url": url,
        "http_attempt": context.attempt + 1,
        "correlation_id": context.metadata.get(CORRELATION_ID_KEY),
    }


class LoggingRequestHook(_LoggingHookBase, RequestHookInterface):
    """Logs each outgoing attempt: method, masked URL and params, masked headers, attempt number.

    Runs on every attempt of every call, so when ``level`` is disabled it returns
    before doing any masking or formatting. Bodies are off by default (``log_body``):
    even masked, they tend to carry personal data.
    """

    def __init__(
        self,
        logger: LoggerLike | str | None = None,
        level: int = logging.DEBUG,
        log_headers: bool = True,
        log_body: bool = False,
        sensitive_headers: Iterable[str] = (),
    ) -> None:
        super().__init__(logger, level, log_headers, log_body, sensitive_headers)

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        if not self.logger.isEnabledFor(self.level):
            return request
        # ``request.sensitive``: names whose values were given as secrets (a client assertion, a pipeline pin).
        extra = request.sensitive_names(_extra_sensitive(self.sensitive_headers, context))
        url = mask_url(request.url, extra)
        message = ["HTTP request %s %s (attempt %d)"]
        args: list[Any] = [request.method.value, url, context.attempt + 1]
        if request.params:
            message.append("params=%s")
            args.append(mask_mapping(dict(request.params), extra))
        if self.log_headers and request.headers:
            message.append("headers=%s")
            args.append(mask_headers(request.headers, extra))
        if self.log_body:
            body = _describe_request_body(request, extra)
            if body is not None:
                message.append("body=%s")
                args.append(body)
        self.logger.log(self.level, " ".join(message), *args, extra=_record_extra(request.method.value, url, context))
        return request


class LoggingResponseHook(_LoggingHookBase, ResponseHookInterface):
    """Logs the final response of a call: status, method, masked URL, time of the attempt and of the call."""

    def __init__(
        self,
        logger: LoggerLike | str | None = None,
        level: int = logging.DEBUG,
        log_headers: bool = True,
        log_body: bool = False,
        sensitive_headers: Iterable[str] = (),
    ) -> None:
        super().__init__(logger, level, log_headers, log_body, sensitive_headers)

    def after_response(self, response: HttpResponse, context: RequestContext) -> HttpResponse:
        if not self.logger.isEnabledFor(self.level):
            return response
        request = response.request or context.request
        extra = request.sensitive_names(_extra_sensitive(self.sensitive_headers, context))
        # A server may echo what it was sent (an error text quoting the form): scrub the request's secrets.
        shown = response.masked() if self.log_body or self.log_headers else response
        url = mask_url(response.url or request.url, extra)
        message = ["HTTP response %d %s %s in %.1f ms (attempt %d, call %.1f ms)"]
        args: list[Any] = [response.status_code, request.method.value, url, response.elapsed_ms, context.attempt + 1, context.elapsed_ms]
        if self.log_headers and shown.headers:
            message.append("headers=%s")
            args.append(mask_headers(shown.headers, extra))
        if self.log_body and shown.content:
            message.append("body=%s")
            args.append(_describe_response_body(shown, extra))
        log_extra = _record_extra(request.method.value, url, context)
        log_extra["http_status"] = response.status_code
        self.logger.log(self.level, " ".join(message), *args, extra=log_extra)
        return response


class LoggingErrorHook(ErrorHookInterface):
    """Logs a failed call: method, masked URL, attempts made, exception type and text.

    The library's exceptions mask their own URL, so ``str(error)`` is safe to log for
    them. No traceback: the caller receives the exception and decides whether it is
    worth one, and logging it here as well would duplicate it.
    """

    def __init__(self, logger: LoggerLike | str | None = None, level: int = logging.WARNING) -> None:
        self.logger = _resolve_logger(logger)
        self.level = level

    def on_error(self, error: Exception, context: RequestContext) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        request = context.request
        url = mask_url(request.url, _extra_sensitive(frozenset(), context))
        log_extra = _record_extra(request.method.value, url, context)
        log_extra["error_type"] = type(error).__name__
        self.logger.log(
            self.level,
            "HTTP request %s %s failed (attempt %d): %s: %s",
            request.method.value,
            url,
            context.attempt + 1,
            type(error).__name__,
            error,
            extra=log_extra,
        )

    def __repr__(self) -> str:
        return f"LoggingErrorHook(logger={self.logger.name!r}, level={logging.getLevelName(self.level)!r})"


def _new_id() -> str:
    return uuid.uuid4().hex


class CorrelationIdHook(RequestHookInterface):
    """Sends a correlation id header so one business operation can be traced across services.

    The id is chosen once per call and stored in ``context.metadata["correlation_id"]``,
    so every retry carries the same id (the server logs show one operation, not N). It is,
    in order of preference: the header already on the request, an id already in the
    metadata, ``provider()`` (typically the id of the inbound request being served), or a
    fresh ``id_factory()``.
    """

    def __init__(
        self,
        header_name: str = "X-Correlation-ID",
        id_factory: Callable[[], str] = _new_id,
        provider: Callable[[], str | None] | None = None,
    ) -> None:
        if not isinstance(header_name, str) or not header_name.strip():
            raise ConfigurationError("must be a non-empty header name", field="header_name")
        self.header_name = header_name
        self.id_factory = id_factory
        self.provider = provider

    def _new_correlation_id(self) -> str:
        if self.provider is not None:
            try:
                provided = self.provider()
            except Exception:
                # A broken provider must not cost the call its correlation: fall back to a new id.
                _logger.warning("Correlation id provider %r failed; using a new id", self.provider, exc_info=True)
            else:
                if provided:
                    return str(provided)
        return str(self.id_factory())

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        existing = request.header(self.header_name)
        correlation_id = context.metadata.get(CORRELATION_ID_KEY)
        if existing:
            if correlation_id is None:
                context.metadata[CORRELATION_ID_KEY] = existing
            return request
        if correlation_id is None:
            correlation_id = context.metadata[CORRELATION_ID_KEY] = self._new_correlation_id()
        return request.with_headers({self.header_name: correlation_id})

    def __repr__(self) -> str:
        return f"CorrelationIdHook(header_name={self.header_name!r})"


class AuthorizationHook(RequestHookInterface):
    """Sets an authorization header from ``value_provider()`` on every attempt.

    For credentials that belong to the moment rather than to the client -- e.g.
    forwarding the end user's token of the inbound request -- so there is nothing to
    refresh and no 401 handling (use an auth hook for that). An empty value sends the
    request without the header. The header is marked ``sensitive`` on the request, so it
    is masked when shown, the request is refused for an origin the client does not trust
    (see :class:`~.transport.Transport`) and a redirect to another origin drops it. A
    ``header_name`` that does not look secret is also registered in
    ``context.metadata["sensitive_headers"]`` so logging hooks mask it.
    """

    def __init__(self, value_provider: Callable[[], str], header_name: str = "Authorization") -> None:
        if not callable(value_provider):
            raise ConfigurationError("must be callable", field="value_provider")
        if not isinstance(header_name, str) or not header_name.strip():
            raise ConfigurationError("must be a non-empty header name", field="header_name")
        self.value_provider = value_provider
        self.header_name = header_name
        self._register_name = None if is_sensitive_name(header_name) else header_name.lower()

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        value = self.value_provider()
        if not value:
            return request
        if self._register_name is not None:
            _register_sensitive(context, self._register_name)
        return request.with_headers({self.header_name: value}, sensitive=True)

    def __repr__(self) -> str:
        return f"AuthorizationHook(header_name={self.header_name!r}, value_provider={self.value_provider!r})"


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """Server-announced rate limits of one response; a field is ``None`` when absent or unparsable.

    ``reset_seconds`` and ``retry_after`` are seconds from now, whatever the server's format
    (delta seconds, Unix timestamp, HTTP date).
    """

    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None
    retry_after: float | None = None


#: Reset values this large are Unix timestamps (GitHub style), not deltas: 1e9 s is ~31 years.
_EPOCH_THRESHOLD = 1_000_000_000


def _number(value: str | None) -> float | None:
    """First item of a header value (``"100, 100;w=60"`` -> 100.0) as a finite, non-negative number."""
    if value is None:
        return None
    text = value.split(",", 1)[0].split(";", 1)[0].strip()
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _reset(value: str | None, now: float) -> float | None:
    number = _number(value)
    if number is not None and number >= _EPOCH_THRESHOLD:
        return max(0.0, number - now)
    return number


def _retry_after(value: str | None, now: float) -> float | None:
    """The retry strategies' parser, so a hook and a retry never read one header two ways."""
    return parse_retry_after(value, now=datetime.fromtimestamp(now, timezone.utc))


def _first(headers: Mapping[str, str], names: tuple[str, ...], parse: Callable[[str | None], Any]) -> Any:
    for name in names:
        parsed = parse(find_header(headers, name))
        if parsed is not None:
            return parsed
    return None


def parse_rate_limit_headers(headers: Mapping[str, str], now: float | None = None) -> RateLimitInfo | None:
    """Parse ``RateLimit-*`` (IETF draft), ``X-RateLimit-*`` and ``Retry-After``; ``None`` if nothing usable.

    The IETF names win over the ``X-`` ones when both parse. Never raises on bad values.
    """
    now = time.time() if now is None else now
    info = RateLimitInfo(
        limit=_first(headers, ("RateLimit-Limit", "X-RateLimit-Limit"), _integer),
        remaining=_first(headers, ("RateLimit-Remaining", "X-RateLimit-Remaining"), _integer),
        reset_seconds=_first(headers, ("RateLimit-Reset", "X-RateLimit-Reset"), lambda v: _reset(v, now)),
        retry_after=_retry_after(find_header(headers, "Retry-After"), now),
    )
    if info.limit is None and info.remaining is None and info.reset_seconds is None and info.retry_after is None:
        return None
    return info


class RateLimitResponseHook(ResponseHookInterface):
    """Exposes the server's rate-limit headers as a :class:`RateLimitInfo`.

    The info goes into ``context.metadata["rate_limit"]`` and to ``on_limits`` (e.g. to
    feed a metric or slow a batch job down) only when at least one value parsed. The
    response is returned unchanged. ``clock`` (Unix time) exists for tests.
    """

    def __init__(
        self,
        on_limits: Callable[[RateLimitInfo], None] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.on_limits = on_limits
        self.clock = clock

    def after_response(self, response: HttpResponse, context: RequestContext) -> HttpResponse:
        info = parse_rate_limit_headers(response.headers, self.clock())
        if info is not None:
            context.metadata[RATE_LIMIT_KEY] = info
            if self.on_limits is not None:
                self.on_limits(info)
        return response

    def __repr__(self) -> str:
        return f"RateLimitResponseHook(on_limits={self.on_limits!r})"
