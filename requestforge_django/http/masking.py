"""One place that decides what a secret looks like when it has to be shown.

Logs, ``repr``, exception text, ``to_curl()``, command output and admin pages all
call these helpers, so a new secret header only has to be added here.

Three kinds of input, three rules:

* named values (headers, query parameters, form and JSON fields): masked when the name
  is secret-looking (:func:`is_sensitive_name`), listed by the caller (``extra``, e.g.
  ``HttpRequest.sensitive``), or the value is a :class:`~.secrets.Secret`;
* bodies that are not a mapping (:func:`mask_body`): an encoded form string, bytes or a
  list of pairs is parsed as a form, a JSON text as JSON, and masked field by field;
  a body that parses as neither is never shown, only its size (``<N bytes>``);
* free text (:func:`mask_text`), e.g. the message of a ``requests`` exception: every
  query value, URL password and ``Bearer``/``Basic`` credential is masked, plus any
  known secret value the caller passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from .secrets import Secret

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

#: Form fields (lower case) that carry a signed credential without a secret-looking word in their name
#: (RFC 7521: a JWT-bearer grant's ``assertion``, a client's ``client_assertion``).
SENSITIVE_FIELDS: frozenset[str] = frozenset({"assertion", "client_assertion"})

#: Substrings that mark a header, query parameter or body field as secret.
SENSITIVE_MARKERS: tuple[str, ...] = ("token", "secret", "password", "passwd", "api_key", "apikey", "signature")

_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate", "apikey"})


def mask_secret(value: object, *, visible: int = 4) -> str:
    """Mask a secret, keeping a short prefix of long values so two tokens can be told apart.

    A :class:`Secret` gives no prefix at all: it was declared secret by its owner.
    """
    if isinstance(value, Secret):
        return MASK
    text = "" if value is None else str(value)
    if len(text) >= 16 and visible > 0:
        return f"{text[:visible]}{MASK}"
    return MASK


#: Names with a ``key`` word that are not credentials.
_NOT_SECRET_KEYS = frozenset({"idempotency-key", "idempotency_key"})


def is_sensitive_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a header/field/parameter name denotes a secret.

    Secret-looking: a name in :data:`SENSITIVE_HEADERS`, :data:`SENSITIVE_FIELDS` or ``extra``, one containing a
    :data:`SENSITIVE_MARKERS` substring, or one whose last word is ``key`` (``X-Partner-Key``,
    ``key``, ``client_key``; not ``X-Key-Id`` nor ``Idempotency-Key``).
    """
    lowered = name.lower()
    if lowered in SENSITIVE_HEADERS or lowered in SENSITIVE_FIELDS or lowered in {e.lower() for e in extra}:
        return True
    normalized = lowered.replace("-", "_")
    if any(marker in normalized for marker in SENSITIVE_MARKERS):
        return True
    words = [word for word in re.split(r"[\W_]+", normalized) if word]
    return bool(words) and words[-1] == "key" and lowered not in _NOT_SECRET_KEYS


