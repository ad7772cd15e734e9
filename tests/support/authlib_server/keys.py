"""Test signing keys (made with ``cryptography``) and hand-built JWT assertions (signed with ``joserfc``).

A :class:`SigningKey` carries its private PEM for the test that signs with it, but its
``repr`` shows only the key type, ``kid`` and the RFC 7638 thumbprint of the public
half: a failing assertion message never prints key material. Only ``public_pem``
is ever sent to the server.

Imports of ``cryptography`` and ``joserfc`` happen inside the functions, so importing this
module (from ``tests/conftest.py``) costs nothing.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ASSERTION_TYPE",
    "SigningKey",
    "generate_rsa_key",
    "generate_ec_key",
    "assertion_claims",
    "sign_assertion",
    "client_assertion_form",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


@dataclass(frozen=True)
class SigningKey:
    """A private key for signing assertions: ``kty`` ``"RSA"`` or ``"EC"``, its default ``alg`` and ``kid``."""

    kty: str
    kid: str
    alg: str
    private_pem: str = field(repr=False)
    public_pem: str = field(repr=False)

    @property
    def thumbprint(self) -> str:

        return str(self.joserfc_key(self.public_pem).thumbprint())

    def joserfc_key(self, pem: str) -> Any:
        """``pem`` (one of this key's halves) as a joserfc key of this key's type (joserfc warns when it must guess)."""
        from joserfc import jwk

        return (jwk.RSAKey if self.kty == "RSA" else jwk.ECKey).import_key(pem)

    def public_entry(self) -> dict[str, str]:
        """What the server registers: the public PEM and the ``kid``."""
        return {"pem": self.public_pem, "kid": self.kid}

    def __repr__(self) -> str:
        return f"SigningKey(kty={self.kty!r}, kid={self.kid!r}, alg={self.alg!r}, thumbprint={self.thumbprint[:12]!r})"


def _pems(private: Any) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization

    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem.decode(), public_pem.decode()


def generate_rsa_key(kid: str | None = None, *, bits: int = 2048) -> SigningKey:
    """A fresh RSA key (RS256)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_pem, public_pem = _pems(rsa.generate_private_key(public_exponent=65537, key_size=bits))
    return SigningKey("RSA", kid or f"rsa-{secrets.token_hex(4)}", "RS256", private_pem, public_pem)


def generate_ec_key(kid: str | None = None, *, curve: str = "P-256") -> SigningKey:
    """A fresh EC key on ``curve`` (``P-256`` -> ES256, ``P-384`` -> ES384, ``P-521`` -> ES512)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    private_pem, public_pem = _pems(ec.generate_private_key(curves[curve]))
    return SigningKey("EC", kid or f"ec-{secrets.token_hex(4)}", EC_ALGORITHMS[curve], private_pem, public_pem)


def assertion_claims(
    issuer: str,
    audience: str | list[str],
    *,
    subject: str | None = None,
    lifetime: int = 300,
    issued_at: float | None = None,
    jti: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """RFC 7523 claims: ``iss``, ``sub`` (defaults to ``iss``), ``aud``, ``iat``, ``exp = iat + lifetime``, a fresh ``jti``."""
    iat = int(time.time() if issued_at is None else issued_at)
    claims = {"iss": issuer, "sub": subject or issuer, "aud": audience, "iat": iat, "exp": iat + lifetime}
    claims["jti"] = jti or secrets.token_urlsafe(16)
    claims.update(extra)
    return claims


def sign_assertion(key: SigningKey | str, claims: dict[str, Any], *, alg: str | None = None, kid: str | None = None) -> str:
    """A compact JWS of ``claims``: with a :class:`SigningKey` (its ``alg``/``kid`` unless given) or a shared secret (HS256)."""
    import warnings

    from joserfc import jwk, jwt

    header: dict[str, Any] = {"typ": "JWT"}
    if isinstance(key, SigningKey):
        header["alg"] = alg or key.alg
        signing: Any = key.joserfc_key(key.private_pem)
        if kid or key.kid:
            header["kid"] = kid or key.kid
    else:
        header["alg"] = alg or "HS256"
        with warnings.catch_warnings():  # joserfc warns on short HMAC keys; short secrets are a test case
            warnings.simplefilter("ignore")
            signing = jwk.OctKey.import_key(key)
        if kid:
            header["kid"] = kid
    return str(jwt.encode(header, claims, signing, algorithms=[header["alg"]]))


def client_assertion_form(assertion: str, *, client_id: str | None = None) -> dict[str, str]:
    """The token-request parameters of a client assertion (RFC 7523 section 2.2)."""
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    if client_id is not None:
        form["client_id"] = client_id
    return form
