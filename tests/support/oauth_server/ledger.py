"""What the test authorization server saw, kept in its memory for the test to read back.

DOT's tables say which tokens exist *now*; a test needs history: every request to
the token endpoint (grant, client-auth style, outcome), every access token issued
with the secret version that obtained it, and every call to a protected resource
with the token it carried. Revoked or rotated tokens vanish from DOT's tables, so
only this ledger can answer "did any call use a token obtained with the old secret?".

Tokens and secrets never leave the server: only :func:`fingerprint` values do
(:mod:`tests.support.child_server`'s, which compare with what worker processes
report). Times are ``time.time()``: the one clock every
process on the host shares.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from tests.support.child_server import RecordLists, fingerprint

__all__ = ["Ledger", "SecretVersion", "fingerprint", "ledger"]


@dataclass(frozen=True)
class SecretVersion:
    """One secret an application has had: ``version`` 1 is the one it was created with."""

    version: int
    digest: str  # sha256 of the plain secret; the plain value is not kept
    since: float
    accepted: bool  # still accepted by the token endpoint (the current one, or an old one kept for overlap)


def _public(version: SecretVersion) -> dict[str, Any]:
    return {"version": version.version, "since": version.since, "accepted": version.accepted}


class Ledger(RecordLists):
    """Thread-safe record of secrets, token requests, issued tokens and protected calls."""

    def __init__(self) -> None:
        super().__init__("token_requests", "issued", "calls")
        self._secrets: dict[str, list[SecretVersion]] = {}
        self._issued_by_token: dict[str, dict[str, Any]] = {}

    # -- secrets -------------------------------------------------------------------------

    def add_secret(self, client_id: str, secret: str, *, keep_old: bool = False) -> SecretVersion:
        """Record ``secret`` as the current secret of ``client_id``; older ones stay accepted only with ``keep_old``."""
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self._lock:
            versions = self._secrets.setdefault(client_id, [])
            if not keep_old:
                versions[:] = [SecretVersion(v.version, v.digest, v.since, False) for v in versions]
            current = SecretVersion(len(versions) + 1, digest, time.time(), True)
            versions.append(current)
            return current

    def secret_version(self, client_id: str, secret: str) -> SecretVersion | None:
        """Which version of ``client_id``'s secrets ``secret`` is (``None``: never one of them)."""
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self._lock:
            for version in self._secrets.get(client_id, []):
                if version.digest == digest:
                    return version
        return None

    def secrets(self, client_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [_public(v) for v in self._secrets.get(client_id, [])]

    # -- token endpoint ------------------------------------------------------------------

    def record_token_request(self, entry: dict[str, Any]) -> None:
        self.record("token_requests", entry)

    def record_issued(self, access_token: str, entry: dict[str, Any]) -> None:
        key = fingerprint(access_token)
        entry = {"token": key, **entry}
        with self._lock:
            self.record("issued", entry)
            self._issued_by_token[key] = entry

    def issue_record(self, access_token: str) -> dict[str, Any] | None:
        with self._lock:
            return self._issued_by_token.get(fingerprint(access_token))

    # -- protected resources -------------------------------------------------------------

    def record_call(self, entry: dict[str, Any]) -> None:
        self.record("calls", entry)

    # -- reading -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**super().snapshot(), "secrets": {cid: [_public(v) for v in vs] for cid, vs in self._secrets.items()}}

    def clear_history(self) -> None:
        """Forget requests, issued tokens and calls (secrets and their versions stay)."""
        with self._lock:
            self.clear()
            self._issued_by_token.clear()


#: The server process's one ledger.
ledger = Ledger()
