"""Signing keys and the JWTs the library signs (client assertions, JWT-bearer grant assertions).

Why a :class:`SigningKey` value: a PEM private key is read, parsed and checked *once*
(when the provider is built, or by ``manage.py check`` through :func:`private_key_error`),
so a broken key is a configuration error before any request, not a failed token fetch
hours later. The parsed key is held in a slot that no ``repr``, ``str``, ``format``,
pickle or copy ever shows: a frame local on Django's DEBUG page, a log line or a cache
entry cannot carry it. Error messages describe a key (its type, size or curve), never
quote it, and are raised outside any ``except`` block so no exception chain holds the
parser's view of it either.

Why these rules for the claims (:func:`sign_assertion`): the contract in ``DESIGN.md``
("Standards for machine credentials") fixes them so every partner gets the same shape:
``iss``, ``sub``, ``aud`` a single string, ``iat`` now, ``exp`` at most
:data:`MAX_ASSERTION_LIFETIME` seconds later and a fresh random ``jti`` per token
request, which lets the partner refuse a replayed assertion.

The JOSE work is PyJWT's (with ``cryptography``), imported only when a key is used, so
the package imports without the optional extra :data:`JWT_EXTRA`; using a JWT feature
without it raises :class:`ConfigurationError` naming the extra.
"""

from __future__ import annotations

import importlib
import json
import math
import secrets as _random
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType, ModuleType
from typing import Any, NoReturn

from ..http.exceptions import ConfigurationError
from ..http.secrets import Secret
from .data import Clock, system_clock

#: The optional extra that brings the JOSE library and ``cryptography``.
JWT_EXTRA = "jwt"

#: What ``pip`` needs for :data:`JWT_EXTRA`.
JWT_EXTRA_HINT = f"pip install 'requestforge-django[{JWT_EXTRA}]'"

RSA_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
#: ES algorithm -> the curve it is defined on (RFC 7518 section 3.4).
EC_ALGORITHMS: Mapping[str, str] = MappingProxyType({"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"})
HMAC_ALGORITHMS: tuple[str, ...] = ("HS256", "HS384", "HS512")
#: Every algorithm a private key can sign with.
KEY_ALGORITHMS: tuple[str, ...] = (*RSA_ALGORITHMS, *EC_ALGORITHMS)
ALGORITHMS: tuple[str, ...] = (*KEY_ALGORITHMS, *HMAC_ALGORITHMS)

#: RFC 7518 section 3.3: "A key of size 2048 bits or larger MUST be used".
MIN_RSA_KEY_BITS = 2048

#: Shortest ``client_secret_jwt`` secret without a warning (HS256's output size, RFC 7518 section 3.2).
MIN_HMAC_SECRET_BYTES = 32

#: ``LIFETIME`` bounds (seconds): a signed assertion lives at most five minutes.
MAX_ASSERTION_LIFETIME = 300
DEFAULT_ASSERTION_LIFETIME = 300

#: Claims the library sets itself; ``CLAIMS`` may not override them.
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "iat", "exp", "jti", "nbf"})

_CURVE_ALGORITHM = {curve: algorithm for algorithm, curve in EC_ALGORITHMS.items()}
_PEM_PRIVATE_MARKERS = ("-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----")


# -- the optional extra --------------------------------------------------------------------------


def jwt_support_problem() -> str | None:
    """Why JWT features cannot work in this process (the extra is missing), or ``None``.

    For ``manage.py check``: a configured key without the extra is an error naming it.
    """
    for module, what in (("cryptography", "cryptography"), ("jwt", "PyJWT")):
        try:
            found = importlib.import_module(module)
        except ImportError:
            return f"signed JWTs need {what}, which is not installed: {JWT_EXTRA_HINT}"
        if module == "jwt" and not hasattr(found, "PyJWS"):
            return f"the importable 'jwt' module is not PyJWT (another package named 'jwt'?): {JWT_EXTRA_HINT}"
    return None


