"""Sending one :class:`HttpRequest` through a ``requests`` session, without the per-call overhead.

``requests.Session.request`` re-reads the process environment (proxies, CA bundle,
netrc) and re-merges every setting on *every* call; on a loopback request that is
most of the time spent. Our settings are frozen per client, so this module does that
work once:

* the environment (``HTTP(S)_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) is read
  when first needed per origin and then cached for the life of the client;
* prepared URLs (and their origins) are cached per URL string (bounded);
* the request goes straight to the session's transport adapter (connection pooling
  and TLS stay ``requests``').

Every attempt and every redirect hop passes through here after all hooks ran, so this
is also where the trust boundary is enforced, with the rules of :mod:`.wire` (shared with
the async transport): origin binding before a byte is sent, and redirects followed hop by
hop so that a hop out of the client's trust loses every credential.

* **Limits** (``max_response_bytes``, ``total_timeout``) bound what one send may read
  and for how long (see :mod:`.deadline`); without them the fast path is unchanged.

The session's cookie jar is not used: service-to-service calls are stateless, and a
jar shared by a thread's calls to different partners would leak one's cookies to
another request's context.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from http.cookiejar import DefaultCookiePolicy
from types import MappingProxyType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.models import PreparedRequest

from .config import HttpClientConfig
from .deadline import Deadline, DeadlineAdapter
from .exceptions import ConfigurationError, HttpClientException, SSLException, TimeoutException
from .messages import HttpRequest, HttpResponse
from .secrets import Origin
from .wire import RequestWire
from .wire_errors import translate_requests_error

#: Bytes read at a time when a response is read under a size cap or a deadline.
_CHUNK = 64 * 1024


def resolve_verify(config: HttpClientConfig) -> bool | str:
    """``verify_ssl``, or with ``trust_env`` the environment's CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``)."""
    if config.verify_ssl is True and config.trust_env:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return config.verify_ssl


