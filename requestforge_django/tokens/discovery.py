"""Finding a token endpoint from an ``ISSUER``: RFC 8414 metadata first, then OpenID discovery.

Why so strict: the metadata decides where the client secret, private-key assertion or
password goes. A document is accepted only when its ``issuer`` equals the configured
``ISSUER`` exactly (RFC 8414 section 3.3, OpenID Discovery section 4.3: a document
served for another issuer is an attack or a misconfiguration) and its
``token_endpoint`` is on the issuer's own origin, the one origin the token client
trusts: a secret goes only to its token endpoint (``DESIGN.md``, "Trust boundaries").
Anything else is a :class:`DiscoveryException` (an :class:`AuthenticationException`
naming the client and the issuer), and nothing is cached.

Locations (both tried with GET, the first that answers 2xx wins; a document at the
first that is *wrong* is an error, not a reason to try the second):

* RFC 8414 section 3.1, path-aware: ``https://host/.well-known/oauth-authorization-server/path``
  for the issuer ``https://host/path``;
* OpenID Connect Discovery 1.0 section 4: ``https://host/path/.well-known/openid-configuration``.

Why a per-process cache (:class:`DiscoveryCache`): metadata changes rarely and every
token fetch needs the endpoint; one fetch per issuer per process (per ``ttl``), single
flight per issuer across threads, bounded, and a failure is not cached so the next
token fetch tries again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..http.client import HttpClient
from ..http.exceptions import AuthenticationException, ConfigurationError
from ..http.messages import HttpMethod, HttpRequest, HttpResponse
from ..http.secrets import Origin
from .parsing import json_object
from .token_http import send_token_request

RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OPENID_WELL_KNOWN = "/.well-known/openid-configuration"

#: Issuers a process remembers at most (least recently used dropped first).
DEFAULT_MAX_ENTRIES = 128
#: Seconds a discovered document is reused before it is fetched again.
DEFAULT_DISCOVERY_TTL = 24 * 3600.0


class DiscoveryException(AuthenticationException):
    """Metadata discovery failed or returned a document that may not be trusted; ``issuer`` is the configured one."""

    def __init__(self, message: str, *, issuer: str, service_name: str | None = None, **kwargs: Any) -> None:
        self.issuer = issuer
        super().__init__(message, service_name=service_name, **kwargs)


def validate_issuer(issuer: Any, *, field: str = "issuer") -> str:
    """``issuer`` when it is an absolute http(s) URL without query or fragment (RFC 8414 section 2), else :class:`ConfigurationError`."""
    if not isinstance(issuer, str) or not issuer.strip():
        raise ConfigurationError("must be a non-empty string", field=field)
    try:
        parts = urlsplit(issuer)
    except ValueError:
        parts = None
    if parts is None or Origin.of(issuer) is None or parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"must be an absolute http(s) URL, got {issuer!r}", field=field)
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        raise ConfigurationError("must have no query or fragment (RFC 8414 section 2)", field=field)
    return issuer


def metadata_urls(issuer: str) -> tuple[str, str]:
    """The RFC 8414 (path-aware) and the OpenID metadata URL of ``issuer``, in the order they are tried."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, RFC8414_WELL_KNOWN + path, "", ""))
    openid = urlunsplit((parts.scheme, parts.netloc, path + OPENID_WELL_KNOWN, "", ""))
    return rfc8414, openid


@dataclass(frozen=True)
class ServerMetadata:
    """What the token layer takes from an authorization server's metadata."""

    issuer: str
    token_endpoint: str
    source_url: str