def require_jwt_support() -> None:
    """Raise :class:`ConfigurationError` naming the extra when PyJWT or ``cryptography`` is missing."""
    problem = jwt_support_problem()
    if problem is not None:
        raise ConfigurationError(problem)


def _pyjwt() -> ModuleType:
    require_jwt_support()
    return importlib.import_module("jwt")


# -- validation helpers (also used by the Django layer's checks) ---------------------------------


def normalize_algorithm(algorithm: Any, *, field: str = "algorithm") -> str | None:
    """``None`` or one of :data:`ALGORITHMS` (upper-cased); anything else is a :class:`ConfigurationError`."""
    if algorithm is None:
        return None
    if not isinstance(algorithm, str) or algorithm.strip().upper() not in ALGORITHMS:
        raise ConfigurationError(f"must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}", field=field)
    return algorithm.strip().upper()


def validate_lifetime(lifetime: Any, *, field: str = "lifetime") -> int:
    """``LIFETIME`` as whole seconds in 1..:data:`MAX_ASSERTION_LIFETIME`, else :class:`ConfigurationError`."""
    if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or not math.isfinite(lifetime):
        raise ConfigurationError(f"must be a number of seconds from 1 to {MAX_ASSERTION_LIFETIME}, got {lifetime!r}", field=field)
    if not 1 <= lifetime <= MAX_ASSERTION_LIFETIME or int(lifetime) != lifetime:
        raise ConfigurationError(f"must be whole seconds from 1 to {MAX_ASSERTION_LIFETIME}, got {lifetime!r}", field=field)
    return int(lifetime)


def validate_claims(claims: Any, *, field: str = "claims") -> Mapping[str, Any]:
    """Extra claims: a mapping of string names, none of :data:`REGISTERED_CLAIMS` (the library sets those)."""
    if claims is None:
        return MappingProxyType({})
    if not isinstance(claims, Mapping) or not all(isinstance(name, str) and name for name in claims):
        raise ConfigurationError("must be a mapping of claim names to JSON values", field=field)
    reserved = sorted(REGISTERED_CLAIMS.intersection(claims))
    if reserved:
        raise ConfigurationError(f"may not set {', '.join(reserved)}: the library sets them (see the contract)", field=field)
    try:
        json.dumps(dict(claims))
    except (TypeError, ValueError):
        raise ConfigurationError("must hold JSON values only (strings, numbers, booleans, lists, mappings)", field=field) from None
    return MappingProxyType(dict(claims))


def hmac_secret_problem(secret: str | Secret | None) -> str | None:
    """A warning text when a ``client_secret_jwt`` secret is shorter than :data:`MIN_HMAC_SECRET_BYTES` (never quotes it)."""
    if secret is None:
        return None
    length = len((secret.reveal() if isinstance(secret, Secret) else secret).encode("utf-8"))
    if length < MIN_HMAC_SECRET_BYTES:
        return f"the client secret is {length} bytes; HMAC signing (client_secret_jwt) needs at least {MIN_HMAC_SECRET_BYTES}"
    return None


def private_key_error(pem: Any, algorithm: Any = None, key_id: Any = None) -> ConfigurationError | None:
    """What is wrong with a ``PRIVATE_KEY``/``ALGORITHM``/``KEY_ID`` trio, or ``None`` when it can sign.

    For ``manage.py check``: the error's ``field`` is ``"private_key"``, ``"algorithm"`` or
    ``"key_id"`` (the offending setting) and its message describes the key (type, size,
    curve), never quotes it. A missing JWT extra is reported too (``field`` ``None``).
    """
    try:
        SigningKey.from_pem(pem, algorithm=algorithm, key_id=key_id)
    except ConfigurationError as exc:
        return exc
    return None


# -- the key -------------------------------------------------------------------------------------


