"""Which plain values a request sends as secrets: for scrubbing what a server echoes back.

A value counts when it is a :class:`Secret`, or sits under a header, query parameter or
body field whose name is sensitive (marked by an auth hook, secret-looking, or listed in
``sensitive_headers``). The credentials inside an ``Authorization``-style header count on
their own too (the token after ``Bearer``, the password inside ``Basic``), since a server
may quote either.
"""

from __future__ import annotations

import base64
import binascii
import json as _json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .masking import is_sensitive_name
from .secrets import Secret

_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate", "apikey"})


def secret_values_of(
    headers: Mapping[str, Any], url: str, params: Mapping[str, Any] | None, bodies: Iterable[Any], names: frozenset[str]
) -> frozenset[str]:
    """The plain secret values among ``headers``, ``url``'s query, ``params`` and ``bodies`` (4 characters or more)."""
    found: set[str] = set()
    for name, value in headers.items():
        if isinstance(value, Secret) or is_sensitive_name(name, names):
            _add_header_secret(found, str(name), value)
    for pairs in (_url_pairs(url), list((params or {}).items())):
        for name, value in pairs:
            _collect(found, value, is_sensitive_name(str(name), names))
    for body in bodies:
        _collect_body(found, body, names)
    return frozenset(value for value in found if len(value) >= 4)


def _add_header_secret(found: set[str], name: str, value: Any) -> None:
    text = value.reveal() if isinstance(value, Secret) else str(value)
    found.add(text)
    scheme, sep, credentials = text.partition(" ")
    if sep and scheme.lower() in _AUTH_SCHEMES:
        found.add(credentials)
        if scheme.lower() == "basic":
            try:
                _user, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return
            found.add(password)


def _url_pairs(url: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return []


def _collect(found: set[str], value: Any, sensitive: bool) -> None:
    """Add the plain leaves of ``value`` when it sits under a sensitive name, and every Secret anywhere."""
    if isinstance(value, Secret):
        found.add(value.reveal())
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(found, item, sensitive)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(found, item, sensitive)
    elif sensitive and value is not None and not isinstance(value, bool):
        found.add(str(value))


def _collect_body(found: set[str], body: Any, names: frozenset[str]) -> None:
    if body is None:
        return
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return
    if isinstance(body, str):
        text = body.strip()
        try:
            body = _json.loads(text) if text[:1] in ("{", "[") else parse_qsl(text, keep_blank_values=True)
        except ValueError:
            return
    if isinstance(body, Mapping):
        for key, value in body.items():
            if isinstance(value, (Mapping, list)) and not (isinstance(key, str) and is_sensitive_name(key, names)):
                _collect_body(found, value, names)
            else:
                _collect(found, value, isinstance(key, str) and is_sensitive_name(key, names))
    elif isinstance(body, (list, tuple)):
        for item in body:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                _collect(found, item[1], is_sensitive_name(item[0], names))
            else:
                _collect_body(found, item, names)
    else:
        _collect(found, body, False)
