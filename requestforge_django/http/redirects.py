"""URLs as the wire sees them, and what one redirect hop becomes: its URL, its method, its credentials.

Pure functions used by :class:`~.transport.Transport` when it follows redirects itself
(it does, so that every hop passes the trust boundary): ``requests``' (and browsers')
method rules, ``Location`` resolution, and the query-parameter and body inspection that
decides what a hop to another origin must lose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.models import PreparedRequest
from requests.utils import requote_uri, to_native_string

from .exceptions import HttpClientException
from .masking import SENSITIVE_MARKERS, is_sensitive_name
from .messages import HttpRequest


def normalized_url(url: str) -> str:
    """``requests``' normalized form of ``url`` (IDNA host, quoted path): the URL the adapter connects to."""
    holder = PreparedRequest()
    try:
        holder.prepare_url(url, None)
    except requests.exceptions.RequestException as exc:
        raise HttpClientException(f"Invalid URL ({type(exc).__name__})", url=url) from None
    return holder.url or url


#: Redirects that repeat the method and the body (the others turn into a GET without body).
BODY_KEEPING_REDIRECTS = frozenset({307, 308})
#: Headers that describe a body, removed with it.
PURGED_WHEN_BODY_DROPPED = ("Content-Length", "Content-Type", "Transfer-Encoding")


def resolve_location(current: str, location: str) -> str:
    """The absolute URL a ``Location`` points to, resolved against ``current`` as ``requests`` does."""
    current_parts = urlsplit(current)
    if location.startswith("//"):
        location = f"{current_parts.scheme}:{location}"
    parts = urlsplit(location)
    if not parts.fragment and current_parts.fragment:
        parts = parts._replace(fragment=current_parts.fragment)
    url = urlunsplit(parts)
    resolved: str = to_native_string(urljoin(current, requote_uri(url)) if not parts.netloc else requote_uri(url))  # type: ignore[no-untyped-call]
    return resolved


def redirect_method(status: int, method: str) -> str:
    """``requests``' (and browsers') rules: 303 and 302 become GET (HEAD stays), a 301 POST becomes GET."""
    if status in (302, 303) and method != "HEAD":
        return "GET"
    if status == 301 and method == "POST":
        return "GET"
    return method


def without_params(url: str, names: frozenset[str]) -> str:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(key, value) for key, value in pairs if key.lower() not in names]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


def sensitive_params(url: str, names: frozenset[str]) -> list[tuple[str, str]]:
    if not names or "?" not in url:
        return []
    return [(key, value) for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True) if key.lower() in names]


def with_params(url: str, pairs: list[tuple[str, str]]) -> str:
    """``url`` with each of ``pairs`` whose name it lacks appended to its query."""
    parts = urlsplit(url)
    present = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    missing = [(key, value) for key, value in pairs if key.lower() not in present]
    if not missing:
        return url
    query = f"{parts.query}&{urlencode(missing)}" if parts.query else urlencode(missing)
    return urlunsplit(parts._replace(query=query))


def body_may_carry_credentials(request: HttpRequest) -> bool:
    """Whether a body re-sent by a 307/308 could hold a secret: secret-named fields or text, or a body we cannot inspect."""
    body = request.json_data if request.json_data is not None else request.data
    if body is None:
        return False
    if isinstance(body, (str, bytes, bytearray)):
        text = body.decode("latin-1") if isinstance(body, (bytes, bytearray)) else body
        lowered = text.lower()
        return any(marker in lowered or marker.replace("_", "-") in lowered for marker in SENSITIVE_MARKERS)
    if isinstance(body, (Mapping, list, tuple)):
        return has_secret_key(body)
    return not isinstance(body, (int, float, bool))


def has_secret_key(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any((isinstance(key, str) and is_sensitive_name(key)) or has_secret_key(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], (Mapping, list)):
            return is_sensitive_name(value[0])  # a (name, value) pair of a form
        return any(has_secret_key(item) for item in value)
    return False
