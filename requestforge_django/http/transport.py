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

It is also where the trust boundary is enforced, because every attempt and every
redirect hop passes through here after all hooks ran:

* **Origin binding.** A client with credentials (an auth hook, a secret default header,
  or a request carrying values marked ``sensitive``) sends requests only to its
  BASE_URL origin and its trusted origins; anything else is refused with
  :class:`UntrustedOriginException` before a byte is sent.
* **Redirects** are followed here, hop by hop, with ``requests``' method rules (303 and
  302 become GET, a 301 POST becomes GET, 307/308 keep method and body). A hop to an
  origin outside the client's trust (and outside the first request's origin) is sent
  without any credential: headers marked sensitive, headers whose names are secret
  (``Authorization``, ``Cookie``, ``X-API-Key``, ... and ``sensitive_headers``) and
  query parameters marked sensitive are removed, for that hop and every later one. A
  307/308 that would re-send a body to such an origin is refused when the body may hold
  credentials. ``cross_origin_redirects="refuse"`` refuses every such hop instead.
* **Limits** (``max_response_bytes``, ``total_timeout``) bound what one send may read
  and for how long (see :mod:`.deadline`); without them the fast path is unchanged.

The session's cookie jar is not used: service-to-service calls are stateless, and a
jar shared by a thread's calls to different partners would leak one's cookies to
another request's context.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from contextlib import nullcontext
from http.cookiejar import DefaultCookiePolicy
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers, get_environ_proxies

from .config import HttpClientConfig
from .deadline import Deadline, DeadlineAdapter
from .exceptions import (
    ConfigurationError,
    HttpClientException,
    ResponseParseException,
    SSLException,
    TimeoutException,
    UntrustedOriginException,
)
from .masking import is_sensitive_name, mask_url
from .messages import HttpRequest, HttpResponse
from .redirects import (
    BODY_KEEPING_REDIRECTS,
    PURGED_WHEN_BODY_DROPPED,
    body_may_carry_credentials,
    normalized_url,
    redirect_method,
    resolve_location,
    sensitive_params,
    with_params,
    without_params,
)
from .secrets import Origin, reveal
from .wire_errors import translate_requests_error

_URL_CACHE_SIZE = 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD"})
#: Bytes read at a time when a response is read under a size cap or a deadline.
_CHUNK = 64 * 1024
_BAD_HEADER_CHARS = re.compile(r"[\r\n\0]")


def _user_agent() -> str:
    from .. import __version__

    return f"requestforge-django/{__version__} python-requests/{requests.__version__}"


