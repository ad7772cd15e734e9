"""OAuth2 token providers: client credentials and resource-owner password grants.

Both share :class:`OAuth2TokenProvider`: client authentication (RFC 6749 section 2.3.1,
``client_secret_post`` or ``client_secret_basic``), the refresh-token grant, and the
answer parsing of :mod:`.parsing`. Every failure is an
:class:`AuthenticationException` naming the service (plus the HTTP status and the
OAuth2 ``error`` fields when there are some); secrets never appear in messages or
``repr``.

Unless given an ``http_client``, a provider builds a private one
(:func:`build_token_client`): the token endpoint is not the API, so it must not
inherit the API client's auth hook (a token request that needs a token would recurse)
nor its retries (the manager decides about retrying). That client draws the trust
boundary of a token request:

* it never follows a redirect to another origin (scheme, host, port): such a hop is
  refused before anything is sent there and becomes an :class:`AuthenticationException`
  naming the other origin. Redirects within the endpoint's own origin are followed
  (at most :data:`MAX_TOKEN_REDIRECTS`), as HTTP says: 307/308 repeat the POST with its
  form, 301/302/303 turn it into a body-less GET;
* it reads at most ``max_response_bytes`` of an answer, and the whole exchange
  (connect, redirects, body) must finish within ``deadline`` seconds, which the
  Django layer keeps below ``LOCK_TIMEOUT`` (:func:`fetch_deadline`) so the
  cross-process lease never expires under the process fetching.

Secrets (client secret, password, refresh token) are held as
:class:`~requestforge_django.http.secrets.Secret` values and revealed only inside
:func:`wire_request`, where the wire request is built: a frame of
``_request_token`` or of the answer parser on Django's DEBUG error page shows
``Secret('****')``. A caller-supplied ``http_client`` is used as it is: its own
configuration decides redirects, size and deadline.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlsplit

from ..http.client import HttpClient
from ..http.config import HttpClientConfig
from ..http.exceptions import AuthenticationException, ConfigurationError, HttpClientException, UntrustedOriginException
from ..http.messages import HttpMethod, HttpRequest, HttpResponse
from ..http.secrets import MASK, Origin, Secret, reveal_all
from .data import DEFAULT_MIN_LIFETIME, Clock, TokenData
from .interfaces import TokenProviderInterface
from .parsing import redirect_error, sent_values, token_from_response, transport_error

AUTH_METHODS = ("client_secret_post", "client_secret_basic")

#: Default per-read timeout (seconds) of a token request: of providers built directly and of
#: pipeline steps without ``TIMEOUT``. The registry gives an OAuth client's provider that
#: client's ``AUTH["TOKEN_TIMEOUT"]`` or ``TIMEOUT`` (``registry.token_request_timeout``).
DEFAULT_TOKEN_TIMEOUT: float = 10.0

#: Default cap on a token answer's size (``TOKEN_MAX_BYTES``): 1 MiB.
DEFAULT_TOKEN_MAX_BYTES: int = 1024 * 1024

#: Same-origin redirects a token request follows at most.
MAX_TOKEN_REDIRECTS: int = 5

#: Seconds a fetch's deadline stays below the lease (``LOCK_TIMEOUT``), for storing the token.
LEASE_MARGIN: float = 1.0

#: The shortest fetch deadline that makes sense; a ``LOCK_TIMEOUT`` below it plus the margin is a check error.
MIN_FETCH_DEADLINE: float = 1.0


def fetch_deadline(timeout: float, lock_timeout: float) -> float:
    """The overall deadline of one token fetch: ``timeout``, but never past the lease.

    ``min(timeout, lock_timeout - LEASE_MARGIN)``, at least :data:`MIN_FETCH_DEADLINE`
    (settings whose ``LOCK_TIMEOUT`` cannot fit that are a ``manage.py check`` error).
    """
    return max(min(float(timeout), float(lock_timeout) - LEASE_MARGIN), MIN_FETCH_DEADLINE)


def _required_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("must be a non-empty string", field=field)
    return value


def _required_secret(value: Any, field: str) -> Secret:
    """A non-empty :class:`Secret` from a string or a Secret (the error never shows the value)."""
    if isinstance(value, Secret) and value.reveal().strip():
        return value
    return Secret(_required_text(value, field))


def _optional_secret(value: Any, field: str) -> Secret | None:
    return None if value is None else _required_secret(value, field)


def _optional_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    return _required_text(value, field)


def _positive(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"must be a positive number, got {value!r}", field=field)
    return float(value)


def build_token_client(
    timeout: float,
    name: str,
    *,
    endpoint: str | None = None,
    verify_ssl: bool | str = True,
    deadline: float | None = None,
    max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
) -> HttpClient:
    """A private client for a token endpoint (see the module doc).

    No auth hook, no retries; it trusts only ``endpoint``'s origin (the one place its
    secrets may go) and never follows a redirect to another origin; answers capped at
    ``max_response_bytes``; the whole exchange bounded by ``deadline`` (default ``timeout``).
    """
    origin = Origin.of(endpoint) if endpoint else None
    return HttpClient(
        HttpClientConfig(
            default_timeout=timeout,
            name=name,
            trusted_origins=(str(origin),) if origin is not None else (),
            verify_ssl=verify_ssl,
            max_redirects=MAX_TOKEN_REDIRECTS,
            cross_origin_redirects="refuse",
            max_response_bytes=max_response_bytes,
            total_timeout=deadline if deadline is not None else timeout,
        )
    )


def wire_request(
    method: HttpMethod,
    url: str,
    *,
    headers: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    json_data: Any = None,
    data: Any = None,
    timeout: float | None = None,
) -> HttpRequest:
    """The wire request: the one place the :class:`Secret` values of a token request are revealed.

    Names whose values were secrets are marked ``sensitive`` on the request (masked
    wherever it is shown). The revealed copies are temporaries of this one expression,
    so no frame local anywhere in the token layer holds them.
    """
    return HttpRequest(
        method,
        url,
        headers=reveal_all(dict(headers)),
        params=reveal_all(dict(params)) if params else None,
        json_data=reveal_all(json_data),
        data=reveal_all(data),
        timeout=timeout,
        sensitive=frozenset(_secret_names(headers, params, json_data, data)),
    )


def send_token_request(http: HttpClient, request: HttpRequest, *, service_name: str | None, step: str | None, url: str) -> HttpResponse:
    """Send a token request; every failure becomes an :class:`AuthenticationException`.

    A redirect to another origin (refused by the token client) names only that origin
    and is raised outside the ``except`` block, so no exception chain carries the
    redirect target's path or query.
    """
    refused: AuthenticationException | None = None
    try:
        return http.request(request)
    except UntrustedOriginException as exc:
        if exc.origin == str(Origin.of(url)):
            # Not a redirect: a caller-supplied client that does not trust the endpoint itself.
            refused = AuthenticationException(
                f"the HTTP client given for the token endpoint does not trust its origin ({exc.origin}); build it with that "
                "origin as its base URL or a trusted origin",
                service_name=service_name,
                step=step,
                method=exc.method,
                url=url,
            )
        else:
            refused = redirect_error(exc, service_name=service_name, step=step, url=url)
    except HttpClientException as exc:
        raise transport_error(exc, service_name=service_name, step=step, url=url) from exc
    raise refused


def _secret_names(*values: Any) -> set[str]:
    """Lower-case names (header, param, top-level field) whose values are :class:`Secret`."""
    names: set[str] = set()
    for value in values:
        if isinstance(value, Mapping):
            names.update(str(k).lower() for k, v in value.items() if isinstance(v, Secret))
        elif isinstance(value, (list, tuple)):
            pairs = [item for item in value if isinstance(item, tuple) and len(item) == 2]
            names.update(str(key).lower() for key, item in pairs if isinstance(item, Secret))
    return names


def _basic_authorization(client_id: str, client_secret: Secret | None) -> Secret:
    """RFC 6749 2.3.1: each part form-urlencoded, joined by ``:``, base64; as a :class:`Secret`."""
    secret = client_secret or Secret("")
    return Secret("Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret.reveal())}".encode()).decode("ascii"))


class OAuth2TokenProvider(TokenProviderInterface):
    """Shared machinery of the OAuth2 grants; subclasses supply :meth:`_grant_params`."""

    grant_type: ClassVar[str] = ""

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scope: str | None = None,
        audience: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = "client_secret_post",
        service_name: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        default_lifetime: float | None = 3600.0,
        token_field: str = "access_token",
        clock: Clock | None = None,
        verify_ssl: bool | str = True,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> None:
        self.token_url = _required_text(token_url, "token_url")
        parts = urlsplit(token_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"must be an absolute http(s) URL, got {token_url!r}", field="token_url")
        if auth_method not in AUTH_METHODS:
            raise ConfigurationError(f"must be one of {', '.join(AUTH_METHODS)}, got {auth_method!r}", field="auth_method")
        self.client_id = _optional_text(client_id, "client_id")
        self._client_secret = _optional_secret(client_secret, "client_secret")
        if self._client_secret is not None and self.client_id is None:
            raise ConfigurationError("a client_secret needs a client_id", field="client_id")
        if auth_method == "client_secret_basic" and self._client_secret is None:
            raise ConfigurationError("client_secret_basic needs a client_id and a client_secret", field="auth_method")
        self.scope = _optional_text(scope, "scope")
        self.audience = _optional_text(audience, "audience")
        if extra_params is not None and not isinstance(extra_params, Mapping):
            raise ConfigurationError("must be a mapping", field="extra_params")
        self.extra_params: Mapping[str, Any] = MappingProxyType(dict(extra_params or {}))
        self.auth_method = auth_method
        self.timeout = _positive(timeout, "timeout")
        self.deadline = _positive(deadline, "deadline") if deadline is not None else self.timeout
        if not isinstance(min_lifetime, (int, float)) or isinstance(min_lifetime, bool) or min_lifetime < 0:
            raise ConfigurationError(f"must be a number >= 0, got {min_lifetime!r}", field="min_lifetime")
        self.min_lifetime = float(min_lifetime)
        if default_lifetime is not None:
            _positive(default_lifetime, "default_lifetime")
            if default_lifetime < self.min_lifetime:
                raise ConfigurationError(f"is shorter than min_lifetime ({self.min_lifetime:g} s)", field="default_lifetime")
        self.default_lifetime = default_lifetime
        self.token_field = _required_text(token_field, "token_field")
        self._clock = clock
        self._service_name = _optional_text(service_name, "service_name") or self._default_service_name(parts.hostname or "")
        self._owns_client = http_client is None
        self._http = http_client or build_token_client(
            self.timeout,
            f"token:{self._service_name}",
            endpoint=self.token_url,
            verify_ssl=verify_ssl,
            deadline=self.deadline,
            max_response_bytes=max_response_bytes,
        )

    def _default_service_name(self, host: str) -> str:
        return f"{self.client_id}@{host}" if self.client_id else host

    @property
    def service_name(self) -> str:
        return self._service_name

    # -- grants ------------------------------------------------------------------------

    def _grant_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _secrets(self) -> tuple[Secret | None, ...]:
        return (self._client_secret,)

    def fetch_token(self) -> TokenData:
        params: dict[str, Any] = {"grant_type": self.grant_type, **self._grant_params()}
        if self.scope:
            params["scope"] = self.scope
        if self.audience:
            params["audience"] = self.audience
        return self._request_token(params)

    def refresh_token(self, current: TokenData) -> TokenData:
        """The refresh-token grant when ``current`` has a refresh token, else a new :meth:`fetch_token`."""
        if not current.refresh_token:
            return self.fetch_token()
        params: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": Secret(current.refresh_token)}
        if self.scope:
            params["scope"] = self.scope
        return self._request_token(params)

    def _request_token(self, params: dict[str, Any]) -> TokenData:
        """Send the grant and parse the answer; ``form`` and ``headers`` hold secrets as :class:`Secret`."""
        form: dict[str, Any] = {**self.extra_params, **params}
        headers: dict[str, str | Secret] = {"Accept": "application/json"}
        if self.client_id is not None:
            if self.auth_method == "client_secret_basic":
                headers["Authorization"] = _basic_authorization(self.client_id, self._client_secret)
            else:
                form["client_id"] = self.client_id
                if self._client_secret is not None:
                    form["client_secret"] = self._client_secret
        response = send_token_request(
            self._http,
            wire_request(HttpMethod.POST, self.token_url, headers=headers, data=form, timeout=self.timeout),
            service_name=self._service_name,
            step=None,
            url=self.token_url,
        )
        return token_from_response(
            response,
            service_name=self._service_name,
            token_field=self.token_field,
            default_lifetime=self.default_lifetime,
            min_lifetime=self.min_lifetime,
            clock=self._clock,
            # Everything sent may come back in error text: scrub it all (client_id too, sent inside Basic).
            secrets=(*self._secrets(), *sent_values(response.request, extra=(self.client_id,))),
        )

    def close(self) -> None:
        """Close the private HTTP client (a client passed in belongs to the caller)."""
        if self._owns_client:
            self._http.close()

    def __repr__(self) -> str:
        secret = MASK if self._client_secret else None
        return (
            f"{type(self).__name__}(service_name={self._service_name!r}, token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, client_secret={secret!r}, auth_method={self.auth_method!r})"
        )


class ClientCredentialsTokenProvider(OAuth2TokenProvider):
    """OAuth2 client credentials grant: the service authenticates as itself."""

    grant_type = "client_credentials"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | Secret,
        *,
        scope: str | None = None,
        audience: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = "client_secret_post",
        service_name: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        default_lifetime: float | None = 3600.0,
        token_field: str = "access_token",
        clock: Clock | None = None,
        verify_ssl: bool | str = True,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> None:
        _required_text(client_id, "client_id")
        client_secret = _required_secret(client_secret, "client_secret")
        super().__init__(
            token_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            audience=audience,
            extra_params=extra_params,
            auth_method=auth_method,
            service_name=service_name,
            http_client=http_client,
            timeout=timeout,
            default_lifetime=default_lifetime,
            token_field=token_field,
            clock=clock,
            verify_ssl=verify_ssl,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
            min_lifetime=min_lifetime,
        )

    def _grant_params(self) -> dict[str, Any]:
        return {}


class PasswordGrantTokenProvider(OAuth2TokenProvider):
    """OAuth2 resource-owner password grant (legacy partners); ``client_id`` is optional."""

    grant_type = "password"

    def __init__(
        self,
        token_url: str,
        username: str,
        password: str | Secret,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scope: str | None = None,
        *,
        audience: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = "client_secret_post",
        service_name: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        default_lifetime: float | None = 3600.0,
        token_field: str = "access_token",
        clock: Clock | None = None,
        verify_ssl: bool | str = True,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> None:
        self.username = _required_text(username, "username")
        if not isinstance(password, (str, Secret)) or not (password.reveal() if isinstance(password, Secret) else password):
            raise ConfigurationError("must be a non-empty string", field="password")
        self._password = Secret(password)
        super().__init__(
            token_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            audience=audience,
            extra_params=extra_params,
            auth_method=auth_method,
            service_name=service_name,
            http_client=http_client,
            timeout=timeout,
            default_lifetime=default_lifetime,
            token_field=token_field,
            clock=clock,
            verify_ssl=verify_ssl,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
            min_lifetime=min_lifetime,
        )

    def _default_service_name(self, host: str) -> str:
        return f"{self.username}@{host}"

    def _grant_params(self) -> dict[str, Any]:
        return {"username": self.username, "password": self._password}

    def _secrets(self) -> tuple[Secret | None, ...]:
        return (self._client_secret, self._password)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", username={self.username!r}, password='****')"
