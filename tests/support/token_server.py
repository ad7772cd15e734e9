"""A real OAuth2 token endpoint plus a protected API, for process-level tests and benchmarks.

Why a real server: the point of the cache-backed token storage is that many *processes*
share one token. Those processes call this server over HTTP, so its counters are the
authoritative number of token fetches whatever happens inside the workers.

Endpoints (all on ``127.0.0.1``, port chosen by the OS):

``POST /oauth/token``
    OAuth2 client credentials (form body ``client_id``/``client_secret`` or HTTP Basic);
    answers ``{"access_token", "token_type", "expires_in"[, "scope"]}`` after
    ``delay`` seconds; ``fail_with()`` makes it answer errors.
``POST /device/register`` and ``POST /app/token``
    A two-step flow for pipelines: the first answers a device token in the
    ``X-Device-Token`` header (and the body), the second wants that header and answers
    an ``access_token`` in the body. Both honour ``delay`` and ``fail_with()``.
``GET|POST /api/protected``
    200 for a currently valid bearer token (issued by either flow, not expired, not
    revoked), 401 otherwise.
``GET /_stats`` and ``POST /_config``
    Counters as JSON, and the knobs (``delay``, ``expires_in``, failure mode, revoke),
    so a server running in another process (:class:`TokenServerProcess`) is driven
    exactly like an in-thread :class:`TokenServer`.

Issued tokens are random; only their first characters ever appear in output.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "TOKEN_PATH",
    "DEVICE_PATH",
    "APP_TOKEN_PATH",
    "PROTECTED_PATH",
    "TokenServer",
    "TokenServerProcess",
    "TokenServerStats",
]

TOKEN_PATH = "/oauth/token"
DEVICE_PATH = "/device/register"
APP_TOKEN_PATH = "/app/token"
PROTECTED_PATH = "/api/protected"

#: Counter names that count token *issuing* requests (what "a fetch" means).
FETCH_PATHS = (TOKEN_PATH, DEVICE_PATH, APP_TOKEN_PATH)


@dataclass(frozen=True)
class TokenServerStats:
    """A snapshot of the server's counters (requests per path, tokens issued, protected answers)."""

    requests: dict[str, int]
    issued: dict[str, int]
    protected_ok: int
    protected_unauthorized: int
    max_concurrent_fetches: int
    #: Wall-clock (``time.time()``) arrival and answer instants of each token-issuing request.
    fetch_times: list[tuple[float, float]] = field(default_factory=list)

    @property
    def token_requests(self) -> int:
        """Requests to ``/oauth/token`` (successful or not)."""
        return self.requests.get(TOKEN_PATH, 0)

    @property
    def fetches(self) -> int:
        """Requests to any token-issuing endpoint."""
        return sum(self.requests.get(path, 0) for path in FETCH_PATHS)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenServerStats:
        return cls(
            requests=dict(data["requests"]),
            issued=dict(data["issued"]),
            protected_ok=int(data["protected_ok"]),
            protected_unauthorized=int(data["protected_unauthorized"]),
            max_concurrent_fetches=int(data["max_concurrent_fetches"]),
            fetch_times=[(float(a), float(b)) for a, b in data.get("fetch_times", [])],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "issued": self.issued,
            "protected_ok": self.protected_ok,
            "protected_unauthorized": self.protected_unauthorized,
            "max_concurrent_fetches": self.max_concurrent_fetches,
            "fetch_times": self.fetch_times,
        }


class _HTTPServer(ThreadingHTTPServer):
    # The default backlog of 5 resets handshakes when dozens of clients connect at once,
    # and a reset costs the client a one-second SYN retry: that would show up as latency.
    request_queue_size = 256
    daemon_threads = True


