"""Launcher: ``python -m tests.support.authlib_server [--host H] [--port P]``, run by :class:`.harness.AuthlibServer`.

Binds a threaded WSGI server (port 0: the OS picks) serving :class:`.app.ServerApp`,
starts serving, then prints one line ``{"port": N, "pid": P}`` on stdout: the event the
harness waits for (the socket is already listening). Everything after goes to stderr
(the harness's log file).

It stops when stdin reaches EOF (the harness closed it, or the test process died: no
orphan outlives its parent) or on SIGTERM.
"""

from __future__ import annotations

import socketserver
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.support.child_server import child_arguments, serve_until_stdin_closes

from .app import ServerApp
from .ledger import Ledger
from .registry import State


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Dozens of callers in several processes connect at once; the default backlog (5) would reset some.
    request_queue_size = 256


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise here
        pass


def main() -> None:
    args = child_arguments(__doc__)
    state = State()
    app = ServerApp(state, Ledger())
    server = make_server(args.host, args.port, app, server_class=Server, handler_class=QuietHandler)
    state.origin = f"http://{args.host}:{server.server_address[1]}"
    serve_until_stdin_closes(server)


if __name__ == "__main__":
    main()
