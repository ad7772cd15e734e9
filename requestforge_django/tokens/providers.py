"""OAuth2 token providers: client credentials and resource-owner password grants.

Both share :class:`OAuth2TokenProvider`: client authentication (RFC 6749 section 2.3.1,
``client_secret_post`` or ``client_secret_basic``), the refresh-token grant, and the
answer parsing of :mod:`.parsing`. Every failure is an
:class:`AuthenticationException` naming the service (plus the HTTP status and the
OAuth2 ``error`` fields when there are some); secrets never appear in messages or
``repr``.

Unless given an ``http_client``, a provider builds a private one: the token endpoint
is not the API, so it must not inherit the API client's auth hook (a token request
that needs a token would recurse) nor its retries (the manager decides about
retrying, and a hung token endpoint must fail within ``timeout``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlsplit

from ..http.client import HttpClient
from ..http.config import HttpClientConfig
from ..http.exceptions import ConfigurationError, HttpClientException
from ..http.masking import mask_secret
from .data import Clock, TokenData
from .interfaces import TokenProviderInterface
from .parsing import token_from_response, transport_error

AUTH_METHODS = ("client_secret_post", "client_secret_basic")


def _required_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("must be a non-empty string", field=field)
    return value


def _optional_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    return _required_text(value, field)


def _positive(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"must be a positive number, got {value!r}", field=field)
    return float(value)


def build_token_client(timeout: float, name: str) -> HttpClient:
    """A private client for a token endpoint: no auth hook, no retries, a short timeout."""
    return HttpClient(HttpClientConfig(default_timeout=timeout, name=name))


class OAuth2TokenProvider(TokenProviderInterface):
    """Shared machinery of the OAuth2 grants; subclasses supply :meth:`_grant_params`."""

    grant_type: ClassVar[str] = ""

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        audience: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = "client_secret_post",
        service_name: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = 10.0,
        default_lifetime: float | None = 3600.0,
        token_field: str = "access_token",
        clock: Clock | None = None,
    ) -> None:
        self.token_url = _required_text(token_url, "token_url")
        parts = urlsplit(token_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"must be an absolute http(s) URL, got {token_url!r}", field="token_url")
        if auth_method not in AUTH_METHODS:
            raise ConfigurationError(f"must be one of {', '.join(AUTH_METHODS)}, got {auth_method!r}", field="auth_method")
        self.client_id = _optional_text(client_id, "client_id")
        self._client_secret = _optional_text(client_secret, "client_secret")
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
        if default_lifetime is not None:
            _positive(default_lifetime, "default_lifetime")
        self.default_lifetime = default_lifetime
        self.token_field = _required_text(token_field, "token_field")
        self._clock = clock
        self._service_name = _optional_text(service_name, "service_name") or self._default_service_name(parts.hostname or "")
        self._owns_client = http_client is None
        self._http = http_client or build_token_client(self.timeout, f"token:{self._service_name}")

    def _default_service_name(self, host: str) -> str:
        return f"{self.client_id}@{host}" if self.client_id else host

    @property
    def service_name(self) -> str:
        return self._service_name

    # -- grants ------------------------------------------------------------------------

    def _grant_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _secrets(self) -> tuple[str | None, ...]:
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
        params: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
        if self.scope:
            params["scope"] = self.scope
        return self._request_token(params, extra_secret=current.refresh_token)

    def _request_token(self, params: dict[str, Any], *, extra_secret: str | None = None) -> TokenData:
        form: dict[str, Any] = {**self.extra_params, **params}
        headers = {"Accept": "application/json"}
        if self.client_id is not None:
            if self.auth_method == "client_secret_basic":
                # RFC 6749 2.3.1: each part form-urlencoded before base64.
                pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret or '')}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
            else:
                form["client_id"] = self.client_id
                if self._client_secret is not None:
                    form["client_secret"] = self._client_secret
        try:
            response = self._http.post(self.token_url, data=form, headers=headers, timeout=self.timeout)
        except HttpClientException as exc:
            raise transport_error(exc, service_name=self._service_name, url=self.token_url) from exc
        return token_from_response(
            response,
            service_name=self._service_name,
            token_field=self.token_field,
            default_lifetime=self.default_lifetime,
            clock=self._clock,
            secrets=(*self._secrets(), extra_secret),
        )

    def close(self) -> None:
        """Close the private HTTP client (a client passed in belongs to the caller)."""
        if self._owns_client:
            self._http.close()

    def __repr__(self) -> str:
        secret = mask_secret(self._client_secret) if self._client_secret else None
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
        client_secret: str,
        *,
        scope: str | None = None,
        audience: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = "client_secret_post",
        service_name: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = 10.0,
        default_lifetime: float | None = 3600.0,
        token_field: str = "access_token",
        clock: Clock | None = None,
    ) -> None:
        _required_text(client_id, "client_id")
        _required_text(client_secret, "client_secret")
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
        password: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        *,
        audience: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = "client_secret_post",
        service_name: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = 10.0,
        default_lifetime: float | None = 3600.0,
        token_field: str = "access_token",
        clock: Clock | None = None,
    ) -> None:
        self.username = _required_text(username, "username")
        if not isinstance(password, str) or not password:
            raise ConfigurationError("must be a non-empty string", field="password")
        self._password = password
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
        )

    def _default_service_name(self, host: str) -> str:
        return f"{self.username}@{host}"

    def _grant_params(self) -> dict[str, Any]:
        return {"username": self.username, "password": self._password}

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._client_secret, self._password)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", username={self.username!r}, password='****')"
