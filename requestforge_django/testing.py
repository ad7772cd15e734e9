"""Helpers for the tests of projects that use requestforge_django (and for our own tests).

Three things a test of code that calls ``get_client(...)`` needs:

* :class:`StubTokenEndpoint` -- a real OAuth2 client-credentials token endpoint plus a
  protected API on ``127.0.0.1``, with counters. It is a real server (standard library
  only, one thread per connection) rather than a mock of ``requests`` because the
  point of the library is what happens *between* processes and threads: the counters
  are the authoritative number of token fetches whoever made them.
* :func:`requestforge_settings_for` -- a ``REQUESTFORGE`` setting with one client
  pointing at a stub, to assign to ``settings.REQUESTFORGE``.
* :func:`reset_requestforge` -- forget every client, pipeline and token this process
  built and delete the token-cache entries, so one test's tokens never leak into the
  next (the registry is per process and the token cache outlives a test).

pytest users get the same as fixtures from :mod:`requestforge_django.pytest_plugin`.

This module imports nothing from Django at import time (only inside
:func:`reset_requestforge` / :func:`clear_token_cache`), so the stub also serves tests
that never configure Django.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

__all__ = [
    "CLEARED_ALIAS",
    "CLEARED_PREFIX",
    "ProtectedCall",
    "StubTokenEndpoint",
    "clear_token_cache",
    "requestforge_settings_for",
    "reset_requestforge",
]

logger = logging.getLogger("requestforge_django.testing")

#: :func:`clear_token_cache` deleted only the keys under ``KEY_PREFIX``.
CLEARED_PREFIX = "prefix"
#: :func:`clear_token_cache` could not list keys on this backend and cleared the whole cache alias.
CLEARED_ALIAS = "alias"

#: ``KEY_PREFIX`` used by :func:`requestforge_settings_for` unless overridden: tests never
#: touch keys a development server on the same cache may be using.
TEST_KEY_PREFIX = "requestforge-test"


# -- the stub server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtectedCall:
    """One request to the stub's protected API: what was asked and whether the token was accepted."""

    method: str
    path: str
    authorized: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a keep-alive connection left open by a client never blocks shutdown
    request_queue_size = 128  # many threads connecting at once must not be reset (a reset costs a 1 s SYN retry)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing its keep-alive connection mid-read is normal, not worth a traceback on stderr.
        logger.debug("stub token endpoint: connection from %s ended with an error", client_address, exc_info=True)


