"""The JWT-bearer grant (RFC 7523 section 2.1): a signed assertion *is* the grant.

How service accounts obtain tokens at large cloud providers and CRMs: the service signs
a short-lived JWT (``iss`` the account, ``sub`` the account or the user it acts for,
``aud`` the token endpoint) with its private key and trades it for an access token.
Client authentication is optional here (many partners identify the client by the
assertion alone); when configured, it is the same :class:`ClientAuthentication` as every
other grant's.

Why a new assertion per request: each carries a fresh ``jti`` and an ``exp`` at most
five minutes away (:mod:`.signing`), so a partner that refuses replays accepts every
fetch, and an assertion that leaked is worthless minutes later. A refused assertion
(wrong key, unknown ``kid``, replay, expiry, clock skew) is an
:class:`AuthenticationException` naming the client, and nothing is cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from ..http.exceptions import ConfigurationError
from ..http.secrets import Secret
from .data import Clock
from .providers import OAuth2Options, OAuth2TokenProvider
from .signing import DEFAULT_ASSERTION_LIFETIME, SigningKey, sign_assertion, validate_claims, validate_lifetime

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: RFC 7523 section 2.1: the grant type.
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: The keys of an ``ASSERTION`` block, and the constructor parameter each maps to.
ASSERTION_KEYS: Mapping[str, str] = {
    "ISSUER": "issuer",
    "SUBJECT": "subject",
    "AUDIENCE": "audience",
    "PRIVATE_KEY": "private_key",
    "KEY_ID": "key_id",
    "ALGORITHM": "algorithm",
    "LIFETIME": "lifetime",
    "CLAIMS": "claims",
}


class GrantAssertion:
    """The ``ASSERTION`` block: who signs, for whom, with which key (validated and loaded once).

    ``issuer`` is the ``iss`` (``None``: the provider's ``client_id``), ``subject`` the
    ``sub`` (default: the issuer), ``audience`` the ``aud`` (default: the token endpoint
    URL, the discovered one with ``ISSUER``), ``private_key`` a PEM (RSA or EC) or a
    :class:`SigningKey`, ``lifetime`` 1-300 s, ``claims`` extra claims (not the
    registered ones). ``repr`` never shows the key; pickling is refused.
    """

    __slots__ = ("audience", "claims", "issuer", "key", "lifetime", "subject")

    def __init__(
        self,
        issuer: str | None,
        private_key: str | bytes | Secret | SigningKey,
        *,
        subject: str | None = None,
        audience: str | None = None,
        key_id: str | None = None,
        algorithm: str | None = None,
        lifetime: int = DEFAULT_ASSERTION_LIFETIME,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        for name, value in (("issuer", issuer), ("subject", subject), ("audience", audience)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError("must be a non-empty string", field=name)
        if private_key is None:
            raise ConfigurationError("the assertion needs a private_key (PEM, RSA or EC)", field="private_key")
        if isinstance(private_key, SigningKey):
            if private_key.key_type == "oct":
                raise ConfigurationError("a JWT-bearer assertion is signed with an RSA or EC key", field="private_key")
            key = private_key
        else:
            key = SigningKey.from_pem(private_key, algorithm=algorithm, key_id=key_id)
        self.issuer = issuer
        self.subject = subject
        self.audience = audience
        self.key = key
        self.lifetime = validate_lifetime(lifetime)
        self.claims = validate_claims(claims)

    @classmethod
    def from_settings(cls, block: Mapping[str, Any], *, prefix: str = "ASSERTION") -> GrantAssertion:
        """Build from an ``ASSERTION`` settings block (upper-case keys, see :data:`ASSERTION_KEYS`).

        A :class:`ConfigurationError` names the offending key (``"ASSERTION.PRIVATE_KEY"``).
        """
        if not isinstance(block, Mapping):
            raise ConfigurationError("must be a mapping", field=prefix)
        unknown = sorted(str(key) for key in block if key not in ASSERTION_KEYS)
        if unknown:
            raise ConfigurationError(f"unknown keys {', '.join(unknown)}; known: {', '.join(ASSERTION_KEYS)}", field=prefix)
        params = {ASSERTION_KEYS[key]: value for key, value in block.items()}
        problem: ConfigurationError | None = None
        try:
            return cls(
                params.pop("issuer", None),
                params.pop("private_key", None),
                **{name: value for name, value in params.items() if value is not None},
            )
        except ConfigurationError as exc:
            problem = exc
        _renamed(problem, prefix)

    def sign(self, *, token_url: str, default_issuer: str | None, clock: Clock | None = None) -> Secret:
        """A fresh signed assertion for a request to ``token_url`` (new ``jti``), as a :class:`Secret`."""
        issuer = self.issuer or default_issuer
        if issuer is None:
            raise ConfigurationError("the assertion needs an issuer (or the provider a client_id)", field="issuer")
        return sign_assertion(
            self.key,
            issuer=issuer,
            subject=self.subject or issuer,
            audience=self.audience or token_url,
            lifetime=self.lifetime,
            extra_claims=self.claims,
            clock=clock,
        )

    def __repr__(self) -> str:
        return (
            f"GrantAssertion(issuer={self.issuer!r}, subject={self.subject!r}, audience={self.audience!r}, "
            f"key={self.key!r}, lifetime={self.lifetime}, claims={sorted(self.claims)!r})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("a GrantAssertion is never pickled; build it again from its configuration")


class JwtBearerTokenProvider(OAuth2TokenProvider):
    """RFC 7523 section 2.1 JWT-bearer grant: ``grant_type`` + ``assertion`` (+ ``scope``, ``audience``, ``resource``).

    ``client_id`` and client authentication are optional; with a ``client_id`` and no
    secret or key, ``client_id`` is sent in the form (``client_secret_post`` of a
    public client).
    """

    grant_type = JWT_BEARER_GRANT

    def __init__(
        self,
        token_url: str | None = None,
        *,
        assertion: GrantAssertion,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scope: str | None = None,
        **options: Unpack[OAuth2Options],
    ) -> None:
        if not isinstance(assertion, GrantAssertion):
            raise ConfigurationError("must be a GrantAssertion", field="assertion")
        if assertion.issuer is None and client_id is None:
            raise ConfigurationError("the assertion needs an issuer (or the provider a client_id)", field="assertion")
        self.assertion = assertion
        super().__init__(token_url, client_id=client_id, client_secret=client_secret, scope=scope, **options)

    def _default_service_name(self, host: str) -> str:
        return f"{self.assertion.issuer or self.client_id}@{host}"

    def _grant_params(self, token_url: str) -> dict[str, Any]:
        return {"assertion": self.assertion.sign(token_url=token_url, default_issuer=self.client_id, clock=self._clock)}

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", assertion={self.assertion!r})"


def _renamed(problem: ConfigurationError | None, prefix: str) -> NoReturn:
    """Raise ``problem`` again with its field as the settings key (``ASSERTION.PRIVATE_KEY``), outside any handler."""
    assert problem is not None
    keys = {param: key for key, param in ASSERTION_KEYS.items()}
    field = problem.field
    message = problem.message[len(field) + 2 :] if field and problem.message.startswith(f"{field}: ") else problem.message
    raise ConfigurationError(message, field=f"{prefix}.{keys[field]}" if field in keys else prefix)