class Transport:
    """Turns an :class:`HttpRequest` into an :class:`HttpResponse` using a given session.

    Stateless per call; the caches it keeps are derived from the frozen config and
    the environment at first use, guarded so threads can share one transport.
    """

    def __init__(self, config: HttpClientConfig) -> None:
        self._config = config
        base = default_headers()
        base["User-Agent"] = _user_agent()
        base.update({name: reveal(value) for name, value in config.default_headers.items()})
        self._base_headers: dict[str, str] = dict(base)
        self._base_url = config.base_url.rstrip("/")
        self._verify: bool | str = self._resolve_verify(config)
        self._prepared_urls: dict[str, tuple[str, Origin | None]] = {}
        self._proxies_by_origin: dict[str, dict[str, str]] = {}
        self._explicit_proxies = dict(config.proxies or {})
        self._lock = threading.Lock()
        self._credential_origins = config.credential_origins
        self._has_credentials = config.has_credentials
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

    # -- request building ------------------------------------------------------------
    def absolute_url(self, url: str) -> str:
        """Join a relative URL to the base URL by concatenation (the base path is kept)."""
        if url.startswith(("http://", "https://")) or not self._base_url:
            return url
        if not url:
            return self._base_url
        return f"{self._base_url}{url}" if url[0] in "/?" else f"{self._base_url}/{url}"

    def _prepared_url(self, url: str, params: Mapping[str, Any] | None) -> tuple[str, Origin | None]:
        """``requests``' normalized form of ``url`` (cached) with ``params`` appended, and its origin.

        The origin is taken from the normalized URL, the one the adapter connects to, so a
        URL that parses differently before normalization cannot slip past the origin check.
        """
        cached = self._prepared_urls.get(url)
        if cached is None:
            prepared = normalized_url(url)
            cached = (prepared, Origin.of(prepared))
            if len(self._prepared_urls) >= _URL_CACHE_SIZE:
                self._prepared_urls.clear()
            self._prepared_urls[url] = cached
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
            if query:
                return f"{cached[0]}{'&' if '?' in cached[0] else '?'}{query}", cached[1]
        return cached

    def prepare(self, request: HttpRequest) -> PreparedRequest:
        """Build the wire request: merged headers, encoded body, cached URL preparation."""
        return self._prepare(request)[0]

    def _prepare(self, request: HttpRequest) -> tuple[PreparedRequest, Origin | None]:
        url, origin = self._prepared_url(self.absolute_url(request.url), request.params)
        headers = CaseInsensitiveDict(self._base_headers)
        if request.headers:
            for name, value in request.headers.items():
                if _BAD_HEADER_CHARS.search(value) or _BAD_HEADER_CHARS.search(name):
                    # Never the value: it may be a credential. A line break would inject a header.
                    raise HttpClientException(
                        f"Header {_shown_name(name)} contains a line break or NUL; refusing to send it",
                        method=request.method.value,
                        url=self._shown_url(url, request),
                    )
            headers.update(request.headers)
        body: bytes | str | None = None
        if request.json_data is not None:
            try:
                body = json.dumps(request.json_data, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise HttpClientException(
                    f"json_data cannot be encoded as JSON: {exc}", method=request.method.value, url=url, original=exc
                ) from exc
            if "Content-Type" not in headers:
                headers["Content-Type"] = "application/json"
        elif request.data is not None:
            data = request.data
            if isinstance(data, Mapping) or (isinstance(data, (list, tuple)) and data and isinstance(data[0], tuple)):
                body = urlencode(list(data.items()) if isinstance(data, Mapping) else list(data), doseq=True)
                if "Content-Type" not in headers:
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = data
        method = request.method.value
        if body is not None:
            if isinstance(body, str):
                body = body.encode("utf-8")
            headers["Content-Length"] = str(len(body))
        elif method not in _NO_BODY_METHODS:
            headers["Content-Length"] = "0"
        prepared = PreparedRequest()
        prepared.method = method
        prepared.url = url
        prepared.headers = headers
        prepared.body = body
        prepared._cookies = None  # type: ignore[attr-defined]
        prepared.hooks = {"response": []}
        return prepared, origin

    # -- trust boundary ----------------------------------------------------------------------
    def check_destination(self, request: HttpRequest) -> None:
        """Refuse a request of a client with credentials for an origin that may not receive them.

        Called by the client after the request hooks and before the auth hook (so no token is
        fetched for a request that will be refused); :meth:`send` checks again after every hook.
        """
        if self._has_credentials or request.sensitive:
            origin = self._prepared_url(self.absolute_url(request.url), None)[1]
            if origin not in self._credential_origins:
                raise self._untrusted(origin, request.method.value)

    def _untrusted(self, origin: Origin | None, method: str) -> UntrustedOriginException:
        shown = str(origin) if origin is not None else "a URL without an http(s) origin"
        who = f"client {self._config.name!r}" if self._config.name else "this client"
        if self._credential_origins:
            allowed = ", ".join(sorted(str(o) for o in self._credential_origins))
            where = f"its credentials go only to {allowed}"
        else:
            where = "it has credentials but neither a base URL nor trusted origins"
        return UntrustedOriginException(
            f"Refused to send a request of {who} to {shown}: {where}. Use a path relative to the base URL, or, if {shown} "
            "may receive these credentials, add it to the client's TRUSTED_ORIGINS (HttpClientConfigBuilder.with_trusted_origins).",
            origin=shown,
            method=method,
        )

    # -- environment ---------------------------------------------------------------------
    @staticmethod
    def _resolve_verify(config: HttpClientConfig) -> bool | str:
        if config.verify_ssl is True and config.trust_env:
            return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        return config.verify_ssl

    def proxies_for(self, url: str) -> dict[str, str]:
        """Proxies for ``url``: explicit ones from the config, else the environment's, cached per origin."""
        if self._config.proxies is not None:
            return self._explicit_proxies
        if not self._config.trust_env:
            return {}
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"
        proxies = self._proxies_by_origin.get(origin)
        if proxies is None:
            proxies = get_environ_proxies(origin)
            with self._lock:
                self._proxies_by_origin[origin] = proxies
        return proxies

    # -- sending -------------------------------------------------------------------------
    def send(self, session: requests.Session, request: HttpRequest, started_at: float) -> HttpResponse:
        """Send ``request`` once (following redirects if configured) and read the whole body."""
        prepared, origin = self._prepare(request)
        if (self._has_credentials or request.sensitive) and origin not in self._credential_origins:
            raise self._untrusted(origin, prepared.method or request.method.value)
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
                proxies=self.proxies_for(url),
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
                url=self._shown_url(url, request),
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
        return SSLException(f"TLS setup failed ({type(exc).__name__})", method=request.method.value, url=self._shown_url(url, request))

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
                raise self._too_large(limit, request, raw.url)
        chunks: list[bytes] = []
        size = 0
        for chunk in raw.iter_content(_CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                raw.close()
                raise self._too_large(limit, request, raw.url)
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
        """Follow ``raw``'s redirects hop by hop, deciding for each what it may carry."""
        config = self._config
        home = self._credential_origins | {origin} if origin is not None else self._credential_origins
        history: list[requests.Response] = []
        stripped = False
        carried = sensitive_params(prepared.url or "", request.sensitive)
        while True:
            if len(history) >= config.max_redirects:
                raw.close()
                raise HttpClientException(
                    f"Too many redirects (more than {config.max_redirects})",
                    method=prepared.method,
                    url=self._shown_url(prepared.url or "", request),
                )
            location = session.get_redirect_target(raw) or ""
            self._drain(raw, request, deadline)
            hop = prepared.copy()
            hop.url, hop_origin = self._prepared_url(resolve_location(prepared.url or "", location), None)
            hop.method = redirect_method(raw.status_code, prepared.method or "GET")
            if raw.status_code not in BODY_KEEPING_REDIRECTS:
                for name in PURGED_WHEN_BODY_DROPPED:
                    hop.headers.pop(name, None)
                hop.body = None
            if hop_origin not in home and not stripped:
                self._check_cross_origin_hop(request, hop, hop_origin, raw.status_code)
                stripped = True
            if stripped:
                self._strip_credentials(hop, request)
            elif carried:
                # A Location names its own query: a query-parameter credential goes with every
                # trusted hop, as a header credential does.
                hop.url = with_params(hop.url or "", carried)
            history.append(raw)
            raw = self._adapter_send(session, hop, request, self._hop_timeout(timeout, deadline, request, hop.url or ""))
            if deadline is not None:
                deadline.attach(getattr(raw.raw, "connection", None))
            prepared = hop
            if not raw.is_redirect:
                break
        raw.history = history
        return raw

    def _check_cross_origin_hop(self, request: HttpRequest, hop: PreparedRequest, origin: Origin | None, status: int) -> None:
        """Raise if the first hop out of the client's trust may not be followed at all."""
        shown = str(origin) if origin is not None else "a URL without an http(s) origin"
        who = f"client {self._config.name!r}" if self._config.name else "this client"
        if self._config.cross_origin_redirects == "refuse":
            raise UntrustedOriginException(
                f"Refused a {status} redirect of {who} to {shown}: it does not follow redirects to other origins "
                "(cross_origin_redirects='refuse').",
                origin=shown,
                method=hop.method,
            )
        if hop.body is not None and (self._has_credentials or request.sensitive or body_may_carry_credentials(request)):
            raise UntrustedOriginException(
                f"Refused a {status} redirect of {who} to {shown}: it would re-send the request body to another origin, "
                "and the body may carry credentials.",
                origin=shown,
                method=hop.method,
            )

    def _strip_credentials(self, hop: PreparedRequest, request: HttpRequest) -> None:
        """Remove every credential from a hop: marked or secret-named headers, marked query parameters."""
        sensitive = request.sensitive
        extra = self._config.sensitive_headers
        for name in [name for name in hop.headers if name.lower() in sensitive or is_sensitive_name(name, extra)]:
            del hop.headers[name]
        if sensitive and hop.url and "?" in hop.url:
            hop.url = without_params(hop.url, sensitive)

    # -- errors ------------------------------------------------------------------------------
    def _shown_url(self, url: str, request: HttpRequest) -> str:
        """``url`` with secret query values masked, including parameters the request marked sensitive."""
        return mask_url(url, request.sensitive | self._config.sensitive_headers)

    def _failure(self, exc: BaseException, request: HttpRequest, url: str, deadline: Deadline | None) -> HttpClientException:
        if deadline is not None and (deadline.expired or deadline.remaining() <= 0):
            return self._deadline_exceeded(deadline, request, url)
        return translate_requests_error(exc, request.method.value, self._shown_url(url, request))

    def _deadline_exceeded(self, deadline: Deadline, request: HttpRequest, url: str) -> TimeoutException:
        return TimeoutException(
            f"Total timeout of {deadline.seconds:g} s exceeded", method=request.method.value, url=self._shown_url(url, request)
        )

    def _too_large(self, limit: int, request: HttpRequest, url: str) -> ResponseParseException:
        return ResponseParseException(
            f"Response body larger than max_response_bytes ({limit} bytes); not read further",
            method=request.method.value,
            url=self._shown_url(url, request),
        )


def _shown_name(name: str) -> str:
    return repr(name) if not _BAD_HEADER_CHARS.search(name) else "with a line break in its name"


def _cookie_jar() -> RequestsCookieJar:
    """A jar that accepts no cookies: calls stay stateless even across redirect hops."""
    return RequestsCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
