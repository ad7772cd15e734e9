"""The test side of the django-oauth-toolkit server: start it in its own process, drive it, stop it.

:class:`OAuthServer` runs ``python -m tests.support.oauth_server`` (DOT under its own
Django settings and SQLite file, in a temporary directory), waits for the line with
its port (an event on the pipe, bounded by ``startup_timeout``: no sleeps), and talks
to its ``/_control/`` endpoints over HTTP. Stopping closes the child's stdin (it
exits on EOF), then escalates to SIGTERM and SIGKILL; the child also exits by
itself if this process dies. Starting, stopping and the control requests are
:class:`tests.support.child_server.ChildServer`'s; only the standard library is used
here, so importing this module does not touch the test process's Django.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tests.support.child_server import ChildServer

from .ledger import fingerprint

__all__ = [
    "OAuthApp",
    "OAuthUser",
    "OAuthServer",
    "OAuthServerError",
    "DEFAULT_APPS",
    "DEFAULT_USERS",
    "TOKEN_PATH",
    "REVOKE_PATH",
    "INTROSPECT_PATH",
    "BEARER_401_PATH",
    "DOT_DEFAULT_PATH",
    "BEARER_403_PATH",
    "fingerprint",
]

TOKEN_PATH = "/o/token/"
REVOKE_PATH = "/o/revoke_token/"
INTROSPECT_PATH = "/o/introspect/"
#: 401 + ``WWW-Authenticate: Bearer error="invalid_token",...`` (DOT's RFC 9728 opt-in view).
BEARER_401_PATH = "/api/bearer-401/"
#: DOT's default ``ProtectedResourceView``: a bare 403, no ``WWW-Authenticate``.
DOT_DEFAULT_PATH = "/api/dot-default/"
#: 403 + the same ``WWW-Authenticate: Bearer error="invalid_token",...`` challenge.
BEARER_403_PATH = "/api/bearer-403/"


class OAuthServerError(RuntimeError):
    """The server did not start, or a control request failed."""


@dataclass(frozen=True)
class OAuthApp:
    """A confidential DOT application; ``grant`` is ``"client_credentials"`` or ``"password"``."""

    client_id: str
    secret: str
    grant: str = "client_credentials"
    name: str | None = None


@dataclass(frozen=True)
class OAuthUser:
    """A resource owner for the password grant."""

    username: str
    password: str


DEFAULT_APPS = (
    OAuthApp("cc-client", "cc-secret-1", "client_credentials"),
    OAuthApp("pw-client", "pw-secret-1", "password"),
)
DEFAULT_USERS = (OAuthUser("alice", "alice-password"),)


class OAuthServer(ChildServer):
    """django-oauth-toolkit on ``127.0.0.1:<port>`` in a child process; ``with OAuthServer() as server:``."""

    module = "tests.support.oauth_server"
    label = "the OAuth server"
    error = OAuthServerError
    tmp_prefix = "requestforge-dot-"
    token_path = TOKEN_PATH

    def __init__(
        self,
        *,
        apps: tuple[OAuthApp, ...] | list[OAuthApp] = DEFAULT_APPS,
        users: tuple[OAuthUser, ...] | list[OAuthUser] = DEFAULT_USERS,
        access_token_lifetime: int = 3600,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(host=host, startup_timeout=startup_timeout)
        self.apps: dict[str, OAuthApp] = {app.client_id: app for app in apps}
        self.users: dict[str, OAuthUser] = {user.username: user for user in users}
        self.access_token_lifetime = int(access_token_lifetime)

    # -- urls ----------------------------------------------------------------------------------

    @property
    def revoke_url(self) -> str:
        return self.url + REVOKE_PATH

    @property
    def introspect_url(self) -> str:
        return self.url + INTROSPECT_PATH

    # -- lifecycle -----------------------------------------------------------------------------

    def _child_env(self, directory: Path) -> dict[str, str]:
        """DOT's own settings and SQLite file; the applications and users as JSON (no secret in the process list)."""
        setup = {"applications": [asdict(app) for app in self.apps.values()], "users": [asdict(u) for u in self.users.values()]}
        return {
            "DJANGO_SETTINGS_MODULE": "tests.support.oauth_server.settings",
            "OAUTH_SERVER_DB": str(directory / "oauth.sqlite3"),
            "OAUTH_SERVER_SECRET_KEY": secrets.token_urlsafe(50),
            "OAUTH_SERVER_ACCESS_TOKEN_LIFETIME": str(self.access_token_lifetime),
            "OAUTH_SERVER_SETUP": json.dumps(setup),
        }

    def __repr__(self) -> str:
        return f"OAuthServer(url={self.url if self.port else None!r}, lifetime={self.access_token_lifetime})"

    # -- control --------------------------------------------------------------------------------

    def ledger(self) -> dict[str, Any]:
        """Everything recorded: ``token_requests``, ``issued``, ``calls`` and ``secrets`` (see ``ledger.py``)."""
        return self._control("ledger/")

    def token_requests(self, client_id: str | None = None, grant_type: str | None = None) -> list[dict[str, Any]]:
        """Requests to ``/o/token/`` (arrived, answered, grant_type, client_id, auth_method, status, error, token, refresh_token_used)."""
        entries = self.ledger()["token_requests"]
        entries = [e for e in entries if client_id is None or e["client_id"] == client_id]
        return [e for e in entries if grant_type is None or e["grant_type"] == grant_type]

    def issued(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Access tokens issued (token, client_id, user, grant_type, auth_method, secret_version, issued_at, expires_in, refresh_token)."""
        return [e for e in self.ledger()["issued"] if client_id is None or e["client_id"] == client_id]

    def calls(self, endpoint: str | None = None, client_id: str | None = None) -> list[dict[str, Any]]:
        """Protected-resource calls (at, endpoint, status, token, client_id, secret_version); unknown tokens have client_id None."""
        return [
            e
            for e in self.ledger()["calls"]
            if (endpoint is None or e["endpoint"] == endpoint) and (client_id is None or e["client_id"] == client_id)
        ]

    def counts(self, client_id: str) -> dict[str, int]:
        """Rows in DOT's tables for the application: access_tokens, refresh_tokens, refresh_tokens_active; and issued (ledger)."""
        return self._control(f"counts/{client_id}/")

    def change_secret(self, client_id: str, secret: str, *, keep_old: bool = False, revoke_tokens: bool = False) -> dict[str, Any]:
        """New secret for ``client_id`` (DOT-hashed); ``keep_old``: still accept the previous ones; answers version, changed_at, revoked."""
        answer = self._control("secret/", {"client_id": client_id, "secret": secret, "keep_old": keep_old, "revoke_tokens": revoke_tokens})
        self.apps[client_id] = replace(self.apps[client_id], secret=secret)
        return answer

    def revoke_all(self, client_id: str) -> dict[str, Any]:
        """Revoke every token of the application the way DOT does (answers revoked count and the instant)."""
        return self._control("revoke/", {"client_id": client_id})

    def reset(self) -> None:
        """Delete every token and forget the history; applications, users and secrets stay."""
        self._control("reset/", {})