class SigningKey:
    """A parsed, validated private key (or ``client_secret_jwt`` secret) with its algorithm and ``kid``.

    Immutable. ``repr``/``str`` show the key type, size and algorithm only; pickling is
    refused (a key must be rebuilt from its configuration, never copied through a cache or
    a Celery message); ``copy``/``deepcopy`` return the same object.
    """

    __slots__ = ("_key", "algorithm", "description", "key_id", "key_type")
    _key: Any
    algorithm: str
    description: str
    key_id: str | None
    key_type: str

    def __init__(self, key: Any, *, algorithm: str, key_type: str, description: str, key_id: str | None = None) -> None:
        """Prefer :meth:`from_pem` and :meth:`from_secret`: they validate; this trusts its caller."""
        fields = {"_key": key, "algorithm": algorithm, "key_type": key_type, "description": description, "key_id": key_id}
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_pem(
        cls, pem: str | bytes | Secret, *, algorithm: str | None = None, key_id: str | None = None, field: str = "private_key"
    ) -> SigningKey:
        """Load an RSA or EC private key from PEM (PKCS#8 or traditional, unencrypted) and check it fits ``algorithm``.

        ``algorithm`` defaults by key type: RS256 for RSA, ES256/384/512 by the EC curve.
        A PEM with literal ``\\n`` sequences (from an environment variable) is accepted.
        Every problem is a :class:`ConfigurationError` on ``field`` that never quotes the key.
        """
        algorithm = normalize_algorithm(algorithm, field="algorithm")
        key_id = _key_id(key_id)
        if algorithm in HMAC_ALGORITHMS:
            raise ConfigurationError(
                f"{algorithm} signs with the client secret (client_secret_jwt), not with a private key", field="algorithm"
            )
        require_jwt_support()
        key, problem = _load_private_key(_pem_bytes(pem))
        if key is None:
            _refuse(problem, field)
        key_type, description, fitting = _describe(key)
        if key_type is None:
            _refuse(f"{description} keys are not supported; use an RSA or EC (P-256, P-384, P-521) key", field)
        if key_type == "RSA" and key.key_size < MIN_RSA_KEY_BITS:
            _refuse(f"{description} is too short; RSA keys need at least {MIN_RSA_KEY_BITS} bits (RFC 7518)", field)
        chosen = algorithm or fitting[0]
        if chosen not in fitting:
            raise ConfigurationError(f"{chosen} does not fit the {description}; it signs with {', '.join(fitting)}", field="algorithm")
        return cls(key, algorithm=chosen, key_type=key_type, description=description, key_id=key_id)

    @classmethod
    def from_secret(cls, secret: str | Secret, *, algorithm: str | None = None, key_id: str | None = None) -> SigningKey:
        """An HMAC key over a client secret (``client_secret_jwt``); ``algorithm`` HS256 (default), HS384 or HS512."""
        algorithm = normalize_algorithm(algorithm, field="algorithm") or "HS256"
        if algorithm not in HMAC_ALGORITHMS:
            raise ConfigurationError(f"client_secret_jwt signs with {', '.join(HMAC_ALGORITHMS)}, not {algorithm}", field="algorithm")
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not isinstance(value, str) or not value:
            raise ConfigurationError("client_secret_jwt needs a non-empty client secret", field="client_secret")
        require_jwt_support()
        return cls(value.encode("utf-8"), algorithm=algorithm, key_type="oct", description="client secret", key_id=_key_id(key_id))

    def sign(self, claims: Mapping[str, Any]) -> Secret:
        """The compact JWS of ``claims`` (header ``alg``, ``typ`` JWT, ``kid`` when set), as a :class:`Secret`."""
        headers = {"kid": self.key_id} if self.key_id else None
        return Secret(_pyjwt().encode(dict(claims), self._key, algorithm=self.algorithm, headers=headers))

    def public_key(self) -> Any:
        """The ``cryptography`` public key (for tests and JWKS publication); ``None`` for an HMAC key."""
        return None if self.key_type == "oct" else self._key.public_key()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SigningKey is immutable")

    def __repr__(self) -> str:
        return f"SigningKey({self.description}, algorithm={self.algorithm!r}, key_id={self.key_id!r}, key='****')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SigningKey is never pickled; build it again from its configuration")

    def __copy__(self) -> SigningKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SigningKey:
        return self


