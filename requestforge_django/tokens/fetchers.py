"""HTTP pipeline steps: fetch a token from a response header or from a JSON body.

:class:`BaseHttpTokenFetcher` builds the request (with the extension points subclasses override
``_build_request_headers(context)``, ``_build_request_data``, ``_build_request_json``
and ``_build_request_params``), sends it with its own client, and leaves extracting
the token to a subclass. Values may contain templates such as ``"{device_token}"``
(see :mod:`.templates`), so using an earlier step's token needs no subclass.

Errors are :class:`AuthenticationException` with ``step`` set to the step name; the
pipeline adds its own name as ``service_name``. Answer parsing (status, JSON, OAuth2
error fields, never quoting an HTML body, scrubbing every value sent, validating the
token before anything caches it) is shared with the providers in :mod:`.parsing`.

Trust boundary (the same as the providers', see :mod:`.providers`): the step's own
client never follows a redirect to another origin (an :class:`AuthenticationException`
naming the step and that origin; nothing is sent there), follows same-origin ones,
caps the answer's size and bounds the whole exchange by ``deadline``. Values under
secret-looking names (``password``, ``X-Api-Key``, ...), values given as
:class:`~requestforge_django.http.secrets.Secret` and every filled-in template (an
earlier step's token) are kept as :class:`Secret` and revealed only in
:func:`~.providers.wire_request`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from ..http.client import HttpClient
from ..http.masking import is_sensitive_name
from ..http.messages import HttpMethod, HttpRequest, HttpResponse
from ..http.secrets import Secret
from .data import DEFAULT_MIN_LIFETIME, TokenData, token_type_problem
from .interfaces import FetchContext, TokenFetcherInterface
from .parsing import sent_values, token_from_header, token_from_response
from .providers import DEFAULT_TOKEN_MAX_BYTES, DEFAULT_TOKEN_TIMEOUT, build_token_client, send_token_request, wire_request
from .templates import Template, compile_value, render_value


def normalize_ttl(ttl: timedelta | float | None, *, owner: str, min_lifetime: float = 0.0) -> timedelta | None:
    """``ttl`` as a positive :class:`timedelta` (numbers are seconds) or ``None``.

    A ``ttl`` below ``min_lifetime`` is refused too: it caps every token of the step, so
    a step with a one-second TTL would fetch on almost every call.
    """
    if ttl is None:
        return None
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        ttl = timedelta(seconds=ttl)
    if not isinstance(ttl, timedelta) or ttl.total_seconds() <= 0:
        raise ValueError(f"step {owner!r}: ttl must be a positive timedelta or number of seconds, got {ttl!r}")
    if ttl.total_seconds() < min_lifetime:
        raise ValueError(f"step {owner!r}: ttl {ttl.total_seconds():g} s is shorter than the minimum token lifetime ({min_lifetime:g} s)")
    return ttl


def normalize_depends_on(depends_on: Iterable[str] | str | None, *, owner: str) -> tuple[str, ...]:
    """A tuple of step names; a bare string is one name, never its characters."""
    if depends_on is None:
        return ()
    names = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
    for dep in names:
        if not isinstance(dep, str) or not dep:
            raise ValueError(f"step {owner!r}: depends_on entries must be step names, got {dep!r}")
    if owner in names:
        raise ValueError(f"step {owner!r} depends on itself")
    return tuple(dict.fromkeys(names))


class BaseHttpTokenFetcher(TokenFetcherInterface):
    """A pipeline step that obtains its token with one HTTP request to ``base_url + endpoint``."""

    def __init__(
        self,
        name: str,
        base_url: str,
        endpoint: str,
        method: str = "POST",
        request_headers: Mapping[str, str] | None = None,
        request_data: Mapping[str, Any] | str | None = None,
        request_json: Any = None,
        request_params: Mapping[str, Any] | None = None,
        ttl: timedelta | float | None = None,
        depends_on: Iterable[str] = (),
        token_type: str = "Bearer",
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        *,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a step name must be a non-empty string, got {name!r}")
        self.name = name
        self.url = _join_url(base_url, endpoint, owner=name)
        try:
            self.method = HttpMethod(str(method).upper())
        except ValueError:
            raise ValueError(f"step {name!r}: unknown HTTP method {method!r}") from None
        if not isinstance(min_lifetime, (int, float)) or isinstance(min_lifetime, bool) or min_lifetime < 0:
            raise ValueError(f"step {name!r}: min_lifetime must be a number >= 0, got {min_lifetime!r}")
        self.min_lifetime = float(min_lifetime)
        self.depends_on = normalize_depends_on(depends_on, owner=name)
        self.ttl = normalize_ttl(ttl, owner=name, min_lifetime=self.min_lifetime)
        if not isinstance(token_type, str):
            raise ValueError(f"step {name!r}: token_type must be a string")
        problem = token_type_problem(token_type)
        if problem:
            raise ValueError(f"step {name!r}: token_type {problem}; it must be one word of visible ASCII (or empty)")
        self.token_type = token_type
        for label, value in (("timeout", timeout), ("deadline", deadline)):
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"step {name!r}: {label} must be a positive number, got {value!r}")
        self.timeout = float(timeout)
        self.deadline = float(deadline) if deadline is not None else self.timeout

        def compiled(value: Any, where: str) -> Any:
            return compile_value(value, owner=name, allowed=self.depends_on, where=where)

        self._headers = _protect(compiled(dict(request_headers or {}), "request_headers"))
        # A body given as an encoded string is masked whole: it may hold any field.
        self._data = _protect(compiled(request_data, "request_data"), isinstance(request_data, str))
        self._json = _protect(compiled(request_json, "request_json"))
        self._params = _protect(compiled(dict(request_params or {}), "request_params"))
        self._owns_client = http_client is None
        self._http = http_client or build_token_client(
            self.timeout, f"token-step:{name}", endpoint=self.url, deadline=self.deadline, max_response_bytes=max_response_bytes
        )

    def _check_lifetime(self, default_lifetime: float | None) -> None:
        if default_lifetime is not None and default_lifetime < self.min_lifetime:
            raise ValueError(
                f"step {self.name!r}: default_lifetime {default_lifetime:g} s is shorter than the minimum token lifetime "
                f"({self.min_lifetime:g} s)"
            )

    # -- request building (extension points) ------------------------------------------------

    def _build_request_headers(self, context: FetchContext | None) -> dict[str, str | Secret]:
        headers = {k: v if isinstance(v, Secret) else str(v) for k, v in self._render(self._headers, context).items()}
        if not any(k.lower() == "accept" for k in headers):
            headers["Accept"] = "application/json"
        return headers

    def _build_request_data(self, context: FetchContext | None) -> Any:
        return self._render(self._data, context)

    def _build_request_json(self, context: FetchContext | None) -> Any:
        return self._render(self._json, context)

    def _build_request_params(self, context: FetchContext | None) -> dict[str, Any] | None:
        return self._render(self._params, context) or None

    def _build_request(self, context: FetchContext) -> HttpRequest:
        """The wire request; :class:`Secret` values are revealed only inside :func:`wire_request`."""
        return wire_request(
            self.method,
            self.url,
            headers=self._build_request_headers(context),
            params=self._build_request_params(context),
            json_data=self._build_request_json(context),
            data=self._build_request_data(context),
            timeout=self.timeout,
        )

    def _render(self, compiled: Any, context: FetchContext | None) -> Any:
        return render_value(compiled, context if context is not None else FetchContext(), owner=self.name)

    # -- fetching --------------------------------------------------------------------------

    def fetch(self, context: FetchContext) -> TokenData:
        # The built request (revealed values) is never bound to a local of this frame.
        response = send_token_request(self._http, self._build_request(context), service_name=None, step=self.name, url=self.url)
        return self._extract_token(response, context)

    def _sent_values(self, response: HttpResponse, context: FetchContext) -> tuple[Secret, ...]:
        """What this step sent (and the earlier tokens it may have sent), to scrub from error text."""
        earlier = [
            value
            for dep in self.depends_on
            if (token := context.get_token(dep)) is not None
            for value in (token.access_token, token.refresh_token)
            if value
        ]
        return sent_values(response.request, extra=earlier)

    @abstractmethod
    def _extract_token(self, response: HttpResponse, context: FetchContext) -> TokenData:
        """Turn the endpoint's answer into this step's token (raise :class:`AuthenticationException` if it cannot)."""

    def close(self) -> None:
        """Close the private HTTP client (a client passed in belongs to the caller)."""
        if self._owns_client:
            self._http.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={self.url!r}, method={self.method.value!r}, depends_on={self.depends_on!r})"


class HeaderTokenFetcher(BaseHttpTokenFetcher):
    """Takes the token from a response header (``token_header``, e.g. ``"X-Device-Token"``).

    The token expires after ``default_lifetime`` seconds if given, otherwise only the
    step's ``ttl`` bounds how long it is cached.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        endpoint: str,
        method: str = "POST",
        request_headers: Mapping[str, str] | None = None,
        request_data: Mapping[str, Any] | str | None = None,
        request_json: Any = None,
        request_params: Mapping[str, Any] | None = None,
        ttl: timedelta | float | None = None,
        depends_on: Iterable[str] = (),
        token_type: str = "Bearer",
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        *,
        token_header: str,
        default_lifetime: float | None = None,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> None:
        if not isinstance(token_header, str) or not token_header.strip():
            raise ValueError(f"step {name!r}: token_header must be a header name, got {token_header!r}")
        self.token_header = token_header
        self.default_lifetime = default_lifetime
        super().__init__(
            name, base_url, endpoint, method, request_headers, request_data, request_json, request_params,
            ttl, depends_on, token_type, http_client, timeout,
            deadline=deadline, max_response_bytes=max_response_bytes, min_lifetime=min_lifetime,
        )  # fmt: skip
        self._check_lifetime(default_lifetime)

    def _extract_token(self, response: HttpResponse, context: FetchContext) -> TokenData:
        return token_from_header(
            response,
            self.token_header,
            service_name=None,
            step=self.name,
            token_type=self.token_type,
            lifetime=self.default_lifetime,
            clock=context.clock,
            secrets=self._sent_values(response, context),
        )


