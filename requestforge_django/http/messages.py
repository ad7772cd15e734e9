"""Immutable request/response value objects and the per-call context.

``HttpRequest`` and ``HttpResponse`` are frozen so that hooks, retries and threads
can pass them around freely: a hook that wants a different request returns a new one
(``with_headers``), it never edits the one another hook is looking at.
"""

from __future__ import annotations

import json as _json
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from .exceptions import HttpStatusException, ResponseParseException
from .masking import mask_headers, mask_mapping, mask_url

_EMPTY: Mapping[str, str] = MappingProxyType({})


class HttpMethod(str, Enum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"

    def __str__(self) -> str:
        return self.value

    @property
    def is_idempotent(self) -> bool:
        return self in _IDEMPOTENT


_IDEMPOTENT = frozenset({HttpMethod.GET, HttpMethod.HEAD, HttpMethod.PUT, HttpMethod.DELETE, HttpMethod.OPTIONS})


def _frozen_headers(headers: Mapping[str, Any] | None) -> Mapping[str, str]:
    if not headers:
        return _EMPTY
    if isinstance(headers, MappingProxyType):
        return headers
    return MappingProxyType({str(k): str(v) for k, v in headers.items()})


def find_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup over a plain mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request as the caller described it (relative ``url`` allowed)."""

    method: HttpMethod
    url: str
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    params: Mapping[str, Any] | None = None
    json_data: Any = None
    data: Any = None
    timeout: float | tuple[float, float] | None = None
    #: Lower-case names of headers and query parameters whose values are credentials.
    #: Auth hooks add to it (``with_headers(..., sensitive=True)``); masking and the
    #: cross-origin redirect rule read it, so a secret in a header of any name is known as one.
    sensitive: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.method, HttpMethod):
            object.__setattr__(self, "method", HttpMethod(str(self.method).upper()))
        if not isinstance(self.headers, MappingProxyType):
            object.__setattr__(self, "headers", _frozen_headers(self.headers))
        if not isinstance(self.sensitive, frozenset):
            object.__setattr__(self, "sensitive", frozenset(name.lower() for name in self.sensitive))

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        return find_header(self.headers, name)

    def with_headers(self, headers: Mapping[str, Any], *, sensitive: bool = False) -> HttpRequest:
        """A copy with ``headers`` added, replacing existing ones case-insensitively.

        ``sensitive=True`` marks them as credentials: masked wherever the request is shown
        and never sent to an origin the client does not trust.
        """
        if not headers:
            return self
        replaced = {name.lower() for name in headers}
        merged = {k: v for k, v in self.headers.items() if k.lower() not in replaced}
        merged.update((str(k), str(v)) for k, v in headers.items())
        marked = self.sensitive | replaced if sensitive else self.sensitive
        return self._replace(headers=MappingProxyType(merged), sensitive=marked)

    def with_params(self, params: Mapping[str, Any], *, sensitive: bool = False) -> HttpRequest:
        """A copy with query ``params`` added (replacing same-named ones); ``sensitive`` as in :meth:`with_headers`."""
        if not params:
            return self
        merged = {**(self.params or {}), **params}
        marked = self.sensitive | {str(name).lower() for name in params} if sensitive else self.sensitive
        return self._replace(params=merged, sensitive=marked)

    def without_headers(self, *names: str) -> HttpRequest:
        lowered = {n.lower() for n in names}
        return self._replace(headers=MappingProxyType({k: v for k, v in self.headers.items() if k.lower() not in lowered}))

    def with_url(self, url: str) -> HttpRequest:
        return self._replace(url=url)

    def _replace(self, **changes: Any) -> HttpRequest:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return HttpRequest(**values)

    def to_dict(self, *, mask: bool = True, sensitive_headers: Iterable[str] = ()) -> dict[str, Any]:
        """Plain data for logs and debugging; secrets are masked unless ``mask=False``.

        ``sensitive_headers`` adds names to mask (e.g. ``HttpClientConfig.sensitive_headers``),
        because a request does not know the configuration of the client sending it.
        """
        extra = frozenset(sensitive_headers)
        return {
            "method": self.method.value,
            "url": mask_url(self.url, extra) if mask else self.url,
            "headers": mask_headers(self.headers, extra) if mask else dict(self.headers),
            "params": (mask_mapping(dict(self.params), extra) if mask else dict(self.params)) if self.params else None,
            "json_data": mask_mapping(self.json_data, extra) if mask else self.json_data,
            "data": mask_mapping(self.data, extra) if mask and isinstance(self.data, (Mapping, list)) else self.data,
            "timeout": self.timeout,
        }

    def to_curl(self, *, mask: bool = True, sensitive_headers: Iterable[str] = ()) -> str:
        """A cURL command reproducing the request, secrets masked unless ``mask=False`` (see :meth:`to_dict`)."""
        from urllib.parse import urlencode

        extra = frozenset(sensitive_headers)
        url = self.url
        if self.params:
            params = mask_mapping(dict(self.params), extra) if mask else dict(self.params)
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        if mask:
            url = mask_url(url, extra)
        parts = ["curl", "-X", self.method.value, shlex.quote(url)]
        headers = mask_headers(self.headers, extra) if mask else dict(self.headers)
        for name, value in headers.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.json_data is not None:
            body = mask_mapping(self.json_data, extra) if mask else self.json_data
            if self.header("Content-Type") is None:
                parts += ["-H", shlex.quote("Content-Type: application/json")]
            parts += ["--data-raw", shlex.quote(_json.dumps(body))]
        elif self.data is not None:
            body = self.data
            if isinstance(body, Mapping):
                body = urlencode(mask_mapping(dict(body), extra) if mask else dict(body), doseq=True)
            elif isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            parts += ["--data-raw", shlex.quote(str(body))]
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            HttpRequest,
            (self.method, self.url, dict(self.headers), self.params, self.json_data, self.data, self.timeout, self.sensitive),
        )

    def __repr__(self) -> str:
        return f"HttpRequest(method={self.method.value!r}, url={mask_url(self.url)!r}, headers={mask_headers(self.headers)!r})"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A fully read HTTP response; ``headers`` is case-insensitive and read-only."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    url: str
    elapsed_ms: float = 0.0
    request: HttpRequest | None = None
    encoding: str | None = None
    reason: str = ""

    @property
    def text(self) -> str:
        """The body decoded with ``encoding``, else the Content-Type charset, else UTF-8.

        An unknown charset (a server bug we cannot fix) falls back to UTF-8 instead of raising.
        """
        try:
            return self.content.decode(self.encoding or _charset(self.headers) or "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parse the body as JSON, raising :class:`ResponseParseException` with context on failure."""
        try:
            return _json.loads(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            method = str(self.request.method) if self.request is not None else None
            raise ResponseParseException(
                f"Response body is not valid JSON (status {self.status_code}, {len(self.content)} bytes)",
                method=method,
                url=self.url,
                original=exc,
            ) from exc

    def json_or_none(self) -> Any:
        """The parsed JSON body, or ``None`` when the body is empty or not JSON."""
        if not self.content:
            return None
        try:
            return _json.loads(self.content)
        except (ValueError, UnicodeDecodeError):
            return None

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        return 500 <= self.status_code < 600

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def raise_for_status(self) -> HttpResponse:
        """Raise :class:`HttpStatusException` for 4xx/5xx; return ``self`` otherwise (chainable)."""
        if self.status_code >= 400:
            kind = "Client error" if self.status_code < 500 else "Server error"
            reason = f" {self.reason}" if self.reason else ""
            raise HttpStatusException(self, f"{kind}: HTTP {self.status_code}{reason}")
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        headers = dict(self.headers)
        return (
            _rebuild_response,
            (self.status_code, headers, self.content, self.url, self.elapsed_ms, self.request, self.encoding, self.reason),
        )

    def __repr__(self) -> str:
        return f"HttpResponse(status_code={self.status_code}, url={mask_url(self.url)!r}, elapsed_ms={self.elapsed_ms:.1f})"


def _rebuild_response(status_code: int, headers: dict[str, str], *rest: Any) -> HttpResponse:
    from requests.structures import CaseInsensitiveDict

    return HttpResponse(status_code, MappingProxyType(CaseInsensitiveDict(headers)), *rest)


def _charset(headers: Mapping[str, str]) -> str | None:
    content_type = find_header(headers, "Content-Type")
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


@dataclass(slots=True)
class RequestContext:
    """Mutable state of one call through the lifecycle (attempts, timing, hook scratch space).

    One context per call and never shared between threads; hooks keep per-call state
    in ``metadata`` instead of on themselves.
    """

    request: HttpRequest
    attempt: int = 0
    max_retries: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.perf_counter)
    auth_retried: bool = False

    def increment_attempt(self) -> None:
        self.attempt += 1

    @property
    def is_retry(self) -> bool:
        return self.attempt > 0

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started_at) * 1000.0