class Transport:
    """Turns an :class:`HttpRequest` into an :class:`HttpResponse` using a given session.

    Stateless per call; what it caches is derived from the frozen config and the
    environment at first use (in the shared :class:`~.wire.RequestWire`), so threads can
    share one transport.
    """

    def __init__(self, config: HttpClientConfig, wire: RequestWire | None = None) -> None:
        self._config = config
        self.wire = wire or RequestWire(config)
        self._verify: bool | str = resolve_verify(config)
        self._limited = config.max_response_bytes is not None or config.total_timeout is not None

    # -- session ---------------------------------------------------------------
    def create_session(self) -> requests.Session:
        """A session with pools sized from the config; used by one thread."""
        session = requests.Session()
        session.trust_env = self._config.trust_env
        session.cookies = _cookie_jar()
        session.max_redirects = self._config.max_redirects
        adapter_class = DeadlineAdapter if self._config.total_timeout is not None else HTTPAdapter
        adapter = adapter_class(
            pool_connections=self._config.pool_connections,
            pool_maxsize=self._config.pool_maxsize,
            pool_block=self._config.pool_block,
            max_retries=0,
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    # -- sending -------------------------------------------------------------------------
    def send(self, session: requests.Session, request: HttpRequest, started_at: float) -> HttpResponse:
        """Send ``request`` once (following redirects if configured) and read the whole body."""
        wire = self.wire
        prepared, origin = wire.prepare(request)
        wire.ensure_trusted(request, origin, prepared.method or request.method.value)
        timeout = request.timeout if request.timeout is not None else self._config.default_timeout
        total = self._config.total_timeout
        deadline = Deadline(total) if total is not None else None
        with deadline if deadline is not None else nullcontext():
            try:
                raw = self._adapter_send(session, prepared, request, self._hop_timeout(timeout, deadline, request, prepared.url or ""))
                if deadline is not None:
                    deadline.attach(getattr(raw.raw, "connection", None))
                if self._config.allow_redirects and raw.is_redirect:
                    raw = self._follow_redirects(session, request, raw, prepared, origin, timeout, deadline)
                content = self._read_body(raw, request, deadline) if self._limited else raw.content
                if deadline is not None and deadline.expired:  # a cut read of a body without a length ends "cleanly"
                    raise self._deadline_exceeded(deadline, request, raw.url or prepared.url or "")
            except requests.exceptions.RequestException as exc:
                raise self._failure(exc, request, getattr(exc.request, "url", None) or prepared.url or "", deadline) from exc
            except HttpClientException:
                raise
            except Exception as exc:
                if deadline is None or not deadline.expired:
                    raise
                raise self._failure(exc, request, prepared.url or "", deadline) from exc
        return HttpResponse(
            status_code=raw.status_code,
            headers=MappingProxyType(raw.headers),
            content=content or b"",
            url=raw.url,
            elapsed_ms=(time.perf_counter() - started_at) * 1000.0,
            request=request,
            encoding=raw.encoding,
            reason=raw.reason or "",
        )

    def _adapter_send(self, session: requests.Session, prepared: PreparedRequest, request: HttpRequest, timeout: Any) -> requests.Response:
        """One hop on the wire; a local failure that ``requests`` leaves untyped becomes one of ours."""
        url = prepared.url or ""
        try:
            adapter = session.get_adapter(url)
            return adapter.send(
                prepared,
                stream=self._limited,
                timeout=timeout,
                verify=self._verify,
                cert=self._config.client_cert,
                proxies=self.wire.proxies_for(url),
            )
        except requests.exceptions.RequestException:
            raise
        except OSError as exc:  # requests checks the CA bundle and client certificate files itself, with a bare OSError
            error = self._tls_file_error(exc, request, url)
        except ValueError as exc:  # http.client refusing a header or URL it cannot encode (e.g. non-latin-1)
            error = HttpClientException(
                f"The request cannot be encoded for HTTP ({type(exc).__name__}): a header value or the URL holds a character "
                "HTTP/1.1 does not allow",
                method=request.method.value,
                url=self.wire.shown_url(url, request),
            )
        raise error

    def _tls_file_error(self, exc: OSError, request: HttpRequest, url: str) -> HttpClientException:
        verify = self._verify
        if isinstance(verify, str) and not os.path.exists(verify):
            return ConfigurationError(f"the CA bundle {verify!r} does not exist", field="verify_ssl")
        cert = self._config.client_cert
        for path in cert if isinstance(cert, tuple) else (cert,):
            if path and not os.path.exists(path):
                return ConfigurationError(f"the client certificate file {path!r} does not exist", field="client_cert")
        return SSLException(f"TLS setup failed ({type(exc).__name__})", method=request.method.value, url=self.wire.shown_url(url, request))

    def _hop_timeout(self, timeout: Any, deadline: Deadline | None, request: HttpRequest, url: str) -> Any:
        """The per-read timeout of the next hop, shortened to what is left of the deadline."""
        if deadline is None:
            return timeout
        remaining = deadline.remaining()
        if remaining <= 0:
            raise self._deadline_exceeded(deadline, request, url)
        if isinstance(timeout, tuple):
            return (min(timeout[0], remaining), min(timeout[1], remaining))
        return min(timeout, remaining)

    def _read_body(self, raw: requests.Response, request: HttpRequest, deadline: Deadline | None) -> bytes:
        """The body, read in chunks so a size cap stops the read early (the deadline is the watchdog's job)."""
        limit = self._config.max_response_bytes
        if limit is not None:
            declared = raw.headers.get("Content-Length", "").strip()
            if declared.isdigit() and int(declared) > limit:
                raw.close()
                raise self.wire.too_large(limit, request, raw.url)
        chunks: list[bytes] = []
        size = 0
        for chunk in raw.iter_content(_CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                raw.close()
                raise self.wire.too_large(limit, request, raw.url)
            chunks.append(chunk)
        content = b"".join(chunks)
        raw._content = content
        raw._content_consumed = True  # type: ignore[attr-defined]
        return content

    def _drain(self, raw: requests.Response, request: HttpRequest, deadline: Deadline | None) -> None:
        """Read and discard a redirect's body so its connection goes back to the pool (as ``requests`` does)."""
        try:
            if self._limited:
                self._read_body(raw, request, deadline)
            else:
                raw.content  # noqa: B018
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError, RuntimeError):
            pass
        raw.close()

    # -- redirects -----------------------------------------------------------------------
    def _follow_redirects(
        self,
        session: requests.Session,
        request: HttpRequest,
        raw: requests.Response,
        prepared: PreparedRequest,
        origin: Origin | None,
        timeout: Any,
        deadline: Deadline | None,
    ) -> requests.Response:
        """Follow ``raw``'s redirects hop by hop; the wire's :class:`~.wire.RedirectChain` decides what each may carry."""
        chain = self.wire.redirects(request, prepared.url or "", origin)
        history: list[requests.Response] = []
        while True:
            location = session.get_redirect_target(raw) or ""
            self._drain(raw, request, deadline)
            hop = chain.next_hop(prepared, raw.status_code, location)
            history.append(raw)
            raw = self._adapter_send(session, hop, request, self._hop_timeout(timeout, deadline, request, hop.url or ""))
            if deadline is not None:
                deadline.attach(getattr(raw.raw, "connection", None))
            prepared = hop
            if not raw.is_redirect:
                break
        raw.history = history
        return raw

    # -- errors ------------------------------------------------------------------------------
    def _failure(self, exc: BaseException, request: HttpRequest, url: str, deadline: Deadline | None) -> HttpClientException:
        if deadline is not None and (deadline.expired or deadline.remaining() <= 0):
            return self._deadline_exceeded(deadline, request, url)
        return translate_requests_error(exc, request.method.value, self.wire.shown_url(url, request))

    def _deadline_exceeded(self, deadline: Deadline, request: HttpRequest, url: str) -> TimeoutException:
        return TimeoutException(
            f"Total timeout of {deadline.seconds:g} s exceeded", method=request.method.value, url=self.wire.shown_url(url, request)
        )


def _cookie_jar() -> RequestsCookieJar:
    """A jar that accepts no cookies: calls stay stateless even across redirect hops."""
    return RequestsCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
