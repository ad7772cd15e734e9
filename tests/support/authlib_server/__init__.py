"""A real authorization server the project did not write: Authlib's server components over HTTP.

The test process imports :mod:`.harness` (standard library only) to start
``python -m tests.support.authlib_server`` (:mod:`.__main__`), a separate process
serving :mod:`.app` on 127.0.0.1: Authlib's ``AuthorizationServer`` with its
client-credentials grant, RFC 7523 client assertions and JWT-bearer grant, RFC 8414 /
OpenID metadata models, and an RFC 8693 token-exchange grant built on Authlib's grant
base classes (:mod:`.authority`). :mod:`.registry` holds the clients, tokens and switches;
:mod:`.ledger` only records what happened, without secrets, for the tests to read back.
:mod:`.keys` makes test keys and hand-built assertions.
"""

from __future__ import annotations

from .harness import GRANTS, AuthlibServer, AuthlibServerError, ServerClient, ServerIssuer
from .keys import SigningKey, assertion_claims, client_assertion_form, generate_ec_key, generate_rsa_key, sign_assertion
from .ledger import fingerprint

__all__ = [
    "GRANTS",
    "AuthlibServer",
    "AuthlibServerError",
    "ServerClient",
    "ServerIssuer",
    "SigningKey",
    "assertion_claims",
    "client_assertion_form",
    "fingerprint",
    "generate_ec_key",
    "generate_rsa_key",
    "sign_assertion",
]
