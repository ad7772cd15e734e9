"""Fixtures starting Authlib's authorization server as a real HTTP server (see ``tests/support/authlib_server``).

``authlib_server``
    A fresh server for one test (its own process and port, so its issuer URL is new
    and no per-process discovery cache of the test process has seen it): no clients
    yet; register them with ``authlib_server.register_client(...)`` /
    ``register_issuer(...)``; read what happened with ``token_requests()``,
    ``metadata_fetches()``, ``calls()``.
``authlib_server_factory``
    ``start(**options)`` -> another started :class:`~tests.support.authlib_server.AuthlibServer`
    (two partners in one test); every server it started is stopped when the test ends.

:func:`authlib_client_setting` writes the ``REQUESTFORGE["CLIENTS"]`` entry of a client
registered on the server, in the keys of ``shared/DESIGN.md`` ("Standards for machine
credentials").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.authlib_server import AuthlibServer, AuthlibServerError, ServerClient

__all__ = ["authlib_server", "authlib_server_factory", "authlib_client_setting"]


def _start(**options: Any) -> AuthlibServer:
    try:
        return AuthlibServer(**options).start()
    except AuthlibServerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def authlib_server() -> Iterator[AuthlibServer]:
    """Authlib's authorization server on 127.0.0.1 in its own process, for one test."""
    server = _start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def authlib_server_factory() -> Iterator[Callable[..., AuthlibServer]]:
    """Starts more servers; stops them all at teardown."""
    started: list[AuthlibServer] = []

    def start(**options: Any) -> AuthlibServer:
        server = _start(**options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def authlib_client_setting(server: AuthlibServer, client: ServerClient, *, discover: bool = False, **auth: Any) -> dict[str, Any]:
    """A ``CLIENTS`` entry calling the server's protected API with a token for ``client`` (``client_credentials``).

    The method is the client's first registered one; ``discover`` names the issuer
    (``ISSUER``) instead of the ``TOKEN_URL``; ``auth`` adds or overrides ``AUTH`` keys
    (``TYPE``, ``ASSERTION``, ``SUBJECT_TOKEN_FROM``, ``RESOURCE``, ...).
    """
    setting: dict[str, Any] = {"TYPE": "client_credentials", "CLIENT_ID": client.client_id, "CLIENT_AUTH_METHOD": client.method}
    setting.update({"ISSUER": server.issuer} if discover else {"TOKEN_URL": server.token_url})
    if client.method == "private_key_jwt":
        setting.update(PRIVATE_KEY=client.key.private_pem, KEY_ID=client.key.kid)
    else:
        setting["CLIENT_SECRET"] = client.secret
    setting.update(auth)
    return {"BASE_URL": server.url, "TIMEOUT": 10, "AUTH": setting}
