"""Launcher: ``python -m tests.support.oauth_server [--host H] [--port P]``, run by :class:`.harness.OAuthServer`.

Starts django-oauth-toolkit as a real HTTP server in this process, under its own
settings (:mod:`.settings`): creates the tables in a fresh SQLite file, the users and
applications described by ``OAUTH_SERVER_SETUP`` (JSON in the environment, so no
secret shows in the process list), binds a threaded WSGI server (port 0: the OS
picks), then prints one line ``{"port": N, "pid": P}`` on stdout: the event the
harness waits for. Everything after goes to stderr (the harness's log file).

It stops when stdin reaches EOF (the harness closed it, or the test process died:
no orphan survives its parent) or on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from tests.support.child_server import child_arguments, serve_until_stdin_closes

SETTINGS_MODULE = "tests.support.oauth_server.settings"

#: Setup names of grants -> DOT's ``Application.authorization_grant_type`` values.
GRANTS = {"client_credentials": "client-credentials", "password": "password"}


def setup_database(setup: dict[str, Any]) -> None:
    """Create the tables (``migrate --run-syncdb``), then users and applications with known plain secrets (DOT hashes them on save)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from oauth2_provider.models import get_application_model

    from .ledger import ledger

    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    users = {}
    for user in setup.get("users", []):
        users[user["username"]] = get_user_model().objects.create_user(user["username"], password=user["password"])
    application = get_application_model()
    for app in setup.get("applications", []):
        application.objects.create(
            name=app.get("name") or app["client_id"],
            client_id=app["client_id"],
            client_secret=app["secret"],
            hash_client_secret=True,
            client_type=application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=GRANTS[app["grant"]],
            user=users.get(app.get("user") or ""),
        )
        ledger.add_secret(app["client_id"], app["secret"])


def build_server(host: str, port: int) -> Any:
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Server(ThreadedWSGIServer):
        # Dozens of callers connect at once; the default backlog (10) would reset some.
        request_queue_size = 256

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise here
            pass

    server = Server((host, port), QuietHandler)
    server.set_app(get_wsgi_application())
    return server


def main() -> None:
    args = child_arguments(__doc__)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE  # never the test suite's settings
    logging.getLogger("django.request").setLevel(logging.ERROR)  # 401/403 are the point, not news
    import django

    django.setup()
    setup_database(json.loads(os.environ.get("OAUTH_SERVER_SETUP", "{}")))
    serve_until_stdin_closes(build_server(args.host, args.port))


if __name__ == "__main__":
    main()
