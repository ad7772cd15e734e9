"""``Secret``: a string that cannot be shown by accident, and ``Origin``, where it may go.

Everything that holds a credential (specs, hooks, token request forms, configs) holds a
:class:`Secret`. Its ``repr``/``str``/``format`` print a mask, so a frame local on
Django's technical 500 page, a log line or a ``repr`` of a spec cannot show it; only
:meth:`Secret.reveal` gives the value, and only the code that builds the wire request
calls it. Pickling keeps the value (a cache of specs needs it) but no exception ever
holds a ``Secret``.

:class:`Origin` is the (scheme, host, port) triple the trust boundary is drawn on: a
client's credentials go only to its own origin and the origins it explicitly trusts.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MASK = "****"

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Secret:
    """A secret string that prints as ``****`` and gives its value only to :meth:`reveal`.

    Equality is constant-time and only between secrets; a ``Secret`` is never equal to
    its plain value, so ``secret == "..."`` in calling code is a bug that shows up at once.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value._value
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a string, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The plain value: call it only where the wire request is built."""
        return self._value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def reveal(value: object) -> Any:
    """``value.reveal()`` for a :class:`Secret`, ``value`` itself for anything else."""
    return value.reveal() if isinstance(value, Secret) else value


def reveal_all(value: object) -> Any:
    """Reveal every :class:`Secret` inside a (nested) mapping, list or tuple; a copy, never in place."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {key: reveal_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal_all(item) for item in value]
    if isinstance(value, tuple):
        return tuple(reveal_all(item) for item in value)
    return value


def secret_or_none(value: str | Secret | None) -> Secret | None:
    """Wrap a plain string (``None`` and secrets pass through)."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


@dataclass(frozen=True, slots=True)
class Origin:
    """An RFC 6454 origin: scheme, lower-case host and explicit port (defaults filled in)."""

    scheme: str
    host: str
    port: int
    #: Computed once: an origin is looked up in a set on every call of a client with credentials.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.scheme, self.host, self.port)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt, not restored: a string's hash differs between processes, so _hash must be recomputed.
        return (Origin, (self.scheme, self.host, self.port))

    @classmethod
    def of(cls, url: str) -> Origin | None:
        """The origin of an absolute http(s) URL, or ``None`` for a relative or other URL."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return cls(scheme, parts.hostname.lower().rstrip("."), port if port is not None else _DEFAULT_PORTS[scheme])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{host}" if self.port == default else f"{self.scheme}://{host}:{self.port}"