class BodyTokenFetcher(BaseHttpTokenFetcher):
    """Takes the token from the JSON body; field names may be dotted paths (``"data.auth.token"``).

    ``expires_in_field`` (dotted too) gives the lifetime; without it the token
    expires after ``default_lifetime`` seconds if given, else only ``ttl`` bounds it.
    The step's ``token_type`` is used whatever the body says.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        endpoint: str,
        method: str = "POST",
        request_headers: Mapping[str, str] | None = None,
        request_data: Mapping[str, Any] | str | None = None,
        request_json: Any = None,
        request_params: Mapping[str, Any] | None = None,
        ttl: timedelta | float | None = None,
        depends_on: Iterable[str] = (),
        token_type: str = "Bearer",
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        *,
        token_field: str = "access_token",
        expires_in_field: str = "expires_in",
        refresh_token_field: str | None = None,
        default_lifetime: float | None = None,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> None:
        for label, value in (("token_field", token_field), ("expires_in_field", expires_in_field)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"step {name!r}: {label} must be a non-empty field path, got {value!r}")
        self.token_field = token_field
        self.expires_in_field = expires_in_field
        self.refresh_token_field = refresh_token_field
        self.default_lifetime = default_lifetime
        super().__init__(
            name, base_url, endpoint, method, request_headers, request_data, request_json, request_params,
            ttl, depends_on, token_type, http_client, timeout,
            deadline=deadline, max_response_bytes=max_response_bytes, min_lifetime=min_lifetime,
        )  # fmt: skip
        self._check_lifetime(default_lifetime)

    def _extract_token(self, response: HttpResponse, context: FetchContext) -> TokenData:
        return token_from_response(
            response,
            service_name=None,
            step=self.name,
            token_field=self.token_field,
            expires_in_field=self.expires_in_field,
            refresh_token_field=self.refresh_token_field,
            token_type=self.token_type,
            default_lifetime=self.default_lifetime,
            min_lifetime=self.min_lifetime,
            clock=context.clock,
            secrets=self._sent_values(response, context),
        )


def _join_url(base_url: str, endpoint: str, *, owner: str) -> str:
    if not isinstance(endpoint, str) or not isinstance(base_url, str):
        raise ValueError(f"step {owner!r}: base_url and endpoint must be strings")
    if endpoint.startswith(("http://", "https://")):
        return endpoint
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"step {owner!r}: base_url must start with http:// or https://, got {base_url!r}")
    if not endpoint:
        return base_url
    return f"{base_url.rstrip('/')}/{endpoint.lstrip('/')}"


def _protect(compiled: Any, sensitive: bool = False) -> Any:
    """Wrap literal strings under secret-looking names (``password``, ``X-Api-Key``) in :class:`Secret`.

    Templates already render to :class:`Secret`; values given as :class:`Secret` stay so.
    Keeps the secrets masked in frame locals and ``repr`` until :func:`wire_request`.
    """
    if isinstance(compiled, str):
        return Secret(compiled) if sensitive else compiled
    if isinstance(compiled, (Secret, Template)):
        return compiled
    if isinstance(compiled, dict):
        return {k: _protect(v, sensitive or (isinstance(k, str) and is_sensitive_name(k))) for k, v in compiled.items()}
    if isinstance(compiled, list):
        return [_protect(item, sensitive) for item in compiled]
    if isinstance(compiled, tuple):
        if len(compiled) == 2 and isinstance(compiled[0], str):  # a form pair
            return (compiled[0], _protect(compiled[1], sensitive or is_sensitive_name(compiled[0])))
        return tuple(_protect(item, sensitive) for item in compiled)
    return compiled
