"""The server process's state: registered clients and trusted issuers, issued tokens, used ``jti`` values, switches.

Clients and issuers are Authlib client models (:class:`authlib.oauth2.rfc6749.ClientMixin`):
Authlib's grants and client-authentication methods ask them which methods and grants
they allow and check their secrets; the server code only looks them up. Issued tokens
are indexed by their SHA-256 (the plain value is never kept), which is all a token
exchange or a protected-API call needs to recognise one.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from joserfc import jwk

from .ledger import fingerprint

__all__ = ["ALL_METHODS", "ALGORITHMS", "Config", "Client", "TokenRecord", "State"]

#: Every client-authentication method the token endpoint knows, in the order Authlib tries them.
ALL_METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"]
#: The signing algorithms accepted by default (the contract's list). Authlib alone accepts only
#: joserfc's "recommended" ones (HS256, RS256, ES256); ``configure(algorithms=...)`` narrows it.
ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


@dataclass
class Config:
    """Behaviour switches, changed per test through ``POST /_control/configure/``."""

    expires_in: int = 3600
    #: An assertion whose ``exp - iat`` is larger is refused (the contract's 300 s).
    max_assertion_lifetime: int = 300
    #: Clock skew allowed on ``exp``/``nbf`` (Authlib's default).
    leeway: int = 60
    #: Also accept the issuer URL as an assertion ``aud`` (RFC 7523 allows it; the contract sends the token endpoint).
    accept_issuer_audience: bool = False
    algorithms: list[str] = field(default_factory=lambda: list(ALGORITHMS))
    #: The error a rejected subject token gets (RFC 8693 section 2.2.2 says ``invalid_request``).
    subject_token_error: str = "invalid_request"
    #: ``resource``/``audience`` values refused with ``invalid_target`` (RFC 8707 / RFC 8693).
    invalid_targets: list[str] = field(default_factory=list)
    #: Seconds the token endpoint waits before answering (a slow partner widens a race window).
    token_delay: float = 0.0
    # -- metadata ---------------------------------------------------------------------------
    #: The issuer is ``origin + issuer_path`` (``"/tenant-a"``: the path-aware well-known forms).
    issuer_path: str = ""
    #: Which documents are served: ``"oauth"`` (RFC 8414) and/or ``"openid"`` (OpenID Connect Discovery).
    documents: list[str] = field(default_factory=lambda: ["oauth", "openid"])
    #: A different ``issuer`` in the documents (a partner answering for someone else).
    issuer_override: str | None = None
    #: A different ``token_endpoint`` in the documents (e.g. on another origin).
    token_endpoint_override: str | None = None

    def update(self, options: dict[str, Any]) -> None:
        for name, value in options.items():
            if not hasattr(self, name):
                raise KeyError(f"unknown option {name!r}")
            setattr(self, name, value)


def _public_key(pem: str, kid: str | None = None) -> Any:
    """A joserfc key from a public PEM, its type read by ``cryptography`` (joserfc warns when it must guess)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    loaded = load_pem_public_key(pem.encode())
    parameters: Any = {"kid": kid} if kid else None
    if isinstance(loaded, rsa.RSAPublicKey):
        return jwk.RSAKey.import_key(pem, parameters)
    if isinstance(loaded, ec.EllipticCurvePublicKey):
        return jwk.ECKey.import_key(pem, parameters)
    raise ValueError("only RSA and EC public keys are supported")


def _key_set(keys: list[dict[str, Any]]) -> jwk.KeySet:
    return jwk.KeySet([_public_key(k["pem"], k.get("kid")) for k in keys])


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    """A registered client (or, with ``issuer=True``, a trusted RFC 7523 section 2.1 assertion issuer)."""

    client_id: str
    methods: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)
    #: Public keys: ``{"pem": ..., "kid": ...}``.
    keys: list[dict[str, Any]] = field(default_factory=list)
    grants: tuple[str, ...] = ("client_credentials",)
    scope: str | None = None
    issuer: bool = False
    #: Issuers only: the ``sub`` values accepted (``None``: any).
    subjects: tuple[str, ...] | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope or self.scope is None:
            return scope or ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in self.methods

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grants

    def key_set(self) -> jwk.KeySet:
        return _key_set(self.keys)

    def allows_subject(self, subject: str) -> bool:
        return self.subjects is None or subject in self.subjects

    def public(self) -> dict[str, Any]:
        """What the control API shows: no secret, no key material beyond thumbprints."""
        keys = [{"kid": k.get("kid"), "thumbprint": _public_key(k["pem"]).thumbprint()} for k in self.keys]
        return {
            "client_id": self.client_id,
            "methods": list(self.methods),
            "grants": list(self.grants),
            "scope": self.scope,
            "secret": fingerprint(self.secret) if self.secret else None,
            "keys": keys,
            "issuer": self.issuer,
            "subjects": list(self.subjects) if self.subjects is not None else None,
        }


@dataclass
class TokenRecord:
    """An access token this server issued (known by its SHA-256 only)."""

    fingerprint: str
    client_id: str
    grant_type: str
    scope: str
    expires_at: float
    resource: list[str]
    audience: list[str]
    subject: str | None = None
    #: Token exchange: the fingerprint and client of the subject token it was exchanged for.
    exchanged_from: str | None = None
    exchanged_from_client: str | None = None
    revoked: bool = False

    def active(self) -> bool:
        return not self.revoked and time.time() < self.expires_at

    def public(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {"active": self.active()}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class State:
    """Everything the server process knows, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.origin = ""
        self.config = Config()
        self.clients: dict[str, Client] = {}
        self.issuers: dict[str, Client] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._jtis: dict[tuple[str, str, str], float] = {}

    # -- urls --------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.origin + self.config.issuer_path

    @property
    def token_url(self) -> str:
        return self.origin + "/oauth/token"

    def assertion_audiences(self) -> list[str]:
        """The ``aud`` values an assertion may carry: this server's token endpoint (and the issuer when allowed)."""
        audiences = [self.token_url]
        if self.config.accept_issuer_audience:
            audiences.append(self.issuer)
        return audiences

    # -- tokens ------------------------------------------------------------------------------

    def store_token(self, access_token: str, record: TokenRecord) -> None:
        with self.lock:
            self._tokens[token_digest(access_token)] = record

    def lookup_token(self, access_token: str) -> TokenRecord | None:
        with self.lock:
            return self._tokens.get(token_digest(access_token))

    def revoke_tokens(self, client_id: str | None) -> int:
        with self.lock:
            chosen = [r for r in self._tokens.values() if not r.revoked and (client_id is None or r.client_id == client_id)]
            for record in chosen:
                record.revoked = True
            return len(chosen)

    def tokens(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.public() for r in self._tokens.values()]

    # -- jti ---------------------------------------------------------------------------------

    def use_jti(self, kind: str, issuer: str, jti: str, exp: float) -> bool:
        """Remember ``jti`` until the assertion could no longer be accepted; ``False`` if it was seen already."""
        now = time.time()
        with self.lock:
            for key in [k for k, until in self._jtis.items() if until < now]:
                del self._jtis[key]
            key = (kind, issuer, jti)
            if key in self._jtis:
                return False
            self._jtis[key] = float(exp) + self.config.leeway
            return True

    def reset(self) -> None:
        """Forget every client, issuer, token and ``jti``; default switches (the ledger is separate)."""
        with self.lock:
            self.config = Config()
            self.clients.clear()
            self.issuers.clear()
            self._tokens.clear()
            self._jtis.clear()
