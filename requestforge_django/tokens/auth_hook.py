"""``TokenAuthHook``: puts a :class:`TokenManager`'s token on requests and recovers when it is rejected.

A response rejects the token when its status is one of ``auth_error_statuses`` (401 by
default) or, whatever its error status, when it carries a Bearer challenge with
``error="invalid_token"`` (RFC 6750; e.g. django-oauth-toolkit answers a revoked token
with 403 and that challenge). ``insufficient_scope`` and other errors are not rejections.

The 401 path is where naive implementations stampede: when a token is revoked, every
in-flight request gets a 401 at about the same time and each one "invalidates and
refreshes", so fifty requests cause fifty token fetches, and a late one even deletes
the token an early one just fetched. Here each call remembers which token *it*
sent (in its :class:`RequestContext`, which the client hands to ``before_request``
and then to ``refresh_auth``), and ``refresh_auth`` asks the manager to replace
exactly that token. The manager's single-flight cache turns fifty such
requests into one fetch, and a request whose token was already replaced just reuses
the replacement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import MappingProxyType

from ..http.challenges import is_invalid_token
from ..http.exceptions import AuthenticationException, ConfigurationError
from ..http.hooks import AuthHookInterface
from ..http.messages import HttpRequest, HttpResponse, RequestContext
from ..http.paths import normalize_excluded_paths
from .data import TokenData
from .interfaces import TokenSource

#: ``RequestContext.metadata`` key: the token this call sent.
SENT_TOKEN_KEY = "requestforge.sent_token"


class TokenAuthHook(AuthHookInterface):
    """Adds ``<header_name>: <prefix> <token>`` from ``token_manager`` to every request.

    ``prefix`` defaults to the token's own type (``"Bearer"``); pass ``""`` to send the
    bare token (e.g. with ``header_name="X-Auth-Token"``). Responses with a status in
    ``auth_error_statuses``, and error responses with a Bearer
    ``error="invalid_token"`` challenge, trigger one refresh and one resend by the client.
    """

    def __init__(
        self,
        token_manager: TokenSource,
        *,
        header_name: str = "Authorization",
        prefix: str | None = None,
        auth_error_statuses: Iterable[int] = (401,),
        excluded_paths: Iterable[str] = (),
    ) -> None:
        if not isinstance(header_name, str) or not header_name.strip() or any(c in header_name for c in "\r\n:"):
            raise ConfigurationError(f"must be a header name, got {header_name!r}", field="header_name")
        if prefix is not None and (not isinstance(prefix, str) or "\r" in prefix or "\n" in prefix):
            raise ConfigurationError("must be a single-line string or None", field="prefix")
        statuses = frozenset(auth_error_statuses)
        if not statuses or not all(isinstance(s, int) and 400 <= s <= 599 for s in statuses):
            raise ConfigurationError(f"must be HTTP error statuses, got {sorted(statuses)!r}", field="auth_error_statuses")
        self._manager = token_manager
        self.header_name = header_name
        self.prefix = prefix
        self.auth_error_statuses = statuses
        self.excluded_paths = normalize_excluded_paths(excluded_paths)
        self._names = frozenset({header_name.lower()})
        self._last_header: tuple[TokenData, MappingProxyType[str, str]] | None = None

    @property
    def token_manager(self) -> TokenSource:
        return self._manager

    def header_value(self, token: TokenData) -> str:
        """The header value for ``token`` (``"Bearer abc"``, or ``"abc"`` with an empty prefix)."""
        prefix = token.token_type if self.prefix is None else self.prefix
        value = f"{prefix} {token.access_token}" if prefix else token.access_token
        if "\r" in value or "\n" in value:
            raise AuthenticationException("token contains a line break; refusing to send it", service_name=self._manager.service_name)
        return value

    def _with_token(self, request: HttpRequest, token: TokenData) -> HttpRequest:
        """``request`` carrying ``token``, marked sensitive: masked wherever the request is shown, and
        never sent to an origin the client does not trust nor across a redirect to one.

        The header is made once per token (every call until the next token sends the same one).
        """
        last = self._last_header
        if last is None or last[0] is not token:
            last = self._last_header = (token, MappingProxyType({self.header_name: self.header_value(token)}))
        return request.with_credential_headers(last[1], self._names)

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        token = self._manager.get_token()
        context.metadata[SENT_TOKEN_KEY] = token
        return self._with_token(request, token)

    async def abefore_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        """:meth:`before_request` for the async path: the token comes from ``aget_token`` (never blocks the loop)."""
        manager = self._manager
        in_memory = getattr(manager, "token_in_memory", None)  # the common call: no coroutine, no thread
        token: TokenData | None = in_memory() if in_memory is not None else None
        if token is None:
            aget = getattr(manager, "aget_token", None)
            fetched: TokenData = await aget() if aget is not None else await asyncio.to_thread(manager.get_token)
            token = fetched
        context.metadata[SENT_TOKEN_KEY] = token
        return self._with_token(request, token)

    def is_auth_error(self, response: HttpResponse) -> bool:
        """Whether ``response`` rejects the token: a listed status, or an error with ``error="invalid_token"``."""
        if response.status_code in self.auth_error_statuses:
            return True
        return response.status_code >= 400 and is_invalid_token(response.headers)

    def refresh_auth(self, context: RequestContext | None = None) -> bool:
        """Replace the token this call sent (single-flight); ``True``: resend the request.

        Raises :class:`AuthenticationException` if no new token can be obtained, so the
        caller learns why instead of receiving the 401 again.
        """
        sent = context.metadata.pop(SENT_TOKEN_KEY, None) if context is not None else None
        self._manager.force_refresh(rejected=sent if isinstance(sent, TokenData) else None)
        return True

    async def arefresh_auth(self, context: RequestContext | None = None) -> bool:
        """:meth:`refresh_auth` for the async path: ``aforce_refresh(rejected=<the token this call sent>)``."""
        sent = context.metadata.pop(SENT_TOKEN_KEY, None) if context is not None else None
        rejected = sent if isinstance(sent, TokenData) else None
        arefresh = getattr(self._manager, "aforce_refresh", None)
        if arefresh is not None:
            await arefresh(rejected=rejected)
        else:
            await asyncio.to_thread(self._manager.force_refresh, rejected)
        return True

    def invalidate_auth(self) -> None:
        self._manager.invalidate_token()

    def __repr__(self) -> str:
        return f"TokenAuthHook(service_name={self._manager.service_name!r}, header_name={self.header_name!r})"
