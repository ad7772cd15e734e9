"""Sending one :class:`HttpRequest` on an event loop, through ``aiohttp`` (the ``async`` extra).

The async twin of :class:`~.transport.Transport`, built from the same frozen
:class:`HttpClientConfig` and sharing its decisions instead of repeating them:

* the wire request (base-URL joining, default headers, encoded body, header checks) is the
  sync transport's prepared request, so both paths send the same bytes;
* the trust boundary is the same: a client with credentials sends only to its credential
  origins, redirects are followed here hop by hop (``aiohttp`` is told not to) with the
  rules of :mod:`.redirects`, and a hop out of the client's trust loses every credential;
* timeouts (connect/read per hop, ``total_timeout`` for the whole send), TLS (``verify_ssl``,
  a CA bundle, ``client_cert``), explicit proxies, pool sizes and ``max_response_bytes``
  come from the same settings;
* ``aiohttp`` failures become the library's typed exceptions with masked URLs.

``aiohttp`` sessions belong to one event loop, so the transport keeps one per loop, created
on first use; a session whose loop was closed is discarded and the next loop gets a fresh one.
``aiohttp`` is imported only when a session is first needed: the package imports without it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy

from .config import HttpClientConfig
from .exceptions import (
    ConfigurationError,
    ConnectionException,
    HttpClientException,
    SSLException,
    TimeoutException,
)
from .messages import HttpRequest, HttpResponse
from .redirects import BODY_KEEPING_REDIRECTS, PURGED_WHEN_BODY_DROPPED, redirect_method, resolve_location, sensitive_params, with_params
from .transport import _BAD_HEADER_CHARS, Transport

if TYPE_CHECKING:
    import aiohttp
    from requests.models import PreparedRequest

    from .secrets import Origin

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_BODY_METHODS = frozenset({"GET", "HEAD"})
_CHUNK = 64 * 1024
INSTALL_HINT = 'the async client needs aiohttp: pip install "requestforge-django[async]"'


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigurationError(INSTALL_HINT, field="async") from None
    return aiohttp


def _multidict() -> Any:
    _aiohttp()  # the extra's message when aiohttp (and so multidict) is missing
    import multidict

    return multidict


class AsyncTransport:
    """Turns an :class:`HttpRequest` into an :class:`HttpResponse` on the running event loop."""

    def __init__(self, config: HttpClientConfig, transport: Transport) -> None:
        self._config = config
        self._sync = transport
        self._lock = threading.Lock()
        #: id(loop) -> (weak reference to the loop, its session)
        self._sessions: dict[int, tuple[weakref.ReferenceType[asyncio.AbstractEventLoop], aiohttp.ClientSession]] = {}
        self._ssl: ssl.SSLContext | bool | None = None
        self._timeouts: dict[Any, Any] = {}
        self._encodings: dict[str | None, str | None] = {}
        self._urls: dict[str, Any] = {}
        self._proxies: dict[Origin | None, str | None] = {}
        self._limited = config.max_response_bytes is not None
        self._base_headers: Any = None  # a multidict, made with the SSL context (after aiohttp is imported)

    # -- sessions ----------------------------------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        """The running loop's session (created on first use; a dead loop's session is dropped)."""
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(id(loop))
        if entry is not None and entry[0]() is loop and not entry[1].closed:
            return entry[1]
        return self._new_session(loop)

    async def asession(self) -> aiohttp.ClientSession:
        """:meth:`session`, with the one-off blocking set-up (importing ``aiohttp``, about 150 ms, and
        loading the CA bundle into an ``SSLContext``, about 30 ms) done in a worker thread the first
        time, so the first call does not stall the event loop."""
        if self._ssl is None:
            await asyncio.to_thread(self._ssl_context)
        return self.session()

    def _new_session(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        lib = _aiohttp()
        config = self._config
        limit = max(config.pool_maxsize, 1)
        connector = lib.TCPConnector(
            limit=limit * max(config.pool_connections, 1), limit_per_host=limit, ssl=self._ssl_context(), enable_cleanup_closed=False
        )
        session: aiohttp.ClientSession = lib.ClientSession(
            connector=connector,
            cookie_jar=lib.DummyCookieJar(),  # stateless, as the sync path's jar that accepts no cookies
            trust_env=False,  # the environment's proxies are read once per origin by _proxy_for, not per request
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        with self._lock:
            self._discard_dead()
            self._sessions[id(loop)] = (weakref.ref(loop), session)
        return session

    def _discard_dead(self) -> None:
        """Forget sessions whose loop is gone or closed (they cannot be closed from another loop)."""
        for key, (ref, session) in list(self._sessions.items()):
            loop = ref()
            if loop is None or loop.is_closed() or session.closed:
                del self._sessions[key]
                _detach(session)

    def __del__(self) -> None:
        for _ref, session in self._sessions.values():
            if not session.closed:
                loop = _ref()
                if loop is None or loop.is_closed():
                    _detach(session)

    async def aclose(self) -> None:
        """Close the running loop's session and forget those of closed loops."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._sessions.pop(id(loop), None)
            self._discard_dead()
        if entry is not None and entry[0]() is loop:
            await entry[1].close()

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if self._ssl is None:
            _aiohttp()  # imported here too, so asession() does both off the loop
            self._base_headers = _multidict().CIMultiDict(self._sync._base_headers)
            self._ssl = build_ssl_context(self._config)
        return self._ssl

    # -- sending ----------------------------------------------------------------------------
    def _wire(self, request: HttpRequest) -> tuple[str, str, Any, bytes | None, Origin | None]:
        """Method, URL, headers, body and origin of the first hop.

        A request without a body (the common GET) skips ``requests``' ``PreparedRequest``: the
        same URL preparation (the sync transport's cache) and the same headers, merged into an
        ``aiohttp`` multidict directly. Anything else is the sync transport's prepared request.
        """
        sync = self._sync
        method = request.method.value
        if request.json_data is None and request.data is None:
            url, origin = sync._prepared_url(sync.absolute_url(request.url), request.params)
            headers = self._base_headers.copy()
            if request.headers:
                for name, value in request.headers.items():
                    if _BAD_HEADER_CHARS.search(value) or _BAD_HEADER_CHARS.search(name):
                        sync._prepare(request)  # raises the sync path's error, which never shows the value
                    headers[name] = value
            if method not in _NO_BODY_METHODS:
                headers["Content-Length"] = "0"
            return method, url, headers, None, origin
        prepared, origin = sync._prepare(request)
        body = prepared.body
        return method, prepared.url or "", prepared.headers, body if not isinstance(body, str) else body.encode(), origin

    async def send(self, request: HttpRequest, started_at: float) -> HttpResponse:
        """Send ``request`` once (following redirects if configured) and read the whole body."""
        sync = self._sync
        session = self.session() if self._ssl is not None else await self.asession()
        method, url, headers, body, origin = self._wire(request)
        if (sync._has_credentials or request.sensitive) and origin not in sync._credential_origins:
            raise sync._untrusted(origin, method)
        timeout = request.timeout if request.timeout is not None else self._config.default_timeout
        total = self._config.total_timeout
        first = (method, url, headers, body)
        try:
            if total is None:
                return await self._send(session, request, first, origin, timeout, started_at)
            try:
                return await asyncio.wait_for(self._send(session, request, first, origin, timeout, started_at), total)
            except (asyncio.TimeoutError, TimeoutError) as exc:
                raise TimeoutException(
                    f"Total timeout of {total:g} s exceeded", method=request.method.value, url=sync._shown_url(url, request)
                ) from exc
        except HttpClientException:
            raise
        except (asyncio.TimeoutError, TimeoutError, OSError, ValueError, ssl.SSLError, _aiohttp().ClientError) as exc:
            raise self._failure(exc, request, url) from exc

    async def _send(
        self,
        session: Any,
        request: HttpRequest,
        first: tuple[str, str, Any, bytes | None],
        origin: Origin | None,
        timeout: Any,
        started_at: float,
    ) -> HttpResponse:
        config = self._config
        sync = self._sync
        hop: PreparedRequest | None = None  # a redirect's hop, as the sync path builds it
        method, url, headers, body = first
        history = 0
        stripped = False
        home = sync._credential_origins | {origin} if origin is not None else sync._credential_origins
        carried = sensitive_params(url, request.sensitive)
        hop_origin = origin
        while True:
            async with session.request(
                method,
                self._yarl(url),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._client_timeout(timeout),
                proxy=self._proxy_for(url, hop_origin),
            ) as raw:
                status = raw.status
                if not (config.allow_redirects and status in _REDIRECTS and "Location" in raw.headers):
                    content = await self._read_body(raw, request, url)
                    headers = _headers(raw.headers)
                    return HttpResponse(
                        status_code=status,
                        headers=MappingProxyType(headers),
                        content=content,
                        url=url,
                        elapsed_ms=(time.perf_counter() - started_at) * 1000.0,
                        request=request,
                        encoding=self._encoding(headers.get("Content-Type")),
                        reason=raw.reason or "",
                    )
                location = raw.headers["Location"]
                await raw.read()  # back to the pool
            if history >= config.max_redirects:
                raise HttpClientException(
                    f"Too many redirects (more than {config.max_redirects})", method=method, url=sync._shown_url(url, request)
                )
            history += 1
            nxt = (hop or sync._prepare(request)[0]).copy()
            nxt.url, hop_origin = sync._prepared_url(resolve_location(url, location), None)
            nxt.method = redirect_method(status, method)
            if status not in BODY_KEEPING_REDIRECTS:
                for name in PURGED_WHEN_BODY_DROPPED:
                    nxt.headers.pop(name, None)
                nxt.body = None
            if hop_origin not in home and not stripped:
                sync._check_cross_origin_hop(request, nxt, hop_origin, status)
                stripped = True
            if stripped:
                sync._strip_credentials(nxt, request)
            elif carried:
                nxt.url = with_params(nxt.url or "", carried)
            hop = nxt
            method, url, headers = nxt.method or "GET", nxt.url or "", nxt.headers
            body = nxt.body.encode() if isinstance(nxt.body, str) else nxt.body

    async def _read_body(self, raw: Any, request: HttpRequest, url: str) -> bytes:
        if not self._limited:
            return bytes(await raw.read())
        limit = self._config.max_response_bytes or 0
        declared = raw.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raw.close()
            raise self._sync._too_large(limit, request, url)
        chunks: list[bytes] = []
        size = 0
        async for chunk in raw.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raw.close()
                raise self._sync._too_large(limit, request, url)
            chunks.append(chunk)
        return b"".join(chunks)

    def _encoding(self, content_type: str | None) -> str | None:
        """``requests``' encoding for a ``Content-Type`` (cached: a partner sends the same few)."""
        try:
            return self._encodings[content_type]
        except KeyError:
            encoding = get_encoding_from_headers({"content-type": content_type} if content_type else {})
            if len(self._encodings) < 64:
                self._encodings[content_type] = encoding
            return encoding

    def _client_timeout(self, timeout: Any) -> Any:
        """``aiohttp.ClientTimeout`` of a connect/read timeout (cached: the same few values recur)."""
        cached = self._timeouts.get(timeout)
        if cached is None:
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            cached = _aiohttp().ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 64:
                self._timeouts[timeout] = cached
        return cached

    def _yarl(self, url: str) -> Any:
        """``url`` (already normalized and quoted like the sync path's) as a ``yarl.URL``, cached per string."""
        cached = self._urls.get(url)
        if cached is None:
            from yarl import URL

            cached = URL(url, encoded=True)
            if len(self._urls) >= 1024:
                self._urls.clear()
            self._urls[url] = cached
        return cached

    def _proxy_for(self, url: str, origin: Origin | None) -> str | None:
        """The proxy for ``url``: explicit ones from the config, else the environment's; cached per origin."""
        try:
            return self._proxies[origin]
        except KeyError:
            pass
        proxies = self._sync.proxies_for(url)
        proxy = select_proxy(url, proxies) if proxies else None
        if origin is not None and len(self._proxies) < 256:
            self._proxies[origin] = proxy
        return proxy

    def _failure(self, exc: BaseException, request: HttpRequest, url: str) -> HttpClientException:
        """An ``aiohttp``/socket failure as one of the library's typed exceptions."""
        aiohttp = _aiohttp()
        method = request.method.value
        shown = self._sync._shown_url(url, request)
        detail = type(exc).__name__
        if isinstance(exc, (aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError)):
            kind = "Connect timeout" if isinstance(exc, aiohttp.ConnectionTimeoutError) else "Read timeout"
            return TimeoutException(f"{kind} ({detail})", method=method, url=shown, original=exc)
        if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
            return SSLException(f"TLS error ({detail})", method=method, url=shown, original=exc)
        if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError)):
            return ConnectionException(f"Connection failed ({detail})", method=method, url=shown, original=exc)
        if isinstance(exc, ValueError):
            return HttpClientException(f"The request cannot be encoded for HTTP ({detail})", method=method, url=shown, original=exc)
        return HttpClientException(f"Request failed ({detail})", method=method, url=shown, original=exc)


