"""One place that decides what a secret looks like when it has to be shown.

Logs, ``repr``, exception text, ``to_curl()``, command output and admin pages all
call these helpers, so a new secret header only has to be added here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"

#: Header names (lower case) whose values are always masked.
SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
        "x-access-token",
        "x-amz-security-token",
        "x-csrf-token",
    }
)

#: Substrings that mark a header, query parameter or body field as secret.
SENSITIVE_MARKERS: tuple[str, ...] = ("token", "secret", "password", "passwd", "api_key", "apikey", "signature")

_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate", "apikey"})


def mask_secret(value: object, *, visible: int = 4) -> str:
    """Mask a secret, keeping a short prefix of long values so two tokens can be told apart."""
    text = "" if value is None else str(value)
    if len(text) >= 16 and visible > 0:
        return f"{text[:visible]}{MASK}"
    return MASK


def is_sensitive_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a header/field/parameter name denotes a secret."""
    lowered = name.lower()
    if lowered in SENSITIVE_HEADERS or lowered in {e.lower() for e in extra}:
        return True
    normalized = lowered.replace("-", "_")
    return any(marker in normalized for marker in SENSITIVE_MARKERS)


def mask_header_value(name: str, value: object, extra: Iterable[str] = ()) -> str:
    """Mask one header value if its name is sensitive, keeping an auth scheme word visible."""
    text = "" if value is None else str(value)
    if not is_sensitive_name(name, extra):
        return text
    scheme, sep, credentials = text.partition(" ")
    if sep and scheme.lower() in _AUTH_SCHEMES:
        return f"{scheme} {mask_secret(credentials)}"
    return mask_secret(text)


def mask_headers(headers: Mapping[str, object] | None, extra: Iterable[str] = ()) -> dict[str, str]:
    """Return a copy of ``headers`` with every sensitive value masked."""
    if not headers:
        return {}
    extra = frozenset(e.lower() for e in extra)
    return {name: mask_header_value(name, value, extra) for name, value in headers.items()}


def mask_mapping(data: object, extra: Iterable[str] = ()) -> object:
    """Mask sensitive fields of a (possibly nested) mapping or list, e.g. a form or JSON body."""
    extra = frozenset(e.lower() for e in extra)
    if isinstance(data, Mapping):
        return {
            key: (_mask_all(value) if isinstance(key, str) and is_sensitive_name(key, extra) else mask_mapping(value, extra))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [mask_mapping(item, extra) for item in data]
    return data


def _mask_all(value: object) -> object:
    """Mask every leaf under a sensitive key (``{"api_key": ["k1"]}`` must not leak ``k1``), keeping the shape."""
    if isinstance(value, Mapping):
        return {key: _mask_all(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_all(item) for item in value]
    return mask_secret(value)


def mask_url(url: str, extra: Iterable[str] = ()) -> str:
    """Mask secret query parameters and any password in the userinfo part of a URL."""
    if not url or ("?" not in url and "@" not in url):
        return url
    extra = frozenset(e.lower() for e in extra)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_sensitive_name(k, extra) for k, _ in pairs):
            query = urlencode([(k, mask_secret(v) if is_sensitive_name(k, extra) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