class DiscoveryCache:
    """Discovered metadata by issuer: thread-safe, bounded (LRU), ``ttl`` seconds, one fetch at a time per issuer."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, ttl: float = DEFAULT_DISCOVERY_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"must be a positive integer, got {max_entries!r}", field="max_entries")
        if not isinstance(ttl, (int, float)) or ttl <= 0:
            raise ConfigurationError(f"must be a positive number, got {ttl!r}", field="ttl")
        self.max_entries = max_entries
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, ServerMetadata]] = OrderedDict()
        self._flights: dict[str, threading.Lock] = {}

    def get(self, issuer: str) -> ServerMetadata | None:
        """The cached, unexpired metadata of ``issuer``, or ``None``."""
        with self._lock:
            entry = self._entries.get(issuer)
            if entry is None:
                return None
            if self._clock() - entry[0] >= self.ttl:
                del self._entries[issuer]
                return None
            self._entries.move_to_end(issuer)
            return entry[1]

    def get_or_discover(self, issuer: str, discover: Callable[[], ServerMetadata]) -> ServerMetadata:
        """The cached metadata, or ``discover()``'s (cached only when it returns; one caller at a time per issuer)."""
        found = self.get(issuer)
        if found is not None:
            return found
        with self._lock:
            flight = self._flights.setdefault(issuer, threading.Lock())
        with flight:
            found = self.get(issuer)
            if found is not None:
                return found
            try:
                metadata = discover()
            finally:
                with self._lock:
                    self._flights.pop(issuer, None)
            with self._lock:
                self._entries[issuer] = (self._clock(), metadata)
                self._entries.move_to_end(issuer)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return metadata

    def forget(self, issuer: str) -> None:
        with self._lock:
            self._entries.pop(issuer, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


#: The process-wide cache the providers use unless given another.
DISCOVERY_CACHE = DiscoveryCache()


def clear_discovery_cache() -> None:
    """Forget every discovered document of this process (tests; a partner that moved its endpoint)."""
    DISCOVERY_CACHE.clear()


def discover(
    issuer: str, http: HttpClient, *, service_name: str | None, timeout: float | None = None, cache: DiscoveryCache | None = None
) -> ServerMetadata:
    """The metadata of ``issuer`` from ``cache`` (default :data:`DISCOVERY_CACHE`), fetched with ``http`` when missing."""
    return (cache if cache is not None else DISCOVERY_CACHE).get_or_discover(
        issuer, lambda: fetch_metadata(issuer, http, service_name=service_name, timeout=timeout)
    )


def fetch_metadata(issuer: str, http: HttpClient, *, service_name: str | None, timeout: float | None = None) -> ServerMetadata:
    """Fetch and check the metadata of ``issuer`` (no cache); every failure is a :class:`DiscoveryException`."""
    statuses: list[str] = []
    for url in metadata_urls(issuer):
        response = _get(http, url, issuer=issuer, service_name=service_name, timeout=timeout)
        if not 200 <= response.status_code < 300:
            statuses.append(f"{url} answered HTTP {response.status_code}")
            continue
        return _checked(response, url, issuer=issuer, service_name=service_name)
    raise DiscoveryException(
        f"no authorization server metadata for issuer {issuer}: {'; '.join(statuses)}",
        issuer=issuer,
        service_name=service_name,
        url=issuer,
    )


def _get(http: HttpClient, url: str, *, issuer: str, service_name: str | None, timeout: float | None) -> HttpResponse:
    failure: AuthenticationException | None = None
    try:
        return send_token_request(
            http,
            HttpRequest(HttpMethod.GET, url, headers={"Accept": "application/json"}, timeout=timeout),
            service_name=service_name,
            step=None,
            url=url,
        )
    except AuthenticationException as exc:
        failure = exc
    raise DiscoveryException(
        f"metadata discovery for issuer {issuer} failed: {failure.message}",
        issuer=issuer,
        service_name=service_name,
        method="GET",
        url=url,
        original=failure.original,
    )


def _checked(response: HttpResponse, url: str, *, issuer: str, service_name: str | None) -> ServerMetadata:
    problem: str | None = None
    document: Any = None
    try:
        document = json_object(response, service_name=service_name)
    except AuthenticationException as exc:
        problem = exc.message.replace("token endpoint answered", "metadata is")
    if problem is None:
        problem = _document_problem(document, issuer)
    if problem is not None:
        raise DiscoveryException(
            f"metadata for issuer {issuer} refused: {problem}", issuer=issuer, service_name=service_name, method="GET", url=url
        )
    return ServerMetadata(issuer=issuer, token_endpoint=document["token_endpoint"], source_url=url)


def _document_problem(document: Any, issuer: str) -> str | None:
    found = document.get("issuer")
    if found != issuer:
        shown = repr(found[:200]) if isinstance(found, str) else type(found).__name__
        return f"its issuer is {shown}, not exactly {issuer!r}"
    endpoint = document.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return "it names no token_endpoint"
    origin = Origin.of(endpoint)
    if origin is None or "#" in endpoint:
        return "its token_endpoint is not an absolute http(s) URL without fragment"
    if origin != Origin.of(issuer):
        return f"its token_endpoint is on another origin ({origin}) than the issuer ({Origin.of(issuer)}); secrets go only there"
    return None