def build_ssl_context(config: HttpClientConfig) -> ssl.SSLContext | bool:
    """The TLS settings of ``config`` (``verify_ssl``, CA bundle, ``client_cert``) as an ``SSLContext``."""
    verify = Transport._resolve_verify(config)
    if verify is False and config.client_cert is None:
        return False
    if isinstance(verify, str):
        if not os.path.exists(verify):
            raise ConfigurationError(f"the CA bundle {verify!r} does not exist", field="verify_ssl")
        context = ssl.create_default_context(capath=verify) if os.path.isdir(verify) else ssl.create_default_context(cafile=verify)
    else:
        try:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())  # the bundle requests uses
        except ImportError:  # pragma: no cover
            context = ssl.create_default_context()
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    cert = config.client_cert
    if cert is not None:
        certfile, keyfile = cert if isinstance(cert, tuple) else (cert, None)
        for path in (certfile, keyfile):
            if path and not os.path.exists(path):
                raise ConfigurationError(f"the client certificate file {path!r} does not exist", field="client_cert")
        try:
            context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"the client certificate cannot be loaded ({type(exc).__name__})", field="client_cert") from None
    return context


def _headers(raw: Any) -> Mapping[str, str]:
    """Response headers, case-insensitive; repeated ones joined with ", " (as ``requests`` shows them)."""
    if len(raw) == len(set(map(str.lower, raw))):  # the common case: aiohttp's read-only case-insensitive view as is
        return cast("Mapping[str, str]", raw)
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for name, value in raw.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _detach(session: Any) -> None:
    """Drop a session whose loop is gone, awaiting nothing: its pooled sockets are closed directly.

    (``aiohttp`` can only close a session on its own loop; after ``asyncio.run`` returned, that
    loop is closed, and the session would otherwise warn about being unclosed when collected.)
    """
    connector = session.connector
    try:
        session.detach()
        if connector is None:
            return
        for pooled in list(getattr(connector, "_conns", {}).values()):
            for protocol, _ in pooled:
                sock = getattr(protocol.transport, "_sock", None)
                if sock is not None:
                    sock.close()
        connector._close()
    except Exception:  # best effort: nothing to release on a loop that is gone
        pass


__all__ = ["INSTALL_HINT", "AsyncTransport", "build_ssl_context"]
