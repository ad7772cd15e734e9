"""Sending one :class:`HttpRequest` on an event loop, through ``aiohttp`` (the ``async`` extra).

The async twin of :class:`~.transport.Transport`, built from the same frozen
:class:`HttpClientConfig` and sharing its decisions instead of repeating them, through the
client's one :class:`~.wire.RequestWire`:

* the wire request (base-URL joining, default headers, encoded body, header checks) is the
  wire's, so both paths send the same bytes;
* the trust boundary is the same: a client with credentials sends only to its credential
  origins, redirects are followed here hop by hop (``aiohttp`` is told not to) by the
  wire's :class:`~.wire.RedirectChain`, and a hop out of the client's trust loses every credential;
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
from collections.abc import Coroutine, Iterator, Mapping
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
from .transport import resolve_verify
from .wire import NO_BODY_METHODS

if TYPE_CHECKING:
    import aiohttp
    from requests.models import PreparedRequest

    from .secrets import Origin
    from .wire import RequestWire

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
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

    def __init__(self, config: HttpClientConfig, wire: RequestWire) -> None:
        self._config = config
        self._wire = wire
        self._lock = threading.Lock()
        #: id(loop) -> (weak reference to the loop, its session)
        self._sessions: dict[int, tuple[weakref.ReferenceType[asyncio.AbstractEventLoop], aiohttp.ClientSession]] = {}
        #: The last loop's session: one loop per process is the common case, and a lookup saved.
        self._current: tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession] | None = None
        self._ssl: ssl.SSLContext | bool | None = None
        self._timeouts: dict[Any, Any] = {}
        self._encodings: dict[str | None, str | None] = {}
        self._destinations: dict[str, tuple[Any, str | None]] = {}
        self._proxies: dict[Origin | None, str | None] = {}
        self._limited = config.max_response_bytes is not None
        self._base_headers: Any = None  # a multidict, made with the SSL context (after aiohttp is imported)

    # -- sessions ----------------------------------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        """The running loop's session (created on first use; a dead loop's session is dropped)."""
        loop = asyncio.get_running_loop()
        current = self._current
        if current is not None and current[0] is loop:
            return current[1]
        entry = self._sessions.get(id(loop))
        if entry is not None and entry[0]() is loop and not entry[1].closed:
            self._current = (loop, entry[1])
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
        if config.pool_block:
            # As the sync pool with pool_block: at most pool_maxsize connections per origin, callers wait.
            per_origin = max(config.pool_maxsize, 1)
            total = per_origin * max(config.pool_connections, 1)
        else:
            # As the sync pool without it (the default): pool_maxsize is what the pool keeps, not a cap on
            # what is in flight. aiohttp has no such "keep N" knob, so nothing is capped; the caller's
            # concurrency bounds the connections (arequest_many's max_concurrency, a view's gather).
            per_origin = total = 0
        connector = lib.TCPConnector(limit=total, limit_per_host=per_origin, ssl=self._ssl_context(), enable_cleanup_closed=False)
        session: aiohttp.ClientSession = lib.ClientSession(
            connector=connector,
            cookie_jar=lib.DummyCookieJar(),  # stateless, as the sync path's jar that accepts no cookies
            trust_env=False,  # the environment's proxies are read once per origin by _proxy_for, not per request
            auto_decompress=True,
            # No skip_auto_headers: every request carries the wire's User-Agent (and Accept, Accept-Encoding),
            # so aiohttp adds none of its own, and it would cost a sorted multidict per request.
        )
        with self._lock:
            self._discard_dead()
            self._sessions[id(loop)] = (weakref.ref(loop), session)
            self._current = (loop, session)
        return session

    def _discard_dead(self) -> None:
        """Forget sessions whose loop is gone or closed (they cannot be closed from another loop)."""
        current = self._current
        if current is not None and (current[0].is_closed() or current[1].closed):
            self._current = None
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
            self._current = None
            self._discard_dead()
        if entry is not None and entry[0]() is loop:
            await entry[1].close()

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if self._ssl is None:
            _aiohttp()  # imported here too, so asession() does both off the loop
            self._base_headers = _multidict().CIMultiDict(self._wire.base_headers)
            self._ssl = build_ssl_context(self._config)
        return self._ssl

    # -- sending ----------------------------------------------------------------------------
    def _first_hop(
        self, request: HttpRequest, target: tuple[str, Origin | None] | None = None
    ) -> tuple[str, str, Any, bytes | None, Origin | None]:
        """Method, URL, headers, body and origin of the first hop.

        A request without a body (the common GET) skips ``requests``' ``PreparedRequest``: the
        same URL preparation (the wire's cache) and the same headers, merged into an
        ``aiohttp`` multidict directly. Anything else is the wire's prepared request.
        """
        wire = self._wire
        method = request.method.value
        if request.json_data is None and request.data is None:
            url, origin = target or wire.url_of(request)
            headers = self._base_headers.copy()
            if request.headers:
                headers.update(wire.wire_headers(request, url))
            if method not in NO_BODY_METHODS:
                headers["Content-Length"] = "0"
            return method, url, headers, None, origin
        prepared, origin = wire.prepare(request)
        body = prepared.body
        return method, prepared.url or "", prepared.headers, body if not isinstance(body, str) else body.encode(), origin

    def send(
        self, request: HttpRequest, started_at: float, target: tuple[str, Origin | None] | None = None
    ) -> Coroutine[Any, Any, HttpResponse]:
        """Send ``request`` once (following redirects if configured) and read the whole body (await it).

        ``target``: the wire URL and origin of ``request`` if the caller already worked them out.
        A plain function returning the coroutine that does the work, so the common call (no
        ``total_timeout``) costs no extra coroutine: this runs on every request.
        """
        total = self._config.total_timeout
        if total is None:
            return self._send(request, started_at, target)
        return self._send_within(total, request, started_at, target)

    async def _send_within(
        self, total: float, request: HttpRequest, started_at: float, target: tuple[str, Origin | None] | None
    ) -> HttpResponse:
        """:meth:`_send` under one deadline for the whole send, redirects included."""
        try:
            return await asyncio.wait_for(self._send(request, started_at, target), total)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            url = target[0] if target is not None else self._wire.absolute_url(request.url)
            raise TimeoutException(
                f"Total timeout of {total:g} s exceeded", method=request.method.value, url=self._wire.shown_url(url, request)
            ) from exc

    async def _send(self, request: HttpRequest, started_at: float, target: tuple[str, Origin | None] | None) -> HttpResponse:
        """The first hop and, if configured, its redirects (the wire's :class:`~.wire.RedirectChain` decides each)."""
        wire = self._wire
        session = self.session() if self._ssl is not None else await self.asession()
        method, url, headers, body, origin = self._first_hop(request, target)
        wire.ensure_trusted(request, origin, method)
        timeout = request.timeout if request.timeout is not None else self._config.default_timeout
        client_timeout = self._client_timeout(timeout)
        follow = self._config.allow_redirects
        chain = None
        hop: PreparedRequest | None = None  # a redirect's hop, as the wire builds it
        try:
            while True:
                address, proxy = self._destination(url, origin)
                async with session.request(
                    method, address, headers=headers, data=body, allow_redirects=False, timeout=client_timeout, proxy=proxy
                ) as raw:
                    status = raw.status
                    if not (follow and status in _REDIRECTS and "Location" in raw.headers):
                        content = await self._read_body(raw, request, url) if self._limited else await raw.read()
                        return HttpResponse(
                            status,
                            ResponseHeaders(raw.headers),
                            content,
                            url,
                            (time.perf_counter() - started_at) * 1000.0,
                            request,
                            self._encoding(raw.headers.get("Content-Type")),
                            raw.reason or "",
                        )
                    location = raw.headers["Location"]
                    await raw.read()  # back to the pool
                if chain is None:
                    chain = wire.redirects(request, url, origin)
                    hop = wire.prepare(request)[0]
                hop = chain.next_hop(cast("PreparedRequest", hop), status, location)
                method, url, headers = hop.method or "GET", hop.url or "", hop.headers
                body = hop.body.encode() if isinstance(hop.body, str) else hop.body
                origin = chain.origin
        except HttpClientException:
            raise
        except (asyncio.TimeoutError, TimeoutError, OSError, ValueError, ssl.SSLError, _aiohttp().ClientError) as exc:
            raise self._failure(exc, request, url) from exc

    async def _read_body(self, raw: Any, request: HttpRequest, url: str) -> bytes:
        """The body under ``max_response_bytes``: a larger declared or read size stops the read."""
        limit = self._config.max_response_bytes or 0
        declared = raw.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raw.close()
            raise self._wire.too_large(limit, request, url)
        chunks: list[bytes] = []
        size = 0
        async for chunk in raw.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raw.close()
                raise self._wire.too_large(limit, request, url)
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

    def _destination(self, url: str, origin: Origin | None) -> tuple[Any, str | None]:
        """``url`` (already normalized and quoted like the sync path's) as a ``yarl.URL``, and its proxy;
        cached per URL string (a client calls the same few)."""
        cached = self._destinations.get(url)
        if cached is None:
            from yarl import URL

            cached = (URL(url, encoded=True), self._proxy_for(url, origin))
            if len(self._destinations) >= 1024:
                self._destinations.clear()
            self._destinations[url] = cached
        return cached

    def _proxy_for(self, url: str, origin: Origin | None) -> str | None:
        """The proxy for ``url``: explicit ones from the config, else the environment's; cached per origin."""
        try:
            return self._proxies[origin]
        except KeyError:
            pass
        proxies = self._wire.proxies_for(url)
        proxy = select_proxy(url, proxies) if proxies else None
        if origin is not None and len(self._proxies) < 256:
            self._proxies[origin] = proxy
        return proxy

    def _failure(self, exc: BaseException, request: HttpRequest, url: str) -> HttpClientException:
        """An ``aiohttp``/socket failure as one of the library's typed exceptions."""
        aiohttp = _aiohttp()
        method = request.method.value
        shown = self._wire.shown_url(url, request)
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
    verify = resolve_verify(config)
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


class ResponseHeaders(Mapping[str, str]):
    """``aiohttp``'s case-insensitive response headers as ``requests`` shows them: a repeated
    header reads as one value joined with ", ".

    A read-only view made in constant time per response; the joining happens only when a
    repeated header is read, so the common response pays nothing for it.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        values: list[str] = self._raw.getall(name)
        return values[0] if len(values) == 1 else ", ".join(values)

    def get(self, name: str, default: Any = None) -> Any:
        values = self._raw.getall(name, None)
        if not values:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name in self._raw:
            lowered = name.lower()
            if lowered not in seen:
                seen.add(lowered)
                yield name

    def __len__(self) -> int:
        return len({name.lower() for name in self._raw})

    def __repr__(self) -> str:
        return f"ResponseHeaders({dict(self.items())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (an exception carrying a response) as the plain case-insensitive dict it reads as.
        return (CaseInsensitiveDict, (dict(self.items()),))


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
