"""OAuth2 token providers: the shared machinery, client credentials and resource-owner password grants.

All OAuth2 grants (these two, :mod:`.jwt_bearer`, :mod:`.token_exchange`) share
:class:`OAuth2TokenProvider`:

* the token endpoint: ``token_url``, or ``issuer`` and metadata discovery
  (:mod:`.discovery`, lazily on the first fetch, cached per process);
* client authentication (:class:`~.client_auth.ClientAuthentication`:
  ``client_secret_post``, ``client_secret_basic``, ``client_secret_jwt``,
  ``private_key_jwt``), for every grant and the refresh grant, never a fallback;
* ``scope``, ``audience`` and ``resource`` (each value its own form parameter);
* the answer parsing of :mod:`.parsing`.

Every failure is an :class:`AuthenticationException` naming the service (plus the HTTP
status and the OAuth2 ``error`` fields when there are some); nothing is cached by a
failed fetch, and secrets never appear in messages or ``repr``.

Unless given an ``http_client``, a provider builds a private one
(:func:`~.token_http.build_token_client`) that trusts only the token endpoint's origin
(the issuer's with discovery, which must hold the endpoint too) and never follows a
redirect to another origin: the trust boundary of a token request, see
:mod:`.token_http`. Secrets (client secret, password, refresh token, assertions) are
held as :class:`~requestforge_django.http.secrets.Secret` values and revealed only
inside :func:`~.token_http.wire_request`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict
from urllib.parse import urlsplit

from ..http.client import HttpClient
from ..http.exceptions import ConfigurationError
from ..http.messages import HttpMethod, HttpResponse
from ..http.secrets import MASK, Secret
from .client_auth import CLIENT_AUTH_METHODS, ClientAuthentication
from .data import DEFAULT_MIN_LIFETIME, Clock, TokenData
from .discovery import DiscoveryCache, discover, validate_issuer
from .interfaces import TokenProviderInterface
from .oauth_params import resource_values, text_values
from .parsing import sent_values, token_from_response
from .signing import DEFAULT_ASSERTION_LIFETIME, SigningKey
from .token_http import (
    DEFAULT_TOKEN_MAX_BYTES,
    DEFAULT_TOKEN_TIMEOUT,
    LEASE_MARGIN,
    MAX_TOKEN_REDIRECTS,
    MIN_FETCH_DEADLINE,
    build_token_client,
    fetch_deadline,
    send_token_request,
    wire_request,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_TOKEN_MAX_BYTES",
    "DEFAULT_TOKEN_TIMEOUT",
    "LEASE_MARGIN",
    "MAX_TOKEN_REDIRECTS",
    "MIN_FETCH_DEADLINE",
    "ClientCredentialsTokenProvider",
    "OAuth2Options",
    "OAuth2TokenProvider",
    "PasswordGrantTokenProvider",
    "build_token_client",
    "fetch_deadline",
    "send_token_request",
    "wire_request",
]

#: The client authentication methods (``CLIENT_AUTH_METHOD``); kept under its old name.
AUTH_METHODS = CLIENT_AUTH_METHODS


class OAuth2Options(TypedDict, total=False):
    """The keyword options every OAuth2 provider takes (see :class:`OAuth2TokenProvider`); each grant adds ``scope``."""

    issuer: str | None
    audience: str | Sequence[str] | None
    resource: str | Sequence[str] | None
    extra_params: Mapping[str, Any] | None
    auth_method: str
    private_key: str | bytes | Secret | SigningKey | None
    key_id: str | None
    algorithm: str | None
    assertion_lifetime: int
    service_name: str | None
    http_client: HttpClient | None
    timeout: float
    default_lifetime: float | None
    token_field: str
    clock: Clock | None
    verify_ssl: bool | str
    deadline: float | None
    max_response_bytes: int | None
    min_lifetime: float
    discovery_cache: DiscoveryCache | None


def _required_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("must be a non-empty string", field=field)
    return value


def _required_secret(value: Any, field: str) -> Secret:
    """A non-empty :class:`Secret` from a string or a Secret (the error never shows the value)."""
    if isinstance(value, Secret) and value.reveal().strip():
        return value
    return Secret(_required_text(value, field))


def _optional_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    return _required_text(value, field)


def _positive(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"must be a positive number, got {value!r}", field=field)
    return float(value)


def _token_url(value: str) -> str:
    _required_text(value, "token_url")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"must be an absolute http(s) URL, got {value!r}", field="token_url")
    return value


class OAuth2TokenProvider(TokenProviderInterface):
    """Shared machinery of the OAuth2 grants; subclasses supply :meth:`_grant_params`.

    Exactly one of ``token_url`` and ``issuer`` (discovery). ``auth_method`` with
    ``client_id``, ``client_secret``, ``private_key``, ``key_id``, ``algorithm`` and
    ``assertion_lifetime`` build the :class:`ClientAuthentication` (validated here).
    ``audience`` and ``resource`` are a string or a list (``resource`` absolute URIs).
    """

    grant_type: ClassVar[str] = ""

    def __init__(
        self,
        token_url: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        issuer: str | None = None,
        scope: str | None = None,
        audience: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auth_method: str = CLIENT_AUTH_METHODS[0],
        private_key: str | bytes | Secret | SigningKey | None = None,
        key_id: str | None = None,
        algorithm: str | None = None,
        assertion_lifetime: int = DEFAULT_ASSERTION_LIFETIME,
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
        discovery_cache: DiscoveryCache | None = None,
    ) -> None:
        if token_url is not None and issuer is not None:
            raise ConfigurationError("give token_url or issuer (discovery), not both", field="issuer")
        if token_url is None and issuer is None:
            raise ConfigurationError("a token_url or an issuer (discovery) is required", field="token_url")
        self.issuer = validate_issuer(issuer) if issuer is not None else None
        self.token_url: str | None = _token_url(token_url) if token_url is not None else None
        endpoint = self.token_url or self.issuer or ""
        self.client_id = _optional_text(client_id, "client_id")
        self._client_auth = ClientAuthentication(
            auth_method,
            client_id=self.client_id,
            client_secret=client_secret,
            private_key=private_key,
            key_id=key_id,
            algorithm=algorithm,
            lifetime=assertion_lifetime,
            clock=clock,
        )
        self.auth_method = auth_method
        self.scope = _optional_text(scope, "scope")
        self.audience = text_values(audience, field="audience")
        self.resource = resource_values(resource, field="resource")
        if extra_params is not None and not isinstance(extra_params, Mapping):
            raise ConfigurationError("must be a mapping", field="extra_params")
        self.extra_params: Mapping[str, Any] = MappingProxyType(dict(extra_params or {}))
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
        self._discovery_cache = discovery_cache
        self._service_name = _optional_text(service_name, "service_name") or self._default_service_name(urlsplit(endpoint).hostname or "")
        self._owns_client = http_client is None
        self._http = http_client or build_token_client(
            self.timeout,
            f"token:{self._service_name}",
            endpoint=endpoint,
            verify_ssl=verify_ssl,
            deadline=self.deadline,
            max_response_bytes=max_response_bytes,
        )

    def _default_service_name(self, host: str) -> str:
        return f"{self.client_id}@{host}" if self.client_id else host

    @property
    def service_name(self) -> str:
        return self._service_name

    @property
    def client_authentication(self) -> ClientAuthentication:
        return self._client_auth

    def token_endpoint(self) -> str:
        """The token endpoint URL: ``token_url``, or the one discovered from ``issuer`` (fetched once per process)."""
        if self.issuer is None:
            assert self.token_url is not None
            return self.token_url
        metadata = discover(self.issuer, self._http, service_name=self._service_name, timeout=self.timeout, cache=self._discovery_cache)
        self.token_url = metadata.token_endpoint
        return metadata.token_endpoint

    # -- grants ------------------------------------------------------------------------

    def _grant_params(self, token_url: str) -> dict[str, Any]:
        """The grant's own form fields (secrets as :class:`Secret`); ``token_url`` is where they go."""
        raise NotImplementedError

    def _secrets(self) -> tuple[Secret | None, ...]:
        return self._client_auth.secrets()

    def _target_params(self) -> dict[str, Any]:
        """``scope``, ``audience`` and ``resource`` of a new grant (lists become repeated parameters)."""
        params: dict[str, Any] = {}
        if self.scope:
            params["scope"] = self.scope
        if self.audience:
            params["audience"] = list(self.audience)
        if self.resource:
            params["resource"] = list(self.resource)
        return params

    def fetch_token(self) -> TokenData:
        token_url = self.token_endpoint()
        return self._request_token(token_url, {"grant_type": self.grant_type, **self._grant_params(token_url), **self._target_params()})

    def refresh_token(self, current: TokenData) -> TokenData:
        """The refresh-token grant when ``current`` has a refresh token, else a new :meth:`fetch_token`."""
        if not current.refresh_token:
            return self.fetch_token()
        params: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": Secret(current.refresh_token)}
        if self.scope:
            params["scope"] = self.scope
        return self._request_token(self.token_endpoint(), params)

    def _request_token(self, token_url: str, params: dict[str, Any]) -> TokenData:
        """Send the grant and parse the answer; ``form`` and ``headers`` hold secrets as :class:`Secret`."""
        form: dict[str, Any] = {**self.extra_params, **params}
        headers: dict[str, str | Secret] = {"Accept": "application/json"}
        self._client_auth.apply(form, headers, token_url=token_url)
        response = send_token_request(
            self._http,
            wire_request(HttpMethod.POST, token_url, headers=headers, data=form, timeout=self.timeout),
            service_name=self._service_name,
            step=None,
            url=token_url,
        )
        return self._parse(response)

    def _parse(self, response: HttpResponse) -> TokenData:
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
        secret = MASK if self._client_auth.has_client_secret else None
        where = f"issuer={self.issuer!r}" if self.issuer else f"token_url={self.token_url!r}"
        key = ", private_key='****'" if self.auth_method == "private_key_jwt" else ""
        return (
            f"{type(self).__name__}(service_name={self._service_name!r}, {where}, "
            f"client_id={self.client_id!r}, client_secret={secret!r}, auth_method={self.auth_method!r}{key})"
        )


