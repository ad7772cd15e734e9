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
from typing import Any, cast
from urllib.parse import urlencode

from .exceptions import HttpStatusException, ResponseParseException
from .masking import mask_body, mask_headers, mask_mapping, mask_url, scrub, scrub_bytes
from .secrets import Secret, reveal_all
from .sent_secrets import secret_values_of

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


def _header_value(value: Any) -> Any:
    """Header values are strings; a :class:`Secret` stays one (revealed only when the wire request is built)."""
    return value if isinstance(value, Secret) else str(value)


def _frozen_headers(headers: Mapping[str, Any] | None) -> Mapping[str, str]:
    if not headers:
        return _EMPTY
    if isinstance(headers, MappingProxyType):
        return headers
    return MappingProxyType({str(k): _header_value(v) for k, v in headers.items()})


def _secret_header_names(headers: Mapping[str, Any]) -> frozenset[str]:
    """Lower-case names of the headers whose value is a :class:`Secret`."""
    return frozenset(name.lower() for name, value in headers.items() if isinstance(value, Secret))


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
        if not isinstance(self.sensitive, frozenset):
            object.__setattr__(self, "sensitive", frozenset(name.lower() for name in self.sensitive))
        if not isinstance(self.headers, MappingProxyType):
            headers = _frozen_headers(self.headers)
            object.__setattr__(self, "headers", headers)
            secret_names = _secret_header_names(headers)
            if secret_names:  # a Secret value is a credential whatever the header's name
                object.__setattr__(self, "sensitive", self.sensitive | secret_names)

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
        added = {str(name): _header_value(value) for name, value in headers.items()}
        if self.headers:
            replaced = {name.lower() for name in added}
            merged = {k: v for k, v in self.headers.items() if k.lower() not in replaced}
            merged.update(added)
        else:  # the common case: an auth hook adding its header to a request without any
            merged = added
        if sensitive:
            marked = self.sensitive.union(name.lower() for name in added)
        else:
            secret_names = _secret_header_names(added)
            marked = self.sensitive | secret_names if secret_names else self.sensitive
        return HttpRequest(self.method, self.url, MappingProxyType(merged), self.params, self.json_data, self.data, self.timeout, marked)

    def with_credential_headers(self, headers: MappingProxyType[str, str], names: frozenset[str]) -> HttpRequest:
        """:meth:`with_headers` ``(headers, sensitive=True)`` for an auth hook that prepared both once.

        ``headers`` holds plain string values, already checked; ``names`` is their
        lower-case names. On a request without headers of its own (the common call) the
        copy then shares them instead of merging: this runs on every authenticated call.
        """
        if self.headers:
            return self.with_headers(headers, sensitive=True)
        sensitive = self.sensitive | names if self.sensitive else names
        return HttpRequest(self.method, self.url, headers, self.params, self.json_data, self.data, self.timeout, sensitive)

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

    # -- showing a request: masked unless asked otherwise ----------------------------------------
    #
    # Masked: every header, query parameter and body field named in ``sensitive`` (what the
    # auth hooks set) or in ``sensitive_headers``, every secret-looking name
    # (``masking.is_sensitive_name``) and every ``Secret`` value. A body that is not a mapping
    # is parsed (form string, bytes, list of pairs, JSON text) and masked field by field; one
    # that parses as neither is shown only as ``<N bytes>``.

    def sensitive_names(self, extra: Iterable[str] = ()) -> frozenset[str]:
        """``sensitive`` plus ``extra``, lower case: the names masked besides the secret-looking ones."""
        return self.sensitive | {str(name).lower() for name in extra}

    def to_dict(self, *, mask: bool = True, sensitive_headers: Iterable[str] = ()) -> dict[str, Any]:
        """Plain data for logs and debugging; secrets are masked unless ``mask=False``.

        ``sensitive_headers`` adds names to mask (e.g. ``HttpClientConfig.sensitive_headers``),
        because a request does not know the configuration of the client sending it.
        """
        if not mask:
            return {
                "method": self.method.value,
                "url": self.url,
                "headers": reveal_all(dict(self.headers)),
                "params": reveal_all(dict(self.params)) if self.params else None,
                "json_data": reveal_all(self.json_data),
                "data": reveal_all(self.data),
                "timeout": self.timeout,
            }
        names = self.sensitive_names(sensitive_headers)
        return {
            "method": self.method.value,
            "url": mask_url(self.url, names),
            "headers": mask_headers(self.headers, names),
            "params": mask_mapping(dict(self.params), names) if self.params else None,
            "json_data": mask_mapping(self.json_data, names),
            "data": mask_body(self.data, names),
            "timeout": self.timeout,
        }

    def to_curl(self, *, mask: bool = True, sensitive_headers: Iterable[str] = ()) -> str:
        """A cURL command reproducing the request, secrets masked unless ``mask=False`` (see :meth:`to_dict`).

        Masked, a body that cannot be masked field by field is replaced by ``<N bytes>``:
        the command then no longer reproduces the request, which is the point.
        """
        names = self.sensitive_names(sensitive_headers)
        url = self.url
        if self.params:
            params: Any = mask_mapping(dict(self.params), names) if mask else reveal_all(dict(self.params))
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True, safe='*' if mask else '')}"
        if mask:
            url = mask_url(url, names)
        parts = ["curl", "-X", self.method.value, shlex.quote(url)]
        headers = mask_headers(self.headers, names) if mask else reveal_all(dict(self.headers))
        for name, value in headers.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.json_data is not None:
            body = mask_mapping(self.json_data, names) if mask else reveal_all(self.json_data)
            if self.header("Content-Type") is None:
                parts += ["-H", shlex.quote("Content-Type: application/json")]
            parts += ["--data-raw", shlex.quote(_json.dumps(body))]
        elif self.data is not None:
            parts += ["--data-raw", shlex.quote(_curl_body(mask_body(self.data, names) if mask else reveal_all(self.data), mask))]
        return " ".join(parts)

    def masked(self, extra: Iterable[str] = ()) -> HttpRequest:
        """A copy with every value :meth:`to_dict` would mask replaced by the mask.

        What exceptions carry across a pickle: the shape of the request survives (method,
        URL, header names, body fields), its credentials do not.
        """
        names = self.sensitive_names(extra)
        return HttpRequest(
            self.method,
            mask_url(self.url, names),
            mask_headers(self.headers, names),
            cast("Mapping[str, Any]", mask_mapping(dict(self.params), names)) if self.params else self.params,
            mask_mapping(self.json_data, names),
            mask_body(self.data, names),
            self.timeout,
            self.sensitive,
        )

    def secret_values(self, extra: Iterable[str] = ()) -> frozenset[str]:
        """The plain values of everything this request sends that :meth:`masked` hides.

        For scrubbing text a server echoes back (an error body quoting the form, a
        ``Location`` header carrying the query): a value the library sent as a secret is
        masked wherever it comes back. Values shorter than 4 characters are left out.
        """
        return secret_values_of(self.headers, self.url, self.params, (self.json_data, self.data), self.sensitive_names(extra))

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            HttpRequest,
            (self.method, self.url, dict(self.headers), self.params, self.json_data, self.data, self.timeout, self.sensitive),
        )

    def __repr__(self) -> str:
        url, headers = mask_url(self.url, self.sensitive), mask_headers(self.headers, self.sensitive)
        return f"HttpRequest(method={self.method.value!r}, url={url!r}, headers={headers!r})"


