"""Sending one :class:`HttpRequest` through a ``requests`` session, without the per-call overhead.

``requests.Session.request`` re-reads the process environment (proxies, CA bundle,
netrc) and re-merges every setting on *every* call; on a loopback request that is
most of the time spent. Our settings are frozen per client, so this module does that
work once:

* the environment (``HTTP(S)_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) is read
  when first needed per origin and then cached for the life of the client;
* prepared URLs are cached per URL string (bounded);
* the request goes straight to the session's transport adapter, with ``requests``
  still doing redirects (including its rule of dropping ``Authorization`` when a
  redirect leaves the host), connection pooling and TLS.

The session's cookie jar is not used: service-to-service calls are stateless, and a
jar shared by a thread's calls to different partners would leak one's cookies to
another request's context.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
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
from .exceptions import ConnectionException, HttpClientException, SSLException, TimeoutException
from .messages import HttpRequest, HttpResponse

_URL_CACHE_SIZE = 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD"})


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
        base.update(config.default_headers)
        self._base_headers: dict[str, str] = dict(base)
        self._base_url = config.base_url.rstrip("/")
        self._verify: bool | str = self._resolve_verify(config)
        self._prepared_urls: dict[str, str] = {}
        self._proxies_by_origin: dict[str, dict[str, str]] = {}
        self._explicit_proxies = dict(config.proxies or {})
        self._lock = threading.Lock()

    # -- session ---------------------------------------------------------------
    def create_session(self) -> requests.Session:
        """A session with pools sized from the config; used by one thread."""
        session = requests.Session()
        session.trust_env = self._config.trust_env
        session.cookies = _cookie_jar()
        session.max_redirects = self._config.max_redirects
        adapter = HTTPAdapter(
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

    def _prepared_url(self, url: str, params: Mapping[str, Any] | None) -> str:
        prepared = self._prepared_urls.get(url)
        if prepared is None:
            holder = PreparedRequest()
            try:
                holder.prepare_url(url, None)
            except requests.exceptions.RequestException as exc:
                raise HttpClientException(f"Invalid URL: {exc}", url=url, original=exc) from exc
            prepared = holder.url
            if len(self._prepared_urls) >= _URL_CACHE_SIZE:
                self._prepared_urls.clear()
            self._prepared_urls[url] = prepared
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
            if query:
                prepared = f"{prepared}{'&' if '?' in prepared else '?'}{query}"
        return prepared

    def prepare(self, request: HttpRequest) -> PreparedRequest:
        """Build the wire request: merged headers, encoded body, cached URL preparation."""
        url = self._prepared_url(self.absolute_url(request.url), request.params)
        headers = CaseInsensitiveDict(self._base_headers)
        if request.headers:
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
        prepared._cookies = None
        prepared.hooks = {"response": []}
        return prepared

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
        prepared = self.prepare(request)
        timeout = request.timeout if request.timeout is not None else self._config.default_timeout
        proxies = self.proxies_for(prepared.url)
        options = {"timeout": timeout, "verify": self._verify, "cert": self._config.client_cert, "proxies": proxies}
        try:
            raw = session.get_adapter(prepared.url).send(prepared, stream=False, **options)
            if self._config.allow_redirects and raw.is_redirect:
                raw.content  # noqa: B018 - drain so the connection goes back to the pool
                prepared._cookies = _cookie_jar()
                history = [raw, *session.resolve_redirects(raw, prepared, stream=False, **options)]
                raw = history[-1]
                raw.history = history[:-1]
            content = raw.content
        except requests.exceptions.RequestException as exc:
            raise _translate(exc, request.method.value, prepared.url) from exc
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


def _cookie_jar() -> RequestsCookieJar:
    """A jar that accepts no cookies: calls stay stateless even across redirect hops."""
    return RequestsCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _translate(exc: requests.exceptions.RequestException, method: str, url: str) -> HttpClientException:
    """Map a ``requests`` exception to ours, keeping the original for debugging."""
    detail = type(exc).__name__
    if isinstance(exc, requests.exceptions.Timeout):
        kind = "Connect timeout" if isinstance(exc, requests.exceptions.ConnectTimeout) else "Read timeout"
        return TimeoutException(f"{kind} ({detail})", method=method, url=url, original=exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return SSLException(f"TLS error ({detail})", method=method, url=url, original=exc)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionException(f"Connection failed ({detail})", method=method, url=url, original=exc)
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return HttpClientException(f"Too many redirects ({detail})", method=method, url=url, original=exc)
    return HttpClientException(f"Request failed ({detail})", method=method, url=url, original=exc)
