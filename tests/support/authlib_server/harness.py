"""The test side of the Authlib server: start it in its own process, register clients, read the ledger, stop it.

:class:`AuthlibServer` runs ``python -m tests.support.authlib_server`` in a temporary
directory, waits for the line with its port (an event on the pipe, bounded by
``startup_timeout``: no sleeps), checks it answers ``/_control/health/``, and talks to
its ``/_control/`` endpoints over HTTP. Stopping closes the child's stdin (it exits on
EOF), then escalates to SIGTERM and SIGKILL. Starting, stopping and the control requests
are :class:`tests.support.child_server.ChildServer`'s. Only the standard library is used here
(keys come from :mod:`.keys`, which imports ``cryptography`` lazily), so importing this
module does not touch the test process's Django.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.support.child_server import ChildServer

from .keys import SigningKey, generate_rsa_key
from .ledger import fingerprint

__all__ = ["GRANTS", "AuthlibServer", "AuthlibServerError", "ServerClient", "ServerIssuer"]

TOKEN_PATH = "/oauth/token"
API_PATH = "/api/whoami"
#: Short grant names (as in ``AUTH["TYPE"]``) -> the ``grant_type`` values on the wire.
GRANTS = {
    "client_credentials": "client_credentials",
    "jwt_bearer": "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "token_exchange": "urn:ietf:params:oauth:grant-type:token-exchange",
}
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


class AuthlibServerError(RuntimeError):
    """The server did not start, or a control request failed."""


@dataclass(frozen=True)
class ServerClient:
    """A client registered on the server: ``secret`` and the private halves of ``keys`` are for the test to use."""

    client_id: str
    methods: tuple[str, ...]
    grants: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    keys: tuple[SigningKey, ...] = ()

    @property
    def method(self) -> str:
        return self.methods[0]

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def __repr__(self) -> str:
        secret = fingerprint(self.secret) if self.secret else None
        return f"ServerClient({self.client_id!r}, methods={self.methods}, secret_fp={secret!r}, keys={list(self.keys)!r})"


@dataclass(frozen=True)
class ServerIssuer:
    """A trusted RFC 7523 section 2.1 assertion issuer; ``key`` signs its assertions."""

    issuer: str
    key: SigningKey
    subjects: tuple[str, ...] | None = None


def _grant(name: str) -> str:
    return GRANTS.get(name, name)


class AuthlibServer(ChildServer):
    """Authlib's authorization server on ``127.0.0.1:<port>`` in a child process; ``with AuthlibServer() as server:``."""

    module = "tests.support.authlib_server"
    label = "the Authlib server"
    error = AuthlibServerError
    tmp_prefix = "requestforge-authlib-"
    token_path = TOKEN_PATH

    def __init__(self, *, host: str = "127.0.0.1", startup_timeout: float = 60.0) -> None:
        super().__init__(host=host, startup_timeout=startup_timeout)
        self.clients: dict[str, ServerClient] = {}
        self.issuers: dict[str, ServerIssuer] = {}
        self._issuer_path = ""

    # -- urls ----------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer identifier (the origin, plus the path set by ``configure_metadata(issuer_path=...)``)."""
        return self.url + self._issuer_path

    @property
    def api_url(self) -> str:
        """The protected API (``GET``: who the bearer token belongs to)."""
        return self.url + API_PATH

    @property
    def other_origin_token_url(self) -> str:
        """The same token endpoint under another origin (``localhost``): for metadata that must be refused."""
        return f"http://localhost:{self.port}{TOKEN_PATH}"

    @property
    def oauth_metadata_url(self) -> str:
        """RFC 8414 section 3.1: ``/.well-known/oauth-authorization-server`` + the issuer's path."""
        return self.url + "/.well-known/oauth-authorization-server" + self._issuer_path

    @property
    def openid_metadata_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    # -- lifecycle -----------------------------------------------------------------------------

    def _check_ready(self) -> None:
        """Ready means answering ``/_control/health/``, not only listening."""
        self._control("health/")

    def __repr__(self) -> str:
        return f"AuthlibServer(issuer={self.issuer if self.port else None!r})"

    # -- registration ---------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        method: str = "client_secret_basic",
        *,
        methods: tuple[str, ...] | list[str] | None = None,
        secret: str | None = None,
        keys: tuple[SigningKey, ...] | list[SigningKey] | None = None,
        public_key_pem: str | None = None,
        kid: str | None = None,
        grants: tuple[str, ...] | list[str] = ("client_credentials",),
        scope: str | None = None,
    ) -> ServerClient:
        """Register (or replace) a client allowed ``method`` (or every one of ``methods``) for ``grants``.

        Without ``secret``, a ``client_secret_*`` client gets a fresh 43-character one; without
        ``keys``/``public_key_pem``, a ``private_key_jwt`` client gets a fresh RSA key with
        ``kid`` ``"<client_id>-1"``. Only public keys and the secret go to the server.
        """
        allowed = tuple(methods or (method,))
        if secret is None and any(m in SECRET_METHODS for m in allowed):
            secret = secrets.token_urlsafe(32)
        if keys is None and public_key_pem is None and "private_key_jwt" in allowed:
            keys = (generate_rsa_key(kid or f"{client_id}-1"),)
        entries = [k.public_entry() for k in keys or ()]
        if public_key_pem is not None:
            entries.append({"pem": public_key_pem, "kid": kid or ""})
        wire_grants = [_grant(g) for g in grants]
        self._control(
            "clients/",
            {"client_id": client_id, "methods": list(allowed), "secret": secret, "keys": entries, "grants": wire_grants, "scope": scope},
        )
        client = ServerClient(client_id, allowed, tuple(wire_grants), secret, tuple(keys or ()))
        self.clients[client_id] = client
        return client

    def register_issuer(
        self, issuer: str, key: SigningKey | None = None, *, subjects: tuple[str, ...] | list[str] | None = None, scope: str | None = None
    ) -> ServerIssuer:
        """Trust ``issuer``'s assertions (RFC 7523 section 2.1) signed by ``key`` (a fresh RSA key by default), for ``subjects`` (any)."""
        key = key or generate_rsa_key(f"{issuer}-1")
        self._control(
            "issuers/",
            {"issuer": issuer, "keys": [key.public_entry()], "subjects": list(subjects) if subjects is not None else None, "scope": scope},
        )
        registered = ServerIssuer(issuer, key, tuple(subjects) if subjects is not None else None)
        self.issuers[issuer] = registered
        return registered

    def registrations(self) -> dict[str, Any]:
        """What the server holds (``clients``, ``issuers``): secrets as fingerprints, keys as thumbprints."""
        return dict(self._control("clients/"))

    # -- behaviour ------------------------------------------------------------------------------

    def configure(self, **options: Any) -> dict[str, Any]:
        """Set switches of ``registry.Config``: ``expires_in``, ``max_assertion_lifetime``, ``leeway``,
        ``accept_issuer_audience``, ``algorithms``, ``subject_token_error``, ``invalid_targets``, ``token_delay``,
        and the metadata ones (see :meth:`configure_metadata`)."""
        answer = dict(self._control("configure/", options))
        self._issuer_path = str(answer["config"]["issuer_path"])
        return answer

    def configure_metadata(
        self,
        *,
        issuer_path: str = "",
        documents: tuple[str, ...] | list[str] = ("oauth", "openid"),
        issuer: str | None = None,
        token_endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Shape discovery (each call sets all four; the defaults are the plain server): an issuer with a path
        (``"/tenant-a"``), which documents exist (``"oauth"``: RFC 8414, ``"openid"``), another ``issuer`` in
        them, or another ``token_endpoint`` (e.g. :attr:`other_origin_token_url`)."""
        return self.configure(
            issuer_path=issuer_path, documents=list(documents), issuer_override=issuer, token_endpoint_override=token_endpoint
        )

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """Revoke every token of ``client_id`` (every token with ``None``): a later exchange or API call is refused."""
        return int(self._control("revoke/", {"client_id": client_id})["revoked"])

    def reset_ledger(self) -> None:
        """Forget the history (requests, metadata fetches, calls); registrations and tokens stay."""
        self._control("reset-ledger/", {})

    def reset(self) -> None:
        """Back to a fresh server: no clients, issuers, tokens or ``jti`` seen; default switches; empty ledger."""
        self._control("reset/", {})
        self.clients.clear()
        self.issuers.clear()
        self._issuer_path = ""

    # -- ledger ---------------------------------------------------------------------------------

    def ledger(self) -> dict[str, Any]:
        """Everything recorded: ``token_requests``, ``metadata_fetches``, ``calls``."""
        return dict(self._control("ledger/"))

    def token_requests(
        self, client_id: str | None = None, grant_type: str | None = None, result: str | None = None
    ) -> list[dict[str, Any]]:
        """Token requests in arrival order; ``grant_type`` short names (``"jwt_bearer"``) work; ``result`` ``"issued"``/``"refused"``."""
        wanted = _grant(grant_type) if grant_type else None
        return [
            e
            for e in self.ledger()["token_requests"]
            if (client_id is None or e["client_id"] == client_id)
            and (wanted is None or e["grant_type"] == wanted)
            and (result is None or e["result"] == result)
        ]

    def issued(self, client_id: str | None = None, grant_type: str | None = None) -> list[dict[str, Any]]:
        return self.token_requests(client_id, grant_type, "issued")

    def refused(self, client_id: str | None = None, grant_type: str | None = None) -> list[dict[str, Any]]:
        return self.token_requests(client_id, grant_type, "refused")

    def metadata_fetches(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every ``/.well-known/`` request (path, kind ``"oauth"``/``"openid"``/``None``, status)."""
        return [e for e in self.ledger()["metadata_fetches"] if kind is None or e["kind"] == kind]

    def metadata_fetch_count(self, kind: str | None = None) -> int:
        return len(self.metadata_fetches(kind))

    def calls(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Calls to the protected API (status, token fingerprint, client_id)."""
        return [e for e in self.ledger()["calls"] if client_id is None or e["client_id"] == client_id]

    def tokens(self) -> list[dict[str, Any]]:
        """Tokens the server issued (fingerprint, client_id, grant_type, resource, audience, subject, exchanged_from, active)."""
        return list(self._control("tokens/")["tokens"])
