"""What a request looks like on the wire, and where it may go: the seam both transports share.

:class:`RequestWire` is built once per client from its frozen config and handed to the
sync :class:`~.transport.Transport` (``requests``) and the async
:class:`~.async_transport.AsyncTransport` (``aiohttp``), so the two send the same bytes
and enforce one trust boundary:

* **Preparation**: base-URL joining, ``requests``' URL normalization (cached per URL
  string, with the origin taken from the normalized form), the client's default headers,
  JSON and form bodies, and the refusal of header names or values holding a line break.
* **Origin binding**: a client with credentials (an auth hook, a secret default header,
  or a request carrying values marked ``sensitive``) sends only to its credential origins;
  anything else is refused with :class:`UntrustedOriginException` before a byte is sent.
* **Redirects** (:class:`RedirectChain`): ``requests``' method rules; the first hop out of
  the client's trust (and out of the first request's origin) loses every credential, for
  that hop and every later one; a body that may hold credentials is never re-sent there;
  ``cross_origin_redirects="refuse"`` refuses such a hop outright.
* **Proxies** from the config or, once per origin, the environment.
* **Shown URLs**: what an error may print, with secret query values masked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers, get_environ_proxies

from .config import HttpClientConfig
from .exceptions import HttpClientException, ResponseParseException, UntrustedOriginException
from .masking import is_sensitive_name, mask_url
from .messages import HttpRequest
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

_URL_CACHE_SIZE = 1024
NO_BODY_METHODS = frozenset({"GET", "HEAD"})


def has_line_break(text: str) -> bool:
    """Whether ``text`` holds CR, LF or NUL: in a header, any of them would inject or cut one."""
    return "\n" in text or "\r" in text or "\0" in text


def user_agent() -> str:
    import requests

    from .. import __version__

    return f"requestforge-django/{__version__} python-requests/{requests.__version__}"


class RequestWire:
    """Preparation, origin binding, redirect rules and proxies of one client (thread-safe)."""

    def __init__(self, config: HttpClientConfig) -> None:
        self.config = config
        base = default_headers()
        base["User-Agent"] = user_agent()
        base.update({name: reveal(value) for name, value in config.default_headers.items()})
        #: The headers every request starts from (the client's defaults revealed for the wire).
        self.base_headers: dict[str, str] = dict(base)
        self.base_url = config.base_url.rstrip("/")
        #: The origins this client's credentials may reach; see :meth:`ensure_trusted`.
        self.credential_origins = config.credential_origins
        self.has_credentials = config.has_credentials
        self._prepared_urls: dict[str, tuple[str, Origin | None]] = {}
        self._by_request_url: dict[str, tuple[str, Origin | None]] = {}
        self._proxies_by_origin: dict[str, dict[str, str]] = {}
        self._explicit_proxies = dict(config.proxies or {})
        self._lock = threading.Lock()

    # -- URLs ------------------------------------------------------------------------------
    def absolute_url(self, url: str) -> str:
        """Join a relative URL to the base URL by concatenation (the base path is kept)."""
        if url.startswith(("http://", "https://")) or not self.base_url:
            return url
        if not url:
            return self.base_url
        return f"{self.base_url}{url}" if url[0] in "/?" else f"{self.base_url}/{url}"

    def prepared_url(self, url: str, params: Mapping[str, Any] | None) -> tuple[str, Origin | None]:
        """``requests``' normalized form of ``url`` (cached) with ``params`` appended, and its origin.

        The origin is taken from the normalized URL, the one the socket connects to, so a
        URL that parses differently before normalization cannot slip past the origin check.
        A cached origin that is one of the credential origins is that very object, so the
        per-request membership test is an identity check.
        """
        cached = self._prepared_urls.get(url)
        if cached is None:
            prepared = normalized_url(url)
            origin = Origin.of(prepared)
            for trusted in self.credential_origins:
                if trusted == origin:
                    origin = trusted
            cached = (prepared, origin)
            if len(self._prepared_urls) >= _URL_CACHE_SIZE:
                self._prepared_urls.clear()
            self._prepared_urls[url] = cached
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
            if query:
                return f"{cached[0]}{'&' if '?' in cached[0] else '?'}{query}", cached[1]
        return cached

    def url_of(self, request: HttpRequest) -> tuple[str, Origin | None]:
        """The wire URL of ``request`` (joined, normalized, with its query) and its origin.

        Without parameters (the common call) the answer is cached per request URL as written,
        relative or not: the same few paths recur, and this runs on every call.
        """
        if request.params:
            return self.prepared_url(self.absolute_url(request.url), request.params)
        cached = self._by_request_url.get(request.url)
        if cached is None:
            cached = self.prepared_url(self.absolute_url(request.url), None)
            if len(self._by_request_url) >= _URL_CACHE_SIZE:
                self._by_request_url.clear()
            self._by_request_url[request.url] = cached
        return cached

    # -- the request ---------------------------------------------------------------------
    def wire_headers(self, request: HttpRequest, url: str) -> dict[str, str]:
        """``request``'s own headers as sent: :class:`Secret` values revealed, line breaks refused."""
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            value = reveal(value)
            self.check_header(name, value, request, url)
            headers[name] = value
        return headers

    def check_header(self, name: str, value: str, request: HttpRequest, url: str) -> None:
        """Refuse a header whose name or value holds a line break or NUL (never showing the value)."""
        if has_line_break(value) or has_line_break(name):
            shown = repr(name) if not has_line_break(name) else "with a line break in its name"
            raise HttpClientException(
                f"Header {shown} contains a line break or NUL; refusing to send it",
                method=request.method.value,
                url=self.shown_url(url, request),
            )

    def prepare(self, request: HttpRequest) -> tuple[PreparedRequest, Origin | None]:
        """The wire request (merged headers, encoded body) and the origin it goes to."""
        url, origin = self.url_of(request)
        headers = CaseInsensitiveDict(self.base_headers)
        if request.headers:
            headers.update(self.wire_headers(request, url))
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
        elif method not in NO_BODY_METHODS:
            headers["Content-Length"] = "0"
        prepared = PreparedRequest()
        prepared.method = method
        prepared.url = url
        prepared.headers = headers
        prepared.body = body
        prepared._cookies = None  # type: ignore[attr-defined]
        prepared.hooks = {"response": []}
        return prepared, origin

    # -- the trust boundary ----------------------------------------------------------------
    def ensure_trusted(self, request: HttpRequest, origin: Origin | None, method: str) -> None:
        """Refuse ``request`` (going to ``origin``) if it carries credentials and ``origin`` may not receive them.

        Credentials: the client's own (an auth hook, a secret default header) or values the
        request marked ``sensitive``. The one rule of :meth:`check_destination` and both transports.
        """
        if (self.has_credentials or request.sensitive) and origin not in self.credential_origins:
            raise self.untrusted(origin, method)

    def check_destination(self, request: HttpRequest) -> tuple[str, Origin | None] | None:
        """Refuse a request of a client with credentials for an origin that may not receive them.

        Called by the client after the request hooks and before the auth hook (so no token is
        fetched for a request that will be refused); each transport checks again before sending.
        Returns the wire URL and origin it worked out (``None`` when nothing needed checking),
        which the transport may reuse for the same URL and parameters.
        """
        if self.has_credentials or request.sensitive:
            target = self.url_of(request)
            self.ensure_trusted(request, target[1], request.method.value)
            return target
        return None

    def untrusted(self, origin: Origin | None, method: str) -> UntrustedOriginException:
        """The refusal of a credential-carrying request to ``origin``."""
        shown = str(origin) if origin is not None else "a URL without an http(s) origin"
        who = self._who()
        if self.credential_origins:
            allowed = ", ".join(sorted(str(o) for o in self.credential_origins))
            where = f"its credentials go only to {allowed}"
        else:
            where = "it has credentials but neither a base URL nor trusted origins"
        return UntrustedOriginException(
            f"Refused to send a request of {who} to {shown}: {where}. Use a path relative to the base URL, or, if {shown} "
            "may receive these credentials, add it to the client's TRUSTED_ORIGINS (HttpClientConfigBuilder.with_trusted_origins).",
            origin=shown,
            method=method,
        )

    def redirects(self, request: HttpRequest, url: str, origin: Origin | None) -> RedirectChain:
        """The redirect rules for one send whose first hop went to ``url`` (at ``origin``)."""
        return RedirectChain(self, request, url, origin)

    def _who(self) -> str:
        return f"client {self.config.name!r}" if self.config.name else "this client"

    # -- proxies ------------------------------------------------------------------------------
    def proxies_for(self, url: str) -> dict[str, str]:
        """Proxies for ``url``: explicit ones from the config, else the environment's, cached per origin."""
        if self.config.proxies is not None:
            return self._explicit_proxies
        if not self.config.trust_env:
            return {}
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"
        proxies = self._proxies_by_origin.get(origin)
        if proxies is None:
            proxies = get_environ_proxies(origin)
            with self._lock:
                self._proxies_by_origin[origin] = proxies
        return proxies

    # -- what errors show ----------------------------------------------------------------------
    def shown_url(self, url: str, request: HttpRequest) -> str:
        """``url`` with secret query values masked, including parameters the request marked sensitive."""
        return mask_url(url, request.sensitive | self.config.sensitive_headers)

    def too_large(self, limit: int, request: HttpRequest, url: str) -> ResponseParseException:
        return ResponseParseException(
            f"Response body larger than max_response_bytes ({limit} bytes); not read further",
            method=request.method.value,
            url=self.shown_url(url, request),
        )


