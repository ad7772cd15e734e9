"""The exception hierarchy of the HTTP core.

Every exception raised while sending a request carries the method, the URL and the
original exception, so a log line or a Sentry event says *which* call failed without
anyone re-deriving it from a traceback.

None of it may show a secret, in any form an exception takes:

* ``str``/``repr``: the message is masked as free text (:func:`~.masking.mask_text`)
  and the URL keeps its query parameter *names* only: an API key travelling as
  ``?key=...`` cannot be told from ``?page=2``, so every value is masked.
* The cause chain: a foreign exception (``requests``, ``urllib3``, ``OSError``...)
  quotes the full URL, query included. ``original`` therefore holds a
  :class:`RedactedException` instead: same type name and module, masked message, no
  traceback, no chain. ``__cause__`` and ``__context__`` give the same stand-in, so
  ``traceback.format_exception``, logging, Sentry and Django's error page walk a
  masked chain (the raw exception stays in the interpreter's own slot, which only
  C code reads).
* Pickles (Celery results, multiprocessing): the state is sanitized on the way out:
  an ``HttpResponse``/``HttpRequest`` travels as its ``masked()`` copy, a foreign
  exception as its stand-in.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .masking import mask_text, mask_url

if TYPE_CHECKING:
    from .messages import HttpResponse


class RedactedException(Exception):
    """A foreign exception reduced to what may be shown: its type's name and module, and a masked message.

    Instances are of a subclass named like the original type (``requests.exceptions.ConnectionError``
    in a traceback), created by :func:`redact_exception`. ``exc_type`` is the original
    class when it is importable in this process (``None`` after unpickling elsewhere);
    test ``issubclass(error.original.exc_type, requests.exceptions.Timeout)`` rather than
    ``isinstance``. A stand-in has no traceback and no cause: both may quote the secret.
    """

    exc_module: str = "builtins"
    exc_qualname: str = "Exception"
    exc_type: type[BaseException] | None = None

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    @property
    def type_name(self) -> str:
        """``module.QualName`` of the original exception (``KeyError`` for builtins)."""
        return self.exc_qualname if self.exc_module == "builtins" else f"{self.exc_module}.{self.exc_qualname}"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{self.exc_qualname}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_redacted, (self.exc_module, self.exc_qualname, self.message))


_REDACTED_CLASSES: dict[tuple[str, str], type[RedactedException]] = {}


def _redacted_class(module: str, qualname: str, exc_type: type[BaseException] | None) -> type[RedactedException]:
    key = (module, qualname)
    cls = _REDACTED_CLASSES.get(key)
    if cls is None:
        name = qualname.rpartition(".")[2] or "Exception"
        attrs = {"__module__": module, "__qualname__": qualname, "exc_module": module, "exc_qualname": qualname, "exc_type": exc_type}
        cls = _REDACTED_CLASSES[key] = type(name, (RedactedException,), attrs)
    elif cls.exc_type is None and exc_type is not None:
        cls.exc_type = exc_type
    return cls


def _importable_type(module: str, qualname: str) -> type[BaseException] | None:
    """The class ``module.qualname`` if its module is already imported (nothing is imported to find it)."""
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


def _rebuild_redacted(module: str, qualname: str, message: str) -> RedactedException:
    return _redacted_class(module, qualname, _importable_type(module, qualname))(message)


def redact_exception(exc: BaseException | None, secrets: tuple[object, ...] = ()) -> BaseException | None:
    """``exc`` when it cannot show a secret (``None``, ours, a stand-in), else its :class:`RedactedException`.

    ``secrets`` are extra values to mask in the message (besides what
    :func:`~.masking.mask_text` masks by shape).
    """
    if exc is None or isinstance(exc, (HttpClientException, RedactedException)):
        return exc
    cls = type(exc)
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real failure
        text = ""
    return _redacted_class(cls.__module__, cls.__qualname__, cls)(mask_text(text, secrets))


#: Instance attributes that hold raw exceptions (for matching the chain to ``original``); never pickled.
_PRIVATE_STATE = frozenset({"_raw_original", "_redacted_links"})


def _chain_link(owner: HttpClientException, raw: BaseException | None) -> BaseException | None:
    """The stand-in shown for ``raw`` in ``owner``'s chain: ``owner.original`` when it stands for ``raw``.

    So ``error.__cause__ is error.original`` holds for ``raise Ours(original=exc) from exc``,
    and whatever later replaces ``original`` (e.g. a message withheld altogether) replaces
    the cause too.
    """
    if raw is None or isinstance(raw, (HttpClientException, RedactedException)):
        return raw
    if raw is owner.__dict__.get("_raw_original"):
        return redact_exception(owner.__dict__.get("original"))
    cache: dict[int, tuple[BaseException, BaseException | None]] = owner.__dict__.setdefault("_redacted_links", {})
    hit = cache.get(id(raw))
    if hit is not None and hit[0] is raw:
        return hit[1]
    stand_in = redact_exception(raw)
    cache[id(raw)] = (raw, stand_in)
    return stand_in


#: The interpreter's own ``__cause__`` / ``__context__`` slots, read and written by the properties below.
_CAUSE_SLOT: Any = BaseException.__dict__["__cause__"]
_CONTEXT_SLOT: Any = BaseException.__dict__["__context__"]


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
        self.message = mask_text(message)
        self.method = str(method) if method is not None else None
        self.url = mask_url(url, all_params=True) if url else url
        self._raw_original = original
        self.original = redact_exception(original)
        super().__init__(self.message)

    # The chain as every Python-level reader sees it (traceback, logging, Sentry, Django's
    # error page): foreign exceptions replaced by their stand-ins. ``raise ... from exc``
    # stores the raw exception in the interpreter's slot; these properties read through it.
    @property
    def __cause__(self) -> BaseException | None:
        return _chain_link(self, _CAUSE_SLOT.__get__(self))

    @__cause__.setter
    def __cause__(self, value: BaseException | None) -> None:
        _CAUSE_SLOT.__set__(self, value)

    @property
    def __context__(self) -> BaseException | None:
        return _chain_link(self, _CONTEXT_SLOT.__get__(self))

    @__context__.setter
    def __context__(self, value: BaseException | None) -> None:
        _CONTEXT_SLOT.__set__(self, value)

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
        # backends and multiprocessing need these to cross process boundaries. What
        # crosses is sanitized (see the module docstring); the cause travels as its stand-in.
        state = {key: _sanitized(value) for key, value in self.__dict__.items() if key not in _PRIVATE_STATE}
        return (_rebuild_exception, (type(self), tuple(_sanitized(arg) for arg in self.args), state, self.__cause__))


def _sanitized(value: Any) -> Any:
    """What of an exception's state may be pickled: masked messages, redacted exceptions."""
    from .messages import HttpRequest, HttpResponse

    if isinstance(value, (HttpResponse, HttpRequest)):
        return value.masked()
    if isinstance(value, BaseException):
        return redact_exception(value)
    return value


def _rebuild_exception(
    cls: type[HttpClientException], args: tuple[Any, ...], state: dict[str, Any], cause: BaseException | None = None
) -> HttpClientException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    if cause is not None:
        exc.__cause__ = cause
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
        self.error = mask_text(error) if error else error
        self.error_description = mask_text(error_description) if error_description else error_description
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
        self.last_response = last_response
        super().__init__(message, method=method, url=url, original=last_exception)
        self.last_exception = self.original


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
