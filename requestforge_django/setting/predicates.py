"""Value predicates of the setting: plain functions of one value, no reporting.

The readers (:mod:`.readers`) and the rules use these to decide what a value is; a
predicate never formats a value into a message, since it may be secret (:func:`type_name`
describes a value by its type only).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import urlsplit

from ..http.messages import HttpMethod

__all__ = [
    "EMPTY_KEY",
    "HEADER_NAME",
    "HTTP_METHODS",
    "NAME_RULES",
    "is_blank",
    "is_fernet_key",
    "is_http_url",
    "is_int",
    "is_loopback",
    "is_number",
    "type_name",
]

HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CLIENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STEP_NAME_RE = re.compile(r"^[A-Za-z_]\w*$")
_KEY_NAME_RULE = "Use letters, digits, '_', '.' and '-', starting with a letter or digit: the name is part of cache keys."
NAME_RULES: Mapping[str, tuple[re.Pattern[str], str]] = MappingProxyType(
    {
        "client name": (_CLIENT_NAME_RE, _KEY_NAME_RULE),
        "pipeline name": (_CLIENT_NAME_RE, _KEY_NAME_RULE),
        "step name": (_STEP_NAME_RE, "Use a Python identifier (letters, digits, '_'): the name is used in {step} placeholders."),
    }
)
HTTP_METHODS = tuple(m.value for m in HttpMethod)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def type_name(value: object) -> str:
    """How a value is described in a message: its type, never its content."""
    return "None" if value is None else type(value).__name__


def is_http_url(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(value).netloc)
    except ValueError:
        return False


def is_loopback(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def is_blank(value: object) -> bool:
    """``None``, or a string of nothing but whitespace: what an unset or empty environment variable gives."""
    return value is None or (isinstance(value, (str, bytes)) and not value.strip())


#: E009 for an empty ENCRYPTION_KEYS (entry): the message and hint.
EMPTY_KEY = (
    "is empty (an unset or empty environment variable?); a Fernet key is needed here.",
    "Set the variable to a key generated with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
)


def is_fernet_key(value: object) -> bool:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    if not isinstance(raw, bytes):
        return False
    try:
        return len(base64.urlsafe_b64decode(raw)) == 32 and len(raw) == 44
    except (binascii.Error, ValueError):
        return False