class RedirectChain:
    """The hops after the first of one send, and what each may carry (one per send, not shared)."""

    def __init__(self, wire: RequestWire, request: HttpRequest, url: str, origin: Origin | None) -> None:
        self._wire = wire
        self._request = request
        self._home = wire.credential_origins | {origin} if origin is not None else wire.credential_origins
        self._carried = sensitive_params(url, request.sensitive)
        self._stripped = False
        self.followed = 0
        #: The origin of the hop :meth:`next_hop` returned last.
        self.origin: Origin | None = origin

    def next_hop(self, current: PreparedRequest, status: int, location: str) -> PreparedRequest:
        """The request a ``status`` answer with ``location`` leads to, as it may be sent.

        Raises :class:`HttpClientException` past ``max_redirects`` and
        :class:`UntrustedOriginException` for a hop that may not be followed at all.
        """
        wire, request = self._wire, self._request
        limit = wire.config.max_redirects
        if self.followed >= limit:
            raise HttpClientException(
                f"Too many redirects (more than {limit})", method=current.method, url=wire.shown_url(current.url or "", request)
            )
        self.followed += 1
        hop = current.copy()
        hop.url, origin = wire.prepared_url(resolve_location(current.url or "", location), None)
        self.origin = origin
        hop.method = redirect_method(status, current.method or "GET")
        if status not in BODY_KEEPING_REDIRECTS:
            for name in PURGED_WHEN_BODY_DROPPED:
                hop.headers.pop(name, None)
            hop.body = None
        if origin not in self._home and not self._stripped:
            self._check_leaving_trust(hop, origin, status)
            self._stripped = True
        if self._stripped:
            self._strip_credentials(hop)
        elif self._carried:
            # A Location names its own query: a query-parameter credential goes with every
            # trusted hop, as a header credential does.
            hop.url = with_params(hop.url or "", self._carried)
        return hop

    def _check_leaving_trust(self, hop: PreparedRequest, origin: Origin | None, status: int) -> None:
        """Raise if the first hop out of the client's trust may not be followed at all."""
        wire, request = self._wire, self._request
        shown = str(origin) if origin is not None else "a URL without an http(s) origin"
        if wire.config.cross_origin_redirects == "refuse":
            raise UntrustedOriginException(
                f"Refused a {status} redirect of {wire._who()} to {shown}: it does not follow redirects to other origins "
                "(cross_origin_redirects='refuse').",
                origin=shown,
                method=hop.method,
            )
        if hop.body is not None and (wire.has_credentials or request.sensitive or body_may_carry_credentials(request)):
            raise UntrustedOriginException(
                f"Refused a {status} redirect of {wire._who()} to {shown}: it would re-send the request body to another origin, "
                "and the body may carry credentials.",
                origin=shown,
                method=hop.method,
            )

    def _strip_credentials(self, hop: PreparedRequest) -> None:
        """Remove every credential from a hop: marked or secret-named headers, marked query parameters."""
        sensitive = self._request.sensitive
        extra = self._wire.config.sensitive_headers
        for name in [name for name in hop.headers if name.lower() in sensitive or is_sensitive_name(name, extra)]:
            del hop.headers[name]
        if sensitive and hop.url and "?" in hop.url:
            hop.url = without_params(hop.url, sensitive)


__all__ = ["NO_BODY_METHODS", "RedirectChain", "RequestWire", "has_line_break", "user_agent"]
