"""What the Authlib server saw, kept in its memory for the test process to read over HTTP.

Authlib decides every answer; the ledger only records, so a test can assert on what
the library *sent* (grant, client-authentication method, assertion claims, ``jti``,
``resource``/``audience``, subject token) and on what the server *answered*
(issued or refused, with the error code), plus every metadata fetch and every call to
the protected API.

Nothing secret is kept: tokens, secrets and assertions appear as :func:`fingerprint`
values (:mod:`tests.support.child_server`'s, which compare with what worker processes
report), public keys as RFC 7638 thumbprints; private keys never reach the server at
all. Times are ``time.time()``: the clock every process on the host shares.
"""

from __future__ import annotations

from typing import Any

from tests.support.child_server import RecordLists, fingerprint

__all__ = ["Ledger", "fingerprint"]


class Ledger(RecordLists):
    """Thread-safe lists of token requests, metadata fetches and protected-API calls."""

    def __init__(self) -> None:
        super().__init__("token_requests", "metadata_fetches", "calls")

    def record_token_request(self, entry: dict[str, Any]) -> None:
        self.record("token_requests", entry)

    def record_metadata_fetch(self, entry: dict[str, Any]) -> None:
        self.record("metadata_fetches", entry)

    def record_call(self, entry: dict[str, Any]) -> None:
        self.record("calls", entry)