class TokenServer:
    """The endpoints above served from a thread of this process.

    ``with TokenServer(expires_in=4, delay=0.2) as server: ... server.stats().fetches``.
    Knobs may be changed while it runs (attribute assignment or :meth:`configure`).
    """

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",
        expires_in: float | None = 3600,
        delay: float = 0.0,
        scope: str | None = None,
        device_id: str = "device-123",
        app_client_id: str = "app-id",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.delay = delay
        self.scope = scope
        self.device_id = device_id
        self.app_client_id = app_client_id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._valid: dict[str, float] = {}  # token -> monotonic expiry (inf: no expiry)
        self._requests: Counter[str] = Counter()
        self._issued: Counter[str] = Counter()
        self._protected_ok = 0
        self._protected_unauthorized = 0
        self._fetching = 0
        self._max_fetching = 0
        self._fetch_times: list[tuple[float, float]] = []
        self._failure: dict[str, Any] | None = None
        self._httpd = _HTTPServer((host, port), self._handler_class())
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default, per test).
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=f"token-server-{self.port}", daemon=True)

    # -- urls -------------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def protected_url(self) -> str:
        return self.url + PROTECTED_PATH

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes every delayed handler at once
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- knobs ------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change ``delay``, ``expires_in``, ``scope``, ``client_id`` or ``client_secret`` while running."""
        allowed = {"delay", "expires_in", "scope", "client_id", "client_secret"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def fail_with(self, status: int = 500, *, times: int | None = None, body: Any = None, path: str | None = None) -> None:
        """Answer the next ``times`` token requests (all when ``None``) with ``status`` and ``body``.

        ``path`` limits the failure to one token endpoint. A ``str`` body is sent as is
        (e.g. not JSON); the default is an OAuth2 error object.
        """
        default = {"error": "server_error" if status >= 500 else "invalid_request", "error_description": "failure injected by the test"}
        with self._lock:
            self._failure = {"status": status, "times": times, "body": default if body is None else body, "path": path}

    def recover(self) -> None:
        """Stop injecting failures."""
        with self._lock:
            self._failure = None

    def revoke_all(self) -> None:
        """Make every issued token invalid (the protected endpoint answers 401 for them)."""
        with self._lock:
            self._valid.clear()

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self._issued.clear()
            self._protected_ok = self._protected_unauthorized = 0
            self._max_fetching = 0
            self._fetch_times = []

    def stats(self) -> TokenServerStats:
        with self._lock:
            return TokenServerStats(
                requests=dict(self._requests),
                issued=dict(self._issued),
                protected_ok=self._protected_ok,
                protected_unauthorized=self._protected_unauthorized,
                max_concurrent_fetches=self._max_fetching,
                fetch_times=list(self._fetch_times),
            )

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._valid.get(token)
        return expiry is not None and time.monotonic() < expiry

    # -- request handling ---------------------------------------------------------------

    def _issue(self, path: str) -> tuple[str, float]:
        token = f"{secrets.token_urlsafe(24)}"
        with self._lock:
            expires_in = self.expires_in
            self._valid[token] = time.monotonic() + expires_in if expires_in is not None else float("inf")
            self._issued[path] += 1
        return token, expires_in

    def _take_failure(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            failure = self._failure
            if failure is None or (failure["path"] is not None and failure["path"] != path):
                return None
            if failure["times"] is not None:
                failure["times"] -= 1
                if failure["times"] <= 0:
                    self._failure = None
            return failure

    def _delay(self) -> None:
        with self._lock:
            delay = self.delay
        if delay > 0:
            # An Event, not sleep: stop() wakes every pending handler immediately.
            self._stop.wait(delay)

    def _client_ok(self, form: dict[str, str], authorization: str | None) -> bool:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode()
            except ValueError:
                return False
            user, _, password = decoded.partition(":")
            client_id, client_secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
        return client_id == self.client_id and client_secret == self.client_secret

    def _handle_fetch(self, path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        arrived = time.time()
        with self._lock:
            self._fetching += 1
            self._max_fetching = max(self._max_fetching, self._fetching)
        try:
            self._delay()
            failure = self._take_failure(path)
            if failure is not None:
                return failure["status"], failure["body"], {}
            if path == TOKEN_PATH:
                if form.get("grant_type") != "client_credentials":
                    return 400, {"error": "unsupported_grant_type"}, {}
                if not self._client_ok(form, headers.get("authorization")):
                    return 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'}
                token, expires_in = self._issue(path)
                body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
                if expires_in is not None:
                    body["expires_in"] = expires_in
                if self.scope:
                    body["scope"] = self.scope
                return 200, body, {}
            if path == DEVICE_PATH:
                if headers.get("x-device-id") != self.device_id:
                    return 400, {"error": "invalid_request", "error_description": "X-Device-ID missing or unknown"}, {}
                token, expires_in = self._issue(path)
                return 200, {"device_token": token, "expires_in": expires_in}, {"X-Device-Token": token}
            # APP_TOKEN_PATH
            if not self.is_valid(headers.get("x-device-token", "")):
                return 401, {"error": "invalid_grant", "error_description": "device token missing or invalid"}, {}
            if form.get("client_id") != self.app_client_id:
                return 401, {"error": "invalid_client"}, {}
            token, expires_in = self._issue(path)
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}, {}
        finally:
            with self._lock:
                self._fetching -= 1
                self._fetch_times.append((arrived, time.time()))

    def _handle_protected(self, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        ok = scheme.lower() == "bearer" and self.is_valid(token.strip())
        with self._lock:
            if ok:
                self._protected_ok += 1
            else:
                self._protected_unauthorized += 1
        if ok:
            return 200, {"ok": True}, {}
        return 401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}

    def _handle_config(self, data: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        action = data.pop("action", "configure")
        if action == "configure":
            self.configure(**data)
        elif action == "fail_with":
            self.fail_with(int(data.get("status", 500)), times=data.get("times"), body=data.get("body"), path=data.get("path"))
        elif action == "recover":
            self.recover()
        elif action == "revoke_all":
            self.revoke_all()
        elif action == "reset_stats":
            self.reset_stats()
        else:
            return 400, {"error": f"unknown action {action!r}"}, {}
        return 200, {"ok": True}, {}

    def _route(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._requests[path] += 1
        if path in FETCH_PATHS and method == "POST":
            content_type = headers.get("content-type", "")
            if "json" in content_type:
                form = {str(k): str(v) for k, v in (json.loads(body or b"{}") or {}).items()}
            else:
                form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            return self._handle_fetch(path, form, headers)
        if path == PROTECTED_PATH and method in {"GET", "POST"}:
            return self._handle_protected(headers)
        if path == "/_stats" and method == "GET":
            return 200, self.stats().to_json(), {}
        if path == "/_config" and method == "POST":
            return self._handle_config(json.loads(body or b"{}"))
        return 404, {"error": "not_found"}, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections like in production
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms) and every call would look 40 ms slow.
            disable_nagle_algorithm = True
            timeout = 60  # an idle keep-alive connection does not pin a thread forever

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet; and request lines could carry secrets

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.split("?", 1)[0]
                status, payload, extra = server._route(self.command, path, body, headers)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Cache-Control", "no-store")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler

    def __repr__(self) -> str:
        return f"TokenServer(url={self.url!r}, expires_in={self.expires_in}, delay={self.delay})"


class TokenServerProcess:
    """The same server in a child process, when the GIL of the measuring process matters.

    Benchmarks that time calls from many threads run the server here so its work does
    not compete with theirs for one interpreter lock. Knobs and counters go over
    ``/_config`` and ``/_stats``.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.url = ""
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stop: Any = None

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def protected_url(self) -> str:
        return self.url + PROTECTED_PATH

    def start(self, timeout: float = 30.0) -> TokenServerProcess:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._process = ctx.Process(target=_serve_in_child, args=(self.options, child, self._stop), name="token-server", daemon=True)
        self._process.start()
        if not parent.poll(timeout):
            self.stop()
            raise RuntimeError(f"token server process did not start within {timeout} s")
        self.url = parent.recv()
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._stop.set()
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=10)
            self._process = None

    def __enter__(self) -> TokenServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _post_config(self, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(self.url + "/_config", data=json.dumps(payload).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def configure(self, **changes: Any) -> None:
        self._post_config({"action": "configure", **changes})

    def fail_with(self, status: int = 500, *, times: int | None = None, body: Any = None, path: str | None = None) -> None:
        self._post_config({"action": "fail_with", "status": status, "times": times, "body": body, "path": path})

    def recover(self) -> None:
        self._post_config({"action": "recover"})

    def revoke_all(self) -> None:
        self._post_config({"action": "revoke_all"})

    def reset_stats(self) -> None:
        self._post_config({"action": "reset_stats"})

    def stats(self) -> TokenServerStats:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as response:
            return TokenServerStats.from_json(json.loads(response.read()))


def _serve_in_child(options: dict[str, Any], conn: Any, stop: Any) -> None:
    with TokenServer(**options) as server:
        conn.send(server.url)
        conn.close()
        stop.wait()


@contextlib.contextmanager
def running_token_server(**options: Any) -> Iterator[TokenServer]:
    """``with running_token_server(delay=0.2) as server:`` -- a started :class:`TokenServer`."""
    server = TokenServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run standalone (e.g. for the example project): ``python -m tests.support.token_server --port 8099``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expires-in", type=float, default=3600)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--client-id", default="test-client")
    parser.add_argument("--client-secret", default="test-secret")
    args = parser.parse_args(argv)
    server = TokenServer(
        host=args.host,
        port=args.port,
        expires_in=args.expires_in,
        delay=args.delay,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )
    with server:
        print(f"token server on {server.url} (token endpoint {server.token_url}, protected {server.protected_url})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