def mask_header_value(name: str, value: object, extra: Iterable[str] = ()) -> str:
    """Mask one header value if its name is sensitive (or it is a :class:`Secret`), keeping an auth scheme word visible."""
    if isinstance(value, Secret):
        return MASK
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
    if isinstance(data, Secret):
        return MASK
    if isinstance(data, Mapping):
        return {
            key: (mask_all(value) if isinstance(key, str) and is_sensitive_name(key, extra) else mask_mapping(value, extra))
            for key, value in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [mask_mapping(item, extra) for item in data]
    return data


def mask_all(value: object) -> object:
    """Mask every leaf (``{"api_key": ["k1"]}`` must not leak ``k1``), keeping the shape and the keys.

    Used under a sensitive key, and for values whose secrecy cannot be known from their
    name (a pipeline step's ``DATA``, ``JSON`` and ``HEADERS``).
    """
    if isinstance(value, Mapping):
        return {key: mask_all(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_all(item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    return mask_secret(value)


def mask_pairs(pairs: Iterable[tuple[Any, Any]], extra: Iterable[str] = ()) -> list[tuple[Any, Any]]:
    """A form given as ``(name, value)`` pairs, with sensitive values masked."""
    extra = frozenset(e.lower() for e in extra)
    return [
        (key, mask_all(value) if isinstance(value, Secret) or (isinstance(key, str) and is_sensitive_name(key, extra)) else value)
        for key, value in pairs
    ]


def withheld(size: int) -> str:
    """What an unparseable body looks like when shown: only its size."""
    return f"<{size} bytes>"


def _form_pairs(text: str) -> list[tuple[str, str]] | None:
    """``a=1&b=2`` as pairs, or ``None`` when ``text`` is not an urlencoded form."""
    if not text or any(c in text for c in ' \t\r\n{}[]<>"') or "=" not in text:
        return None
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None


def mask_body(body: object, extra: Iterable[str] = ()) -> object:
    """A request body as it may be shown: masked field by field, or only its size.

    * a mapping, or a list/tuple of ``(name, value)`` pairs: a form, masked by field name;
    * any other list: JSON, masked by field name;
    * ``str``/``bytes``: a JSON text (returned as masked JSON text), else an urlencoded form
      (returned as a masked form string); ``bytes`` that are not UTF-8, or text that is
      neither JSON nor a form, are returned as ``"<N bytes>"``: we cannot tell which part
      of them is secret, so no part is shown.
    """
    extra = frozenset(e.lower() for e in extra)
    if body is None:
        return None
    if isinstance(body, Secret):
        return MASK
    if isinstance(body, Mapping):
        return mask_mapping(body, extra)
    if isinstance(body, (list, tuple)):
        if body and all(isinstance(item, tuple) and len(item) == 2 for item in body):
            return mask_pairs(body, extra)
        return mask_mapping(list(body), extra)
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return withheld(len(raw))
    elif isinstance(body, str):
        text = body
    else:
        return f"<{type(body).__name__} body>"
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return withheld(len(text.encode("utf-8")))
        return json.dumps(mask_mapping(parsed, extra))
    pairs = _form_pairs(stripped)
    if pairs is None:
        return withheld(len(text.encode("utf-8")))
    return urlencode(mask_pairs(pairs, extra), safe="*")


def mask_url(url: str, extra: Iterable[str] = (), *, all_params: bool = False) -> str:
    """Mask secret query parameters and any password in the userinfo part of a URL.

    ``all_params`` masks every query value, for a URL whose sensitive parameter names
    are not known (an exception's URL: an API key may travel as ``?key=...``).
    """
    if not url or ("?" not in url and "@" not in url):
        return url
    extra = frozenset(e.lower() for e in extra)
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL we can take apart: mask it as free text rather than show it
        return mask_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if all_params:
            query = urlencode([(k, mask_secret(v)) for k, v in pairs], safe="*") if pairs else MASK
        elif any(is_sensitive_name(k, extra) for k, _ in pairs):
            query = urlencode([(k, mask_secret(v) if is_sensitive_name(k, extra) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# -- free text ---------------------------------------------------------------------------------------

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:]*):(?P<password>[^\s/@]*)@")
_QUERY_VALUE = re.compile(r"(?P<name>[?&;][^=&;#\s'\"<>()]+=)(?P<value>[^&;#\s'\"<>()]*)")
#: A credential after an auth scheme word: at least 8 token68 characters, so prose
#: ("Basic auth failed", "bearer tokens") is left alone.
_AUTH_VALUE = re.compile(r"\b(?P<scheme>Bearer|Basic|Digest|Negotiate)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_SECRET_WORD = r"[\w.-]*(?:token|secret|password|passwd|api[_-]?key|signature|authorization|credential)[\w.-]*"
#: ``client_secret=...`` and ``"password": "..."`` / ``'password': '...'`` (a form, JSON or a Python repr);
#: an unquoted ``name: value`` is not matched, it is how messages name a setting (``token_url: must be...``).
_NAMED_VALUE = re.compile(
    rf"(?P<lead>(?P<name>{_SECRET_WORD})=|(?P<q>['\"])(?P<qname>{_SECRET_WORD})(?P=q)\s*:\s*(?P<open>['\"]?))"
    r"(?!(?:Bearer|Basic|Token|Digest|Negotiate|ApiKey)\s)(?P<value>[^\s'\",;&)}\]]+)",
    re.IGNORECASE,
)


def mask_text(text: str, secrets: Iterable[object] = ()) -> str:
    """Free text (an exception message, an error body) with everything that may be a secret masked.

    Masks every query parameter value (``?key=...&page=...``: which one is the key
    cannot be known), URL passwords, ``Bearer``/``Basic``... credentials,
    ``secret-looking-name=value`` / ``"password": "..."`` pairs, and each value in
    ``secrets`` (strings or :class:`Secret`; values shorter than 4 characters are
    ignored, they would mask ordinary words).
    """
    if not text:
        return text
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _QUERY_VALUE.sub(lambda m: f"{m['name']}{MASK}" if m["value"] else m[0], text)
    text = _AUTH_VALUE.sub(lambda m: f"{m['scheme']}{m['sep']}{MASK}" if m["value"] != MASK else m[0], text)
    text = _NAMED_VALUE.sub(lambda m: f"{m['lead']}{MASK}", text)
    return text


# -- scrubbing echoed secrets out of text ----------------------------------------------------------


def secret_forms(secrets: Iterable[str | Secret], min_length: int = 1) -> list[str]:
    """Each secret and its URL-encoded forms of at least ``min_length`` characters, longest first.

    Longest first, so a secret that contains another (``Bearer <token>`` and ``<token>``)
    is masked whole, and the same text always scrubs the same way.
    """
    forms: set[str] = set()
    for secret in secrets:
        plain = secret.reveal() if isinstance(secret, Secret) else secret
        if plain:
            forms.update(form for form in (plain, quote_plus(plain), quote(plain, safe="")) if len(form) >= min_length)
    return sorted(forms, key=lambda form: (-len(form), form))


def scrub(text: str, secrets: Iterable[str | Secret], min_length: int = 1) -> str:
    """``text`` with every secret value (and its URL-encoded forms) a server echoed replaced by the mask."""
    for form in secret_forms(secrets, min_length):
        text = text.replace(form, MASK)
    return text


def scrub_bytes(content: bytes, secrets: Iterable[str | Secret], min_length: int = 1) -> bytes:
    """:func:`scrub` for a body not yet decoded."""
    for form in secret_forms(secrets, min_length):
        content = content.replace(form.encode("utf-8"), MASK.encode("ascii"))
    return content