def _curl_body(body: Any, masked: bool) -> str:
    if isinstance(body, Mapping):
        return urlencode(list(body.items()), doseq=True, safe="*" if masked else "")
    if isinstance(body, (list, tuple)):
        if all(isinstance(item, tuple) and len(item) == 2 for item in body):
            return urlencode(list(body), doseq=True, safe="*" if masked else "")
        return _json.dumps(body)
    if isinstance(body, (bytes, bytearray)):
        return bytes(body).decode("utf-8", "replace")
    return str(body)


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

    def masked(self) -> HttpResponse:
        """A copy safe to carry across a pickle (what exceptions keep): see :meth:`HttpRequest.masked`.

        The request is masked; response headers with secret-looking names (``Set-Cookie``)
        are masked; and every value the request sent as a secret is scrubbed from the
        body, the other headers, the URL and the reason phrase, since a server may echo
        what it was sent.
        """
        request = self.request
        names = request.sensitive if request is not None else frozenset()
        secrets = request.secret_values() if request is not None else frozenset()
        headers = {name: scrub(value, secrets) for name, value in mask_headers(self.headers, names).items()}
        return _rebuild_response(
            self.status_code,
            headers,
            scrub_bytes(self.content, secrets),
            scrub(mask_url(self.url, names), secrets),
            self.elapsed_ms,
            request.masked() if request is not None else None,
            self.encoding,
            scrub(self.reason, secrets),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        headers = dict(self.headers)
        return (
            _rebuild_response,
            (self.status_code, headers, self.content, self.url, self.elapsed_ms, self.request, self.encoding, self.reason),
        )

    def __repr__(self) -> str:
        names = self.request.sensitive if self.request is not None else frozenset()
        return f"HttpResponse(status_code={self.status_code}, url={mask_url(self.url, names)!r}, elapsed_ms={self.elapsed_ms:.1f})"


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
