"""Test keys for the signed-JWT tests: generated once per process, never written to disk.

Each key's PEM is a canary: tests search for its base64 body lines in everything shown.
"""

from __future__ import annotations

import functools
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

TOKEN_URL = "https://auth.example.com/oauth/token"


@functools.cache
def rsa_key(bits: int = 2048, label: str = "a") -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(curve: str = "secp256r1", label: str = "a") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(
        {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(), "secp521r1": ec.SECP521R1(), "secp256k1": ec.SECP256K1()}[curve]
    )


def pem(key: Any, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def public_pem(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def pem_needles(text: str) -> list[str]:
    """The base64 body lines of a PEM: none of them may ever be shown."""
    return [line for line in text.splitlines() if line and not line.startswith("-----")]


def decode(token: str, key: Any, *, audience: str = TOKEN_URL, algorithms: list[str] | None = None) -> dict[str, Any]:
    """Verify ``token``'s signature with ``key`` (public half of a private key, or an HMAC secret) and return its claims."""
    verifying = key.public_key() if hasattr(key, "public_key") else key
    header = jwt.get_unverified_header(token)
    return jwt.decode(
        token, verifying, algorithms=algorithms or [header["alg"]], audience=audience, options={"verify_iat": False, "verify_exp": False}
    )
