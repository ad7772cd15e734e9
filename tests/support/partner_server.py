"""A programmable HTTP/1.1 server on 127.0.0.1 standing in for a partner API.

Used where real sockets matter (threads, timeouts, proxies, redirects, processes).
Routes are ``(method, path) -> handler(received) -> Reply``; every request is
recorded so tests can assert what actually went over the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    thread: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            return self.body, headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode(), headers


Handler = Callable[[Received], Reply]


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops handshakes when 100 threads connect at once.
    request_queue_size = 256


class PartnerServer:
    """``with PartnerServer() as server: server.route("GET", "/x", handler)``; ``server.url``."""

    def __init__(self, *, quiet: bool = False) -> None:
        """``quiet``: do not print handler errors (a client that stops reading breaks the server's write on purpose)."""
        self.routes: dict[tuple[str, str], Handler] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(self.command, self.path, dict(self.headers.items()), body, threading.current_thread().name)
                with server._lock:
                    server.received.append(received)
                path = self.path.split("?", 1)[0]
                handler = server.routes.get((self.command, path)) or server.routes.get(("*", path)) or server.routes.get(("*", "*"))
                reply = handler(received) if handler else Reply(404, {"error": "no route"})
                payload, headers = reply.encoded()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        if quiet:
            self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # shutdown() waits for the serve loop to notice; the default half-second poll made
        # every server's teardown cost up to 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def route(self, method: str, path: str, handler: Handler | Reply) -> PartnerServer:
        self.routes[(method, path)] = handler if callable(handler) else (lambda _received, reply=handler: reply)
        return self

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.split("?", 1)[0] == path]

    def __enter__(self) -> PartnerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
