"""Fixtures starting django-oauth-toolkit as a real authorization server (see ``tests/support/oauth_server``).

``oauth_server``
    A server with the default applications (``cc-client`` / ``cc-secret-1``,
    client credentials; ``pw-client`` / ``pw-secret-1``, password grant for user
    ``alice`` / ``alice-password``) and hour-long access tokens, for one test.
``oauth_server_factory``
    ``start(apps=..., users=..., access_token_lifetime=...)`` -> a started
    :class:`~tests.support.oauth_server.OAuthServer`; every server it started is
    stopped when the test ends.

:func:`oauth_client_setting` writes the ``REQUESTFORGE["CLIENTS"]`` entry of a
client authenticated by one of the server's applications.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.oauth_server import OAuthServer

__all__ = ["oauth_server", "oauth_server_factory", "oauth_client_setting"]


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    """django-oauth-toolkit on 127.0.0.1 in its own process (default applications, 3600 s tokens)."""
    with OAuthServer() as server:
        yield server


@pytest.fixture
def oauth_server_factory() -> Iterator[Callable[..., OAuthServer]]:
    """Starts servers with custom applications, users or token lifetime; stops them all at teardown."""
    started: list[OAuthServer] = []

    def start(**options: Any) -> OAuthServer:
        server = OAuthServer(**options)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def oauth_client_setting(server: OAuthServer, client_id: str, *, username: str | None = None, **auth: Any) -> dict[str, Any]:
    """A client on ``server`` authenticated by application ``client_id`` (password grant when ``username`` is given).

    ``auth`` adds or overrides ``AUTH`` keys (e.g. a future client-authentication-method key).
    """
    app = server.apps[client_id]
    setting: dict[str, Any] = {"TYPE": "client_credentials", "TOKEN_URL": server.token_url}
    setting.update(CLIENT_ID=app.client_id, CLIENT_SECRET=app.secret)
    if username is not None:
        setting.update(TYPE="password", USERNAME=username, PASSWORD=server.users[username].password)
    setting.update(auth)
    return {"BASE_URL": server.url, "TIMEOUT": 10, "AUTH": setting}
