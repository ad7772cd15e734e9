""":class:`StubTokenEndpoint`: a real OAuth2 token endpoint and a protected API on ``127.0.0.1``, with counters.

A real server (standard library only, one thread per connection) rather than a mock
of ``requests``, because the point of the library is what happens *between* processes
and threads: the counters are the authoritative number of token fetches, whoever
made them. Issued tokens are random (``stub-`` and 32 characters); only their first
characters ever appear in output.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "APP_TOKEN_PATH",
    "DEVICE_PATH",
    "FETCH_PATHS",
    "PROTECTED_PATH",
    "TOKEN_PATH",
    "ProtectedCall",
    "StubStats",
    "StubTokenEndpoint",
]

logger = logging.getLogger("requestforge_django.testing")

#: OAuth2 client credentials.
TOKEN_PATH = "/oauth/token"
#: The first step of a two-step flow (for pipelines): answers a device token.
DEVICE_PATH = "/device/register"
#: The second step: wants the device token, answers an access token.
APP_TOKEN_PATH = "/app/token"
#: A path of the protected API (every path that is not a token endpoint is one).
PROTECTED_PATH = "/api/protected"
#: The token-issuing endpoints: a request to any of them is "a fetch".
FETCH_PATHS = (TOKEN_PATH, DEVICE_PATH, APP_TOKEN_PATH)

_Answer = tuple[int, Any, dict[str, str]]


@dataclass(frozen=True)
class ProtectedCall:
    """One request to the stub's protected API: what was asked and whether the token was accepted."""

    method: str
    path: str
    authorized: bool


@dataclass(frozen=True)
class StubStats:
    """A snapshot of the stub's counters (:meth:`StubTokenEndpoint.stats`)."""

    #: Requests per path, answered or failed.
    requests: dict[str, int]
    #: Tokens issued per token endpoint.
    issued: dict[str, int]
    protected_ok: int
    protected_unauthorized: int
    #: The most token requests being answered at the same time.
    max_concurrent_fetches: int
    #: Wall-clock (``time.time()``) arrival and answer instants of each token request.
    fetch_times: list[tuple[float, float]] = field(default_factory=list)

    @property
    def token_requests(self) -> int:
        """Requests to the client-credentials endpoint (``TOKEN_PATH``)."""
        return self.requests.get(TOKEN_PATH, 0)

    @property
    def fetches(self) -> int:
        """Requests to any token-issuing endpoint."""
        return sum(self.requests.get(path, 0) for path in FETCH_PATHS)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a keep-alive connection left open by a client never blocks shutdown
    # The default backlog of 5 resets handshakes when dozens of clients connect at once,
    # and a reset costs the client a one-second SYN retry: that would show up as latency.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing its keep-alive connection mid-read is normal, not worth a traceback on stderr.
        logger.debug("stub token endpoint: connection from %s ended with an error", client_address, exc_info=True)