class ClientCredentialsTokenProvider(OAuth2TokenProvider):
    """OAuth2 client credentials grant: the service authenticates as itself.

    ``client_secret`` is required except with ``auth_method="private_key_jwt"`` (which
    needs ``private_key``); ``token_url`` may be ``None`` with ``issuer=``.
    """

    grant_type = "client_credentials"

    def __init__(
        self,
        token_url: str | None,
        client_id: str,
        client_secret: str | Secret | None = None,
        *,
        scope: str | None = None,
        **options: Unpack[OAuth2Options],
    ) -> None:
        _required_text(client_id, "client_id")
        if options.get("auth_method", CLIENT_AUTH_METHODS[0]) != "private_key_jwt":
            client_secret = _required_secret(client_secret, "client_secret")
        super().__init__(token_url, client_id=client_id, client_secret=client_secret, scope=scope, **options)

    def _grant_params(self, token_url: str) -> dict[str, Any]:
        return {}


class PasswordGrantTokenProvider(OAuth2TokenProvider):
    """OAuth2 resource-owner password grant (legacy partners); ``client_id`` is optional."""

    grant_type = "password"

    def __init__(
        self,
        token_url: str | None,
        username: str,
        password: str | Secret,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scope: str | None = None,
        **options: Unpack[OAuth2Options],
    ) -> None:
        self.username = _required_text(username, "username")
        if not isinstance(password, (str, Secret)) or not (password.reveal() if isinstance(password, Secret) else password):
            raise ConfigurationError("must be a non-empty string", field="password")
        self._password = Secret(password)
        super().__init__(token_url, client_id=client_id, client_secret=client_secret, scope=scope, **options)

    def _default_service_name(self, host: str) -> str:
        return f"{self.username}@{host}"

    def _grant_params(self, token_url: str) -> dict[str, Any]:
        return {"username": self.username, "password": self._password}

    def _secrets(self) -> tuple[Secret | None, ...]:
        return (*super()._secrets(), self._password)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", username={self.username!r}, password='****')"