class StubTokenEndpoint:
    """An OAuth2 client-credentials token endpoint and a protected API, on ``127.0.0.1``.

    ``POST /oauth/token`` (:attr:`token_url`)
        Form body ``grant_type=client_credentials`` with ``client_id``/``client_secret``
        in the body or as HTTP Basic. Answers ``{"access_token", "token_type": "Bearer",
        "expires_in"[, "scope"]}``, or ``401 invalid_client`` / ``400
        unsupported_grant_type``, or what :meth:`fail_with` asked for.
    any other path (under :attr:`url`)
        The protected API: ``200 {"ok": true, "method", "path"}`` for a bearer token
        this stub issued that has not expired or been revoked, ``401 invalid_token``
        otherwise.

    Counters: :attr:`fetches` (requests to the token endpoint, failed or not),
    :attr:`tokens_issued`, :attr:`api_calls`, :attr:`unauthorized` and :attr:`calls`.
    Use as a context manager, or :meth:`start` / :meth:`stop`::

        with StubTokenEndpoint(expires_in=60) as stub:
            settings.REQUESTFORGE = requestforge_settings_for(stub)
            get_client("stub").get("/orders/1")
            assert stub.fetches == 1
    """

    TOKEN_PATH = "/oauth/token"

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",
        expires_in: float | None = 3600,
        scope: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        #: Lifetime of the next tokens issued (``None``: no ``expires_in`` is sent and tokens never expire).
        self.expires_in = expires_in
        self.scope = scope
        self._lock = threading.Lock()
        self._valid: dict[str, float] = {}  # token -> monotonic expiry
        self._failure: dict[str, Any] | None = None
        self._fetches = 0
        self._issued = 0
        self._calls: list[ProtectedCall] = []
        self._httpd = _Server((host, port), self._handler_class())
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    # -- addresses ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the stub (``http://127.0.0.1:PORT``); the protected API is every path under it."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The token endpoint, for ``AUTH["TOKEN_URL"]``."""
        return self.url + self.TOKEN_PATH

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
        """Stop serving and close the listening socket (idempotent)."""
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
        """Requests received by the token endpoint, successful or not."""
        with self._lock:
            return self._fetches

    @property
    def tokens_issued(self) -> int:
        """Tokens the endpoint handed out."""
        with self._lock:
            return self._issued

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

    def reset_counters(self) -> None:
        """Zero every counter (issued tokens stay valid)."""
        with self._lock:
            self._fetches = self._issued = 0
            self._calls = []

    # -- knobs --------------------------------------------------------------------------------------

    def fail_with(self, status: int = 500, *, times: int | None = None, body: Any = None) -> None:
        """Answer the next ``times`` token requests (every one when ``None``, until :meth:`recover`) with ``status``.

        ``body`` is sent as JSON, or as text when it is a ``str``; by default an OAuth2
        error object (``server_error`` for 5xx, ``invalid_request`` otherwise).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        default = {"error": "server_error" if status >= 500 else "invalid_request", "error_description": "failure injected by the test"}
        with self._lock:
            self._failure = {"status": int(status), "times": times, "body": default if body is None else body}

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

    def _issue(self) -> dict[str, Any]:
        token = "stub-" + secrets.token_urlsafe(24)
        with self._lock:
            expires_in = self.expires_in
            self._valid[token] = time.monotonic() + expires_in if expires_in is not None else float("inf")
            self._issued += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if self.scope:
            body["scope"] = self.scope
        return body

    def _take_failure(self) -> dict[str, Any] | None:
        with self._lock:
            failure = self._failure
            if failure is not None and failure["times"] is not None:
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

    def _token(self, method: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._fetches += 1
        failure = self._take_failure()
        if failure is not None:
            return failure["status"], failure["body"], {}
        if method != "POST":
            return 405, {"error": "invalid_request", "error_description": "use POST"}, {"Allow": "POST"}
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, {}
        if not self._client_ok(form, headers.get("authorization", "")):
            return 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'}
        return 200, self._issue(), {}

    def _protected(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and self.is_valid(token.strip())
        with self._lock:
            self._calls.append(ProtectedCall(method, path, ok))
        if ok:
            return 200, {"ok": True, "method": method, "path": path}, {}
        return 401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}

    def _route(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        if path == self.TOKEN_PATH:
            return self._token(method, body, headers)
        return self._protected(method, path, headers)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the partner APIs the client will talk to
            disable_nagle_algorithm = True  # headers and body are two writes; Nagle would delay the body ~40 ms
            timeout = 30  # an idle keep-alive connection does not hold a thread forever

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
        return f"StubTokenEndpoint(url={self.url!r}, expires_in={self.expires_in}, {state})"


# -- settings ---------------------------------------------------------------------------------------


def requestforge_settings_for(
    stub: StubTokenEndpoint, *, name: str = "stub", client: Mapping[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """A ``REQUESTFORGE`` setting with one client ``name`` calling ``stub`` with client-credentials tokens.

    ``client`` adds or replaces keys of that client (an ``AUTH`` mapping is merged into
    the generated one). ``overrides`` are top-level keys (``CACHE``, ``REFRESH_AHEAD``,
    ...); ``CLIENTS`` and ``PIPELINES`` given there are added next to the stub client.
    ``KEY_PREFIX`` is ``"requestforge-test"`` unless overridden.
    """
    auth: dict[str, Any] = {
        "TYPE": "client_credentials",
        "TOKEN_URL": stub.token_url,
        "CLIENT_ID": stub.client_id,
        "CLIENT_SECRET": stub.client_secret,
    }
    if stub.scope:
        auth["SCOPE"] = stub.scope
    entry: dict[str, Any] = {"BASE_URL": stub.url, "TIMEOUT": 5.0, "AUTH": auth}
    for key, value in (client or {}).items():
        if key == "AUTH" and isinstance(value, Mapping):
            entry["AUTH"] = {**auth, **value}
        else:
            entry[key] = value
    setting: dict[str, Any] = {"KEY_PREFIX": TEST_KEY_PREFIX, "CLIENTS": {name: entry}}
    for key, value in overrides.items():
        if key in ("CLIENTS", "PIPELINES") and isinstance(value, Mapping):
            setting[key] = {**setting.get(key, {}), **value}
        else:
            setting[key] = value
    return setting


# -- resetting --------------------------------------------------------------------------------------


def reset_requestforge(*, clear_cache: bool = True) -> str | None:
    """Forget what this process built and delete the token-cache entries of the current settings.

    Reloads the ``REQUESTFORGE`` settings object (which resets the registry and every
    other per-process state registered with ``requestforge_settings.on_reload``), so the
    next ``get_client`` builds fresh objects with no locally remembered token. Then,
    with ``clear_cache``, calls :func:`clear_token_cache` for the configured ``CACHE``
    and ``KEY_PREFIX`` and returns what it did (:data:`CLEARED_PREFIX` or
    :data:`CLEARED_ALIAS`); ``None`` without ``clear_cache``.
    """
    from .conf import requestforge_settings
    from .registry import registry

    requestforge_settings.reload()
    registry.reset()  # reload() already does this; explicit in case a test unhooked the callback
    if not clear_cache:
        return None
    return clear_token_cache()


def clear_token_cache(cache_alias: str | None = None, key_prefix: str | None = None) -> str:
    """Delete the entries requestforge keeps under ``key_prefix`` in ``cache_alias`` (default: the settings').

    That is every token, lease, status record, the definitions generation and the
    shared breaker and rate-limit state. Only keys starting with ``"<key_prefix>:"``
    are deleted where the backend can list its keys -- django-redis
    (``delete_pattern``), Django's ``RedisCache``, ``LocMemCache`` and
    ``DatabaseCache`` -- and :data:`CLEARED_PREFIX` is returned. Other backends
    (memcached, file-based, custom) cannot list keys: the **whole alias is cleared**
    with ``cache.clear()`` and :data:`CLEARED_ALIAS` is returned, so give tests a cache
    alias of their own there.
    """
    from django.core.cache import caches

    from .conf import requestforge_settings

    alias = cache_alias if cache_alias is not None else str(requestforge_settings.CACHE)
    prefix = key_prefix if key_prefix is not None else str(requestforge_settings.KEY_PREFIX)
    cache = caches[alias]
    start = f"{prefix}:"
    for clear_prefix in (_clear_django_redis, _clear_django_redis_builtin, _clear_locmem, _clear_database):
        if clear_prefix(cache, start):
            return CLEARED_PREFIX
    logger.info("Cache alias %r (%s) cannot list its keys; clearing the whole alias", alias, type(cache).__name__)
    cache.clear()
    return CLEARED_ALIAS


def _glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis ``MATCH``/``KEYS`` glob pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _clear_django_redis(cache: BaseCache, start: str) -> bool:
    delete_pattern = getattr(cache, "delete_pattern", None)
    if not callable(delete_pattern):
        return False
    delete_pattern(_glob_escape(start) + "*")  # django-redis adds the cache's own prefix and version
    return True


def _clear_django_redis_builtin(cache: BaseCache, start: str) -> bool:
    """Django's own ``RedisCache``: every write goes to the first server, so scan that one."""
    try:
        from django.core.cache.backends.redis import RedisCache
    except ImportError:  # pragma: no cover - Django < 4.0
        return False
    if not isinstance(cache, RedisCache):
        return False
    raw_start = cache.make_and_validate_key(start)
    client = cache._cache.get_client(raw_start, write=True)
    batch: list[Any] = []
    for key in client.scan_iter(match=_glob_escape(raw_start) + "*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)
    return True


def _clear_locmem(cache: BaseCache, start: str) -> bool:
    """``LocMemCache`` keeps its keys in a private ordered dict; use it if it looks as expected."""
    from django.core.cache.backends.locmem import LocMemCache

    if not isinstance(cache, LocMemCache):
        return False
    store, expiry, lock = getattr(cache, "_cache", None), getattr(cache, "_expire_info", None), getattr(cache, "_lock", None)
    if not isinstance(store, dict) or not isinstance(expiry, dict) or lock is None:
        return False  # a future Django changed the internals: fall back to clearing the alias
    raw_start = cache.make_key(start)
    with lock:
        for key in [k for k in store if isinstance(k, str) and k.startswith(raw_start)]:
            store.pop(key, None)
            expiry.pop(key, None)
    return True


def _clear_database(cache: BaseCache, start: str) -> bool:
    """``DatabaseCache``: select the keys and filter them here (portable: no ``LIKE`` escaping rules)."""
    from django.core.cache.backends.db import BaseDatabaseCache
    from django.db import connections, router

    if not isinstance(cache, BaseDatabaseCache):
        return False
    raw_start = cache.make_key(start)
    db = router.db_for_write(cache.cache_model_class)
    connection = connections[db]
    table = connection.ops.quote_name(cache._table)  # type: ignore[attr-defined]  # set by BaseDatabaseCache.__init__
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key FROM {table}")
        keys = [row[0] for row in cursor.fetchall() if str(row[0]).startswith(raw_start)]
        for offset in range(0, len(keys), 500):
            chunk = keys[offset : offset + 500]
            cursor.execute(f"DELETE FROM {table} WHERE cache_key IN ({', '.join(['%s'] * len(chunk))})", chunk)
    return True