class StubTokenEndpoint:
    """An OAuth2 token endpoint and a protected API, on ``127.0.0.1``.

    ``POST /oauth/token`` (:attr:`token_url`)
        ``grant_type=client_credentials`` with ``client_id``/``client_secret`` in the
        body (form or JSON) or as HTTP Basic. Answers ``{"access_token", "token_type":
        "Bearer", "expires_in"[, "scope"]}``, or ``401 invalid_client`` / ``400
        unsupported_grant_type``, or what :meth:`fail_with` asked for.
    ``POST /device/register`` and ``POST /app/token``
        A two-step flow for pipelines: the first wants ``X-Device-ID: <device_id>`` and
        answers a device token in the ``X-Device-Token`` header (and the body), the
        second wants that header and ``client_id=<app_client_id>`` and answers an
        ``access_token`` in the body.
    any other path (under :attr:`url`; :attr:`protected_url` is one)
        The protected API: ``200 {"ok": true, "method", "path"}`` for a bearer token
        this stub issued that has not expired or been revoked, ``401 invalid_token``
        otherwise.

    Token requests wait ``delay`` seconds first (:meth:`stop` cuts the wait short).
    Counters: :attr:`fetches` (requests to the token endpoints, failed or not),
    :attr:`tokens_issued`, :attr:`api_calls`, :attr:`unauthorized`, :attr:`calls`, and
    :meth:`stats` for a snapshot of all of them. Use as a context manager, or
    :meth:`start` / :meth:`stop`::

        with StubTokenEndpoint(expires_in=60) as stub:
            settings.REQUESTFORGE = requestforge_settings_for(stub)
            get_client("stub").get("/orders/1")
            assert stub.fetches == 1
    """

    TOKEN_PATH = TOKEN_PATH
    #: What :meth:`configure` may change while the stub runs.
    KNOBS = frozenset({"delay", "expires_in", "scope", "client_id", "client_secret"})

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",
        expires_in: float | None = 3600,
        scope: str | None = None,
        delay: float = 0.0,
        device_id: str = "device-123",
        app_client_id: str = "app-id",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        #: Lifetime of the next tokens issued (``None``: no ``expires_in`` is sent and tokens never expire).
        self.expires_in = expires_in
        self.scope = scope
        #: Seconds every token request waits before it is answered.
        self.delay = delay
        self.device_id = device_id
        self.app_client_id = app_client_id
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._valid: dict[str, float] = {}  # token -> monotonic expiry (inf: no expiry)
        self._failure: dict[str, Any] | None = None
        self._requests: Counter[str] = Counter()
        self._issued: Counter[str] = Counter()
        self._calls: list[ProtectedCall] = []
        self._fetching = 0
        self._max_fetching = 0
        self._fetch_times: list[tuple[float, float]] = []
        self._httpd = _Server((host, port), self._handler_class())
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    # -- addresses ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the stub (``http://127.0.0.1:PORT``); the protected API is every other path under it."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint, for ``AUTH["TOKEN_URL"]``."""
        return self.url + TOKEN_PATH

    @property
    def protected_url(self) -> str:
        """A URL of the protected API."""
        return self.url + PROTECTED_PATH

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> StubTokenEndpoint:
        """Serve from a daemon thread (idempotent)."""
        if self._thread is None:
            # A short poll interval so that stop() returns quickly (it waits up to one interval).
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name=f"stub-token-endpoint-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent); token requests still waiting out ``delay`` are answered now."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._httpd.shutdown()
            thread.join(timeout=10)
        self._httpd.server_close()

    def __enter__(self) -> StubTokenEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- counters -----------------------------------------------------------------------------------

    @property
    def fetches(self) -> int:
        """Requests received by the token endpoints, successful or not."""
        with self._lock:
            return sum(self._requests[path] for path in FETCH_PATHS)

    @property
    def tokens_issued(self) -> int:
        """Tokens the endpoints handed out."""
        with self._lock:
            return sum(self._issued.values())

    @property
    def calls(self) -> list[ProtectedCall]:
        """Every request to the protected API, in arrival order."""
        with self._lock:
            return list(self._calls)

    @property
    def api_calls(self) -> int:
        """Protected-API requests answered 200."""
        with self._lock:
            return sum(1 for call in self._calls if call.authorized)

    @property
    def unauthorized(self) -> int:
        """Protected-API requests answered 401 (no, unknown, expired or revoked token)."""
        with self._lock:
            return sum(1 for call in self._calls if not call.authorized)

    def stats(self) -> StubStats:
        """A snapshot of every counter."""
        with self._lock:
            ok = sum(1 for call in self._calls if call.authorized)
            return StubStats(
                requests=dict(self._requests),
                issued=dict(self._issued),
                protected_ok=ok,
                protected_unauthorized=len(self._calls) - ok,
                max_concurrent_fetches=self._max_fetching,
                fetch_times=list(self._fetch_times),
            )

    def reset_counters(self) -> None:
        """Zero every counter (issued tokens stay valid)."""
        with self._lock:
            self._requests.clear()
            self._issued.clear()
            self._calls = []
            self._max_fetching = 0
            self._fetch_times = []

    # -- knobs --------------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change ``delay``, ``expires_in``, ``scope``, ``client_id`` or ``client_secret`` while running."""
        unknown = set(changes) - self.KNOBS
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def fail_with(self, status: int = 500, *, times: int | None = None, body: Any = None, path: str | None = None) -> None:
        """Answer the next ``times`` token requests (every one when ``None``, until :meth:`recover`) with ``status``.

        ``body`` is sent as JSON, or as text when it is a ``str``; by default an OAuth2
        error object (``server_error`` for 5xx, ``invalid_request`` otherwise). ``path``
        limits the failure to one token endpoint (e.g. ``TOKEN_PATH``).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        default = {"error": "server_error" if status >= 500 else "invalid_request", "error_description": "failure injected by the test"}
        with self._lock:
            self._failure = {"status": int(status), "times": times, "body": default if body is None else body, "path": path}

    def recover(self) -> None:
        """Stop failing token requests."""
        with self._lock:
            self._failure = None

    def revoke_all(self) -> None:
        """Invalidate every token issued so far: the protected API answers 401 for them."""
        with self._lock:
            self._valid.clear()

    def is_valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and is neither expired nor revoked."""
        with self._lock:
            expiry = self._valid.get(token)
        return expiry is not None and time.monotonic() < expiry

    # -- request handling ---------------------------------------------------------------------------

    def _issue(self, path: str) -> tuple[str, float | None]:
        token = "stub-" + secrets.token_urlsafe(24)
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

    def _client_ok(self, form: Mapping[str, str], authorization: str) -> bool:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization.split(" ", 1)[1], validate=True).decode()
            except ValueError:
                return False
            user, _, password = decoded.partition(":")
            client_id, client_secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
        # Constant-time comparison: a stub is no excuse to teach timing leaks.
        return secrets.compare_digest(client_id or "", self.client_id) and secrets.compare_digest(client_secret or "", self.client_secret)

    def _fetch(self, path: str, method: str, body: bytes, headers: Mapping[str, str]) -> _Answer:
        arrived = time.time()
        with self._lock:
            self._fetching += 1
            self._max_fetching = max(self._max_fetching, self._fetching)
            delay = self.delay
        try:
            if delay > 0:
                self._stopping.wait(delay)  # an Event, not sleep: stop() answers every waiting request at once
            failure = self._take_failure(path)
            if failure is not None:
                return failure["status"], failure["body"], {}
            if method != "POST":
                return 405, {"error": "invalid_request", "error_description": "use POST"}, {"Allow": "POST"}
            if "json" in headers.get("content-type", ""):
                form = {str(k): str(v) for k, v in (json.loads(body or b"{}") or {}).items()}
            else:
                form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            return self._answer_fetch(path, form, headers)
        finally:
            with self._lock:
                self._fetching -= 1
                self._fetch_times.append((arrived, time.time()))

    def _answer_fetch(self, path: str, form: Mapping[str, str], headers: Mapping[str, str]) -> _Answer:
        if path == DEVICE_PATH:
            if headers.get("x-device-id") != self.device_id:
                return 400, {"error": "invalid_request", "error_description": "X-Device-ID missing or unknown"}, {}
            token, expires_in = self._issue(path)
            return 200, {"device_token": token, "expires_in": expires_in}, {"X-Device-Token": token}
        if path == APP_TOKEN_PATH:
            if not self.is_valid(headers.get("x-device-token", "")):
                return 401, {"error": "invalid_grant", "error_description": "device token missing or invalid"}, {}
            if form.get("client_id") != self.app_client_id:
                return 401, {"error": "invalid_client"}, {}
            token, expires_in = self._issue(path)
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}, {}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, {}
        if not self._client_ok(form, headers.get("authorization", "")):
            return 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'}
        token, expires_in = self._issue(path)
        answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if expires_in is not None:
            answer["expires_in"] = expires_in
        if self.scope:
            answer["scope"] = self.scope
        return 200, answer, {}

    def _protected(self, method: str, path: str, headers: Mapping[str, str]) -> _Answer:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and self.is_valid(token.strip())
        with self._lock:
            self._calls.append(ProtectedCall(method, path, ok))
        if ok:
            return 200, {"ok": True, "method": method, "path": path}, {}
        return 401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}

    def _route(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> _Answer:
        with self._lock:
            self._requests[path] += 1
        if path in FETCH_PATHS:
            return self._fetch(path, method, body, headers)
        return self._protected(method, path, headers)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the partner APIs the client will talk to
            disable_nagle_algorithm = True  # headers and body are two writes; Nagle would delay the body ~40 ms
            timeout = 60  # an idle keep-alive connection does not hold a thread forever

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: request lines could carry secrets, and test output stays readable

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {key.lower(): value for key, value in self.headers.items()}
                path = urllib.parse.urlsplit(self.path).path
                status, payload, extra = stub._route(self.command, path, body, headers)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(payload, str) else "application/json")
                self.send_header("Cache-Control", "no-store")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        return Handler

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"StubTokenEndpoint(url={self.url!r}, expires_in={self.expires_in}, delay={self.delay}, {state})"
