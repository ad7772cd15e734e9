"""How a client proves who it is to a token endpoint: one value every OAuth2 provider uses.

Why one place: the four methods (RFC 6749 section 2.3.1 ``client_secret_post`` and
``client_secret_basic``; RFC 7523 section 2.2 / OpenID Connect ``client_secret_jwt`` and
``private_key_jwt``) apply to every grant that fetches tokens (client credentials,
password, JWT-bearer, token exchange), and the refresh grant too. Deciding them once
means a provider can neither forget the assertion on one grant nor fall back to a
weaker method when the partner refuses the configured one: a refusal is an
:class:`~requestforge_django.http.exceptions.AuthenticationException`, nothing else
is tried.

Everything secret it adds (the client secret, the Basic header, the signed
``client_assertion``) is a :class:`~requestforge_django.http.secrets.Secret`, so
:func:`~.providers.wire_request` marks those names sensitive on the wire request: logs,
``to_curl()`` and exception text show ``****``. A client assertion is signed afresh for
every token request (a new ``jti``), with ``aud`` the token endpoint URL the request goes
to (the discovered one with ``ISSUER``).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus

from ..http.exceptions import ConfigurationError
from ..http.secrets import MASK, Secret
from .data import Clock
from .signing import DEFAULT_ASSERTION_LIFETIME, SigningKey, sign_assertion, validate_lifetime

#: The ``CLIENT_AUTH_METHOD`` values; the first is the default.
CLIENT_AUTH_METHODS: tuple[str, ...] = ("client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt")

#: The methods that send a signed client assertion instead of the secret.
JWT_CLIENT_AUTH_METHODS = frozenset({"client_secret_jwt", "private_key_jwt"})

#: RFC 7523 section 2.2: ``client_assertion_type`` of a JWT client assertion.
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def basic_authorization(client_id: str, client_secret: Secret | None) -> Secret:
    """RFC 6749 2.3.1: each part form-urlencoded, joined by ``:``, base64; as a :class:`Secret`."""
    secret = client_secret or Secret("")
    return Secret("Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret.reveal())}".encode()).decode("ascii"))


class ClientAuthentication:
    """One client's authentication at its token endpoint (see the module doc).

    Validated at construction (:class:`ConfigurationError` naming the field): the
    secret methods need a ``client_id`` (``client_secret_basic`` and ``client_secret_jwt``
    a ``client_secret`` too; ``client_secret_post`` without one is a public client),
    ``private_key_jwt`` needs a ``client_id`` and a ``private_key`` (PEM text, bytes, a
    :class:`Secret` or a :class:`SigningKey`), and key material for a method that does
    not use it is refused rather than silently ignored. No ``client_id`` at all means no
    client authentication (grants where it is optional: password, JWT-bearer).
    """

    __slots__ = ("_client_secret", "_clock", "_signing_key", "client_id", "lifetime", "method")

    def __init__(
        self,
        method: str = CLIENT_AUTH_METHODS[0],
        *,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        private_key: str | bytes | Secret | SigningKey | None = None,
        key_id: str | None = None,
        algorithm: str | None = None,
        lifetime: int = DEFAULT_ASSERTION_LIFETIME,
        clock: Clock | None = None,
    ) -> None:
        if method not in CLIENT_AUTH_METHODS:
            raise ConfigurationError(f"must be one of {', '.join(CLIENT_AUTH_METHODS)}, got {method!r}", field="auth_method")
        if client_id is not None and (not isinstance(client_id, str) or not client_id.strip()):
            raise ConfigurationError("must be a non-empty string", field="client_id")
        secret = _secret(client_secret)
        self.method = method
        self.client_id = client_id
        self.lifetime = validate_lifetime(lifetime, field="assertion_lifetime")
        self._clock = clock
        self._client_secret = secret
        self._signing_key: SigningKey | None = None
        if client_id is None:
            if secret is not None or private_key is not None:
                raise ConfigurationError("a client secret or private key needs a client_id", field="client_id")
            if method != CLIENT_AUTH_METHODS[0]:
                raise ConfigurationError(f"{method} needs a client_id", field="client_id")
            return
        if method != "private_key_jwt" and private_key is not None:
            raise ConfigurationError(f"a private key is only used by private_key_jwt, not {method}", field="private_key")
        if method == "private_key_jwt":
            if secret is not None:
                raise ConfigurationError("private_key_jwt signs with the private key; give no client_secret", field="client_secret")
            if private_key is None:
                raise ConfigurationError("private_key_jwt needs a private_key (PEM, RSA or EC)", field="private_key")
            self._signing_key = _private_signing_key(private_key, algorithm=algorithm, key_id=key_id)
        elif method == "client_secret_jwt":
            if secret is None:
                raise ConfigurationError("client_secret_jwt needs a client_secret", field="client_secret")
            self._signing_key = SigningKey.from_secret(secret, algorithm=algorithm, key_id=key_id)
        else:
            if algorithm is not None or key_id is not None:
                field = "algorithm" if algorithm is not None else "key_id"
                raise ConfigurationError(f"is only used by client_secret_jwt and private_key_jwt, not {method}", field=field)
            if method == "client_secret_basic" and secret is None:
                raise ConfigurationError("client_secret_basic needs a client_id and a client_secret", field="auth_method")

    @property
    def signing_key(self) -> SigningKey | None:
        """The key that signs client assertions (``None`` for the secret methods)."""
        return self._signing_key

    @property
    def has_client_secret(self) -> bool:
        return self._client_secret is not None

    def apply(self, form: dict[str, Any], headers: dict[str, Any], *, token_url: str) -> None:
        """Add this client's authentication to a token request's ``form`` and ``headers`` (in place).

        A JWT method signs a new assertion per call (fresh ``jti``, ``aud`` = ``token_url``).
        """
        if self.client_id is None:
            return
        if self.method == "client_secret_basic":
            headers["Authorization"] = basic_authorization(self.client_id, self._client_secret)
            return
        form["client_id"] = self.client_id
        if self._signing_key is not None:
            form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            form["client_assertion"] = sign_assertion(
                self._signing_key,
                issuer=self.client_id,
                subject=self.client_id,
                audience=token_url,
                lifetime=self.lifetime,
                clock=self._clock,
            )
        elif self._client_secret is not None:
            form["client_secret"] = self._client_secret

    def secrets(self) -> tuple[Secret, ...]:
        """The secret values this authentication may send (scrubbed from error text)."""
        return (self._client_secret,) if self._client_secret is not None else ()

    def __repr__(self) -> str:
        secret = MASK if self._client_secret is not None else None
        key = repr(self._signing_key) if self._signing_key is not None else None
        return f"ClientAuthentication(method={self.method!r}, client_id={self.client_id!r}, client_secret={secret!r}, signing_key={key})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a ClientAuthentication is never pickled; build it again from its configuration")


def _secret(value: Any) -> Secret | None:
    if value is None:
        return None
    plain = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(plain, str) or not plain.strip():
        raise ConfigurationError("must be a non-empty string", field="client_secret")
    return value if isinstance(value, Secret) else Secret(value)


def _private_signing_key(private_key: str | bytes | Secret | SigningKey, *, algorithm: str | None, key_id: str | None) -> SigningKey:
    if isinstance(private_key, SigningKey):
        if private_key.key_type == "oct":
            raise ConfigurationError("private_key_jwt needs an RSA or EC key, not a client secret", field="private_key")
        if (algorithm is not None and algorithm.upper() != private_key.algorithm) or (key_id is not None and key_id != private_key.key_id):
            raise ConfigurationError("give algorithm and key_id to SigningKey.from_pem, not beside a SigningKey", field="private_key")
        return private_key
    return SigningKey.from_pem(private_key, algorithm=algorithm, key_id=key_id)
