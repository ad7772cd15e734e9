"""``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1) and the RFC 6750 "invalid token" signal.

A resource server that refuses an access token says so in a Bearer challenge:
``WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="..."``,
on a 401 or (as django-oauth-toolkit's default views do) on a 403. Other Bearer errors
are not about the token being stale: ``insufficient_scope`` means a new token of the same
scope is refused too, ``invalid_request`` means the request itself is malformed.

The header value is a comma-separated list of challenges, each an auth scheme followed
by either a ``token68`` or comma-separated ``name=value`` parameters (the value a token
or a quoted string). Commas separate both challenges and parameters, so the parser tells
them apart the way the grammar does: a token followed by ``=`` is a parameter of the
current challenge, any other token starts a new challenge. Several ``WWW-Authenticate``
headers reach us joined with ``", "`` (urllib3), which is the same list. Scheme and
parameter names are case-insensitive; parsing never raises, whatever the server sends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Challenge", "is_invalid_token", "parse_challenges"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SPACE = " \t"


@dataclass(frozen=True)
class Challenge:
    """One challenge: ``scheme`` lower-cased, ``params`` keyed by lower-cased name (the first of a repeated name wins)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    token68: str | None = None


def _skip(value: str, index: int, chars: str) -> int:
    while index < len(value) and value[index] in chars:
        index += 1
    return index


def _quoted(value: str, index: int) -> tuple[str, int]:
    """The quoted string starting at ``value[index] == '"'`` (backslash escapes undone); an unterminated one runs to the end."""
    out: list[str] = []
    index += 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            out.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        out.append(char)
        index += 1
    return "".join(out), index


def _to_next_comma(value: str, index: int) -> int:
    """Index of the next comma outside a quoted string (or the end): where to resume after something unparseable."""
    while index < len(value) and value[index] != ",":
        if value[index] == '"':
            _, index = _quoted(value, index)
        else:
            index += 1
    return index


def _token68_at(value: str, index: int) -> tuple[str, int] | None:
    """A token68 at ``index`` that is the whole rest of the challenge (followed by the end or a comma)."""
    match = _TOKEN68.match(value, index)
    if match is None:
        return None
    after = _skip(value, match.end(), _SPACE)
    if after < len(value) and value[after] != ",":
        return None
    return match.group(), after


def parse_challenges(header: str | None) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` value, in order; ``[]`` for ``None``, empty or unparseable input."""
    if not isinstance(header, str):
        return []
    value = header
    challenges: list[tuple[str, dict[str, str], str | None]] = []
    index = 0
    while index < len(value):
        index = _skip(value, index, _SPACE + ",")
        if index >= len(value):
            break
        match = _TOKEN.match(value, index)
        if match is None:
            index = _to_next_comma(value, index + 1)
            continue
        name, index = match.group(), match.end()
        after = _skip(value, index, _SPACE)
        if after < len(value) and value[after] == "=":
            # name=value: a parameter of the current challenge (ignored before any scheme).
            index = _skip(value, after + 1, _SPACE)
            if index < len(value) and value[index] == '"':
                param, index = _quoted(value, index)
            else:
                token = _TOKEN.match(value, index)
                param, index = (token.group(), token.end()) if token else ("", index)
            if challenges:
                challenges[-1][1].setdefault(name.lower(), param)
            index = _to_next_comma(value, index)
            continue
        token68 = _token68_at(value, after) if after > index else None
        if token68 is not None:
            challenges.append((name.lower(), {}, token68[0]))
            index = token68[1]
        else:
            challenges.append((name.lower(), {}, None))
    return [Challenge(scheme, MappingProxyType(params), token68) for scheme, params, token68 in challenges]


def is_invalid_token(headers: Mapping[str, Any] | None) -> bool:
    """Whether ``headers`` carry a Bearer challenge with ``error="invalid_token"`` (RFC 6750 section 3.1).

    The value is compared case-insensitively; ``insufficient_scope`` or any other error is not a rejected token.
    """
    if not headers:
        return False
    return any(
        challenge.scheme == "bearer" and challenge.params.get("error", "").strip().lower() == "invalid_token"
        for challenge in parse_challenges(headers.get("WWW-Authenticate"))
    )
