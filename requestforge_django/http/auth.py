"""Auth hooks for static credentials (bearer token, API key, HTTP Basic) and their composition.

``before_request`` runs on every attempt of every call, so each hook validates and
precomputes its header in ``__init__`` and does a single ``with_headers`` call per
request. Static credentials cannot be refreshed: ``refresh_auth`` stays ``False`` and a
401 reaches the caller instead of being retried with the same secret.

Every ``__repr__`` masks the secret, since hooks end up in config reprs and logs.
Secrets may be given as ``str`` or :class:`~.secrets.Secret`; they are revealed once,
here, to build the private header, and everything a hook adds to a request is marked
``sensitive``: masked wherever the request is shown, never sent to an origin the client
does not trust, and stripped from a redirect to another origin.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING

from .exceptions import ConfigurationError
from .hooks import AuthHookInterface, arefresh_auth, refresh_auth
from .masking import MASK, mask_secret
from .paths import normalize_excluded_paths
from .secrets import Secret

if TYPE_CHECKING:
    from .messages import HttpRequest, HttpResponse, RequestContext


def _text(value: object, field: str) -> str:
    """A non-empty single-line string: a newline in a header value would be header injection.

    A :class:`Secret` is revealed here (the value goes into a privately held header).
    """
    if isinstance(value, Secret):
        value = value.reveal()
    if not isinstance(value, str) or not value:
        raise ConfigurationError("must be a non-empty string", field=field)
    if "\r" in value or "\n" in value:
        raise ConfigurationError("must not contain line breaks", field=field)
    return value


class _StaticHeaderAuthHook(AuthHookInterface):
    """Adds one precomputed header; subclasses only decide its name and value."""

    _headers: MappingProxyType[str, str]
    _names: frozenset[str]

    def _set_header(self, name: str, value: str) -> None:
        """The header this hook adds, with its lower-case name (prepared once, sent on every call)."""
        self._headers = MappingProxyType({name: value})
        self._names = frozenset({name.lower()})

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        return request.with_credential_headers(self._headers, self._names)


class BearerTokenAuthHook(_StaticHeaderAuthHook):
    """A static token sent as ``Authorization: Bearer <token>`` (header name and prefix configurable).

    An empty ``prefix`` sends the bare token, for APIs that want ``Authorization: <token>``.
    """

    def __init__(
        self,
        token: str | Secret,
        excluded_paths: Iterable[str] = (),
        header_name: str = "Authorization",
        prefix: str = "Bearer",
    ) -> None:
        token = _text(token, "token")
        self._token = Secret(token)
        self.header_name = _text(header_name, "header_name")
        if not isinstance(prefix, str) or "\r" in prefix or "\n" in prefix:
            raise ConfigurationError("must be a single-line string", field="prefix")
        self.prefix = prefix
        self.excluded_paths = normalize_excluded_paths(excluded_paths)
        self._set_header(header_name, f"{prefix} {token}" if prefix else token)

    def __repr__(self) -> str:
        return (
            f"BearerTokenAuthHook(token={mask_secret(self._token.reveal())!r}, header_name={self.header_name!r}, "
            f"prefix={self.prefix!r}, excluded_paths={self.excluded_paths!r})"
        )


class ApiKeyAuthHook(_StaticHeaderAuthHook):
    """A static API key, sent in ``header_name`` or, when ``query_param`` is set, as that query parameter.

    Prefer the header: query strings end up in access logs and proxies. A query
    parameter whose name does not look secret (e.g. ``key``) is not masked by the
    library's URL masking, so give it a name the masking knows (``api_key``) if you can.
    """

    def __init__(
        self,
        api_key: str | Secret,
        header_name: str = "X-API-Key",
        excluded_paths: Iterable[str] = (),
        query_param: str | None = None,
    ) -> None:
        api_key = _text(api_key, "api_key")
        self._api_key = Secret(api_key)
        self.header_name = _text(header_name, "header_name")
        self.query_param = None if query_param is None else _text(query_param, "query_param")
        self.excluded_paths = normalize_excluded_paths(excluded_paths)
        self._set_header(header_name, api_key)
        self._params = MappingProxyType({self.query_param: api_key}) if self.query_param is not None else None

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        if self._params is None:
            return request.with_credential_headers(self._headers, self._names)
        return request.with_params(self._params, sensitive=True)

    def __repr__(self) -> str:
        where = f"query_param={self.query_param!r}" if self.query_param else f"header_name={self.header_name!r}"
        return f"ApiKeyAuthHook(api_key={mask_secret(self._api_key.reveal())!r}, {where}, excluded_paths={self.excluded_paths!r})"


class BasicAuthHook(_StaticHeaderAuthHook):
    """HTTP Basic authentication (RFC 7617), credentials encoded as UTF-8.

    The header is built once here rather than per request; ``requests``' own Basic auth
    would re-encode it on every send.
    """

    def __init__(self, username: str, password: str | Secret, excluded_paths: Iterable[str] = ()) -> None:
        self.username = username = _text(username, "username")
        if ":" in username:
            raise ConfigurationError("must not contain ':' (RFC 7617)", field="username")
        if isinstance(password, Secret):
            password = password.reveal()
        if not isinstance(password, str):
            raise ConfigurationError("must be a string", field="password")
        self.excluded_paths = normalize_excluded_paths(excluded_paths)
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._set_header("Authorization", f"Basic {credentials}")

    def __repr__(self) -> str:
        return f"BasicAuthHook(username={self.username!r}, password={MASK!r}, excluded_paths={self.excluded_paths!r})"


class CompositeAuthHook(AuthHookInterface):
    """Applies several auth hooks to one request, e.g. an API key for the gateway plus a user token.

    Each child keeps its own ``excluded_paths``; the composite's ``excluded_paths`` (keyword
    only) excludes a path from all of them. When two children set the same header the later
    one wins.
    """

    def __init__(self, *hooks: AuthHookInterface, excluded_paths: Iterable[str] = ()) -> None:
        if not hooks:
            raise ConfigurationError("needs at least one auth hook", field="hooks")
        for hook in hooks:
            if not isinstance(hook, AuthHookInterface):
                raise ConfigurationError(f"{type(hook).__name__} does not implement AuthHookInterface", field="hooks")
        self.hooks: tuple[AuthHookInterface, ...] = hooks
        self.excluded_paths = normalize_excluded_paths(excluded_paths)

    def should_authenticate(self, request: HttpRequest) -> bool:
        return super().should_authenticate(request) and any(hook.should_authenticate(request) for hook in self.hooks)

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        original = request
        for hook in self.hooks:
            if hook.should_authenticate(original):
                request = hook.before_request(request, context)
        return request

    async def abefore_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        original = request
        for hook in self.hooks:
            if hook.should_authenticate(original):
                request = await hook.abefore_request(request, context)
        return request

    def is_auth_error(self, response: HttpResponse) -> bool:
        """Whether any child that applies to the response's request calls it an auth error."""
        request = response.request
        return any(hook.is_auth_error(response) for hook in self.hooks if request is None or hook.should_authenticate(request))

    def refresh_auth(self, context: RequestContext | None = None) -> bool:
        """Refresh every child (we cannot tell which one was rejected); ``True`` if any obtained new credentials."""
        results = [refresh_auth(hook, context) for hook in self.hooks]
        return any(results)

    async def arefresh_auth(self, context: RequestContext | None = None) -> bool:
        """:meth:`refresh_auth` for the async path: every child's ``arefresh_auth``, in order."""
        results = [await arefresh_auth(hook, context) for hook in self.hooks]
        return any(results)

    def invalidate_auth(self) -> None:
        for hook in self.hooks:
            hook.invalidate_auth()

    def __repr__(self) -> str:
        children = ", ".join(repr(hook) for hook in self.hooks)
        return f"CompositeAuthHook({children}, excluded_paths={self.excluded_paths!r})"