# -- assertions ------------------------------------------------------------------------------------


def new_jti() -> str:
    """A fresh random JWT ID (128+ bits), unique per token request."""
    return _random.token_urlsafe(24)


def assertion_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    lifetime: int = DEFAULT_ASSERTION_LIFETIME,
    extra_claims: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The claims of one assertion: ``extra_claims`` plus iss, sub, aud (one string), iat, exp, a new jti."""
    for name, value in (("issuer", issuer), ("subject", subject), ("audience", audience)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("must be a non-empty string", field=name)
    lifetime = validate_lifetime(lifetime)
    issued_at = int((now or system_clock()).timestamp())
    claims = dict(validate_claims(extra_claims))
    claims.update(iss=issuer, sub=subject, aud=audience, iat=issued_at, exp=issued_at + lifetime, jti=new_jti())
    return claims


def sign_assertion(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    audience: str,
    lifetime: int = DEFAULT_ASSERTION_LIFETIME,
    extra_claims: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> Secret:
    """Sign a fresh assertion (see :func:`assertion_claims`) with ``key``; the compact JWT as a :class:`Secret`."""
    return key.sign(
        assertion_claims(
            issuer=issuer, subject=subject, audience=audience, lifetime=lifetime, extra_claims=extra_claims, now=(clock or system_clock)()
        )
    )


# -- helpers ---------------------------------------------------------------------------------------


def _key_id(key_id: Any) -> str | None:
    if key_id is None:
        return None
    if not isinstance(key_id, str) or not key_id.strip():
        raise ConfigurationError("must be a non-empty string", field="key_id")
    return key_id


def _refuse(problem: str, field: str) -> NoReturn:
    raise ConfigurationError(problem, field=field)


def _pem_bytes(pem: Any) -> bytes | None:
    """The PEM as bytes (literal ``\\n`` turned into line breaks), or ``None`` for a value of another type."""
    value = pem.reveal() if isinstance(pem, Secret) else pem
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    if not isinstance(value, bytes):
        return None
    value = value.strip()
    if b"\n" not in value and b"\\n" in value:
        value = value.replace(b"\\n", b"\n")
    return value


def _load_private_key(data: bytes | None) -> tuple[Any, str]:
    """The ``cryptography`` key, or ``None`` and a description of the problem that never quotes ``data``."""
    if data is None:
        return None, "must be PEM text (a string or bytes)"
    if not data:
        return None, "must be a PEM private key (-----BEGIN PRIVATE KEY-----), got no text"
    text = data.decode("ascii", "replace")
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text:
        return None, "is an encrypted PEM key; give the decrypted key (keep it in the encrypted credential store instead)"
    public = ("-----BEGIN PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----", "-----BEGIN RSA PUBLIC KEY-----")
    if any(marker in text for marker in public) and not any(marker in text for marker in _PEM_PRIVATE_MARKERS):
        return None, "is a public key or certificate; the private key is needed to sign"
    if "-----BEGIN " not in text:
        return None, f"is not a PEM private key (no -----BEGIN line; {len(data)} bytes)"
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key: Any = None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        kind = type(exc).__name__  # cryptography's messages do not quote keys, but we say nothing of its text anyway
    except Exception as exc:  # an unsupported algorithm and the like: a refused key, whatever the class
        kind = type(exc).__name__
    if key is None:
        return None, f"is not a readable PEM private key ({kind}; {len(data)} bytes)"
    return key, ""


def _describe(key: Any) -> tuple[str | None, str, tuple[str, ...]]:
    """(key type, description, algorithms it signs with); the type is ``None`` for unsupported keys."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", f"RSA key of {key.key_size} bits", RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = _CURVE_ALGORITHM.get(key.curve.name)
        if algorithm is None:
            return None, f"EC ({key.curve.name})", ()
        return "EC", f"EC key on {key.curve.name}", (algorithm,)
    return None, type(key).__name__.lstrip("_").replace("PrivateKey", ""), ()
