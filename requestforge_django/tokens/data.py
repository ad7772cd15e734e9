"""``TokenData``: one access token and what we know about it, as an immutable value.

Why a frozen value: the same token object is read by many threads at once and handed
between the token cache, the auth hook and the Django layer; nobody may change it
under somebody else. A new token is a new object.

Why plain data in :meth:`TokenData.to_dict`: storages shared between processes (the
Django cache, Redis) keep that dict, never a pickled class, so a deploy that changes
this class cannot make every process crash on entries left by the previous release.

Why :meth:`TokenData.from_response` is strict: a token endpoint that answers with an
HTML error page, no token or a nonsensical lifetime must fail loudly *at fetch time*
(with the field named), not later as a mysterious 401 or a token cached for a century.
No message here ever contains the token itself.

Why :func:`header_problem` and the limits below: a token and its type end up in an HTTP
header on every call. A value that cannot be sent (a line break that would inject a
second header, a non-ASCII character, a space inside the token, a megabyte of text) is
refused *before* it is cached, so one bad answer costs one failed fetch, not an hour of
failing calls; and a lifetime shorter than the configured minimum is refused too, since
it would cost one token fetch per call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from ..http.exceptions import AuthenticationException
from ..http.masking import mask_mapping, mask_secret

#: Returns "now" as a timezone-aware UTC datetime; injected by tests to move time.
Clock = Callable[[], datetime]

#: Sanity cap on ``expires_in``: nothing legitimate lives longer than ~10 years, and a
#: larger number is far more likely a timestamp sent by mistake in a seconds field.
DEFAULT_MAX_LIFETIME: float = 10 * 365.25 * 24 * 3600.0

#: Longest access token accepted, in characters: it travels in a header on every call,
#: and servers commonly refuse header lines beyond 8 KiB.
MAX_TOKEN_LENGTH: int = 8192

#: Longest ``token_type`` accepted ("Bearer", "DPoP", "MAC": one short word).
MAX_TOKEN_TYPE_LENGTH: int = 64

#: Default minimum lifetime (seconds) of a token an endpoint answers (``TOKEN_MIN_LIFETIME``).
DEFAULT_MIN_LIFETIME: float = 5.0

#: Visible ASCII (0x21-0x7E): no space, no control character, nothing a header cannot carry.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_STANDARD_FIELDS = frozenset({"token_type", "expires_in", "refresh_token", "scope"})


def system_clock() -> datetime:
    """The real time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def _aware_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        # A naive datetime is ambiguous (local time? UTC?); guessing would shift expiry by hours.
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(timezone.utc)


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")
    return value


@dataclass(frozen=True, repr=False)
class TokenData:
    """An access token with its type, expiry and the rest of the endpoint's answer.

    ``expires_at`` is timezone-aware UTC, or ``None`` for a token that never expires.
    ``extra`` holds the other response fields (read-only); it does not take part in
    equality, so two copies of the same token compare equal however they were stored.
    ``credential_version`` names the version of the admin-edited credential whose secret
    obtained the token (``None`` for tokens not obtained with one); the Django layer
    serves a token only while that version is the current one (see
    :mod:`requestforge_django.fencing`). It does not take part in equality either.
    """

    access_token: str
    token_type: str = "Bearer"
    expires_at: datetime | None = None
    refresh_token: str | None = None
    scope: str | None = None
    obtained_at: datetime = field(default_factory=system_clock)
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False)
    credential_version: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.access_token, str) or not self.access_token:
            raise ValueError("access_token must be a non-empty string")
        if not isinstance(self.token_type, str):
            raise TypeError(f"token_type must be a string, got {type(self.token_type).__name__}")
        _optional_text(self.refresh_token, "refresh_token")
        _optional_text(self.scope, "scope")
        _optional_text(self.credential_version, "credential_version")
        object.__setattr__(self, "obtained_at", _aware_utc(self.obtained_at, "obtained_at"))
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", _aware_utc(self.expires_at, "expires_at"))
        if not isinstance(self.extra, MappingProxyType):
            if not isinstance(self.extra, Mapping):
                raise TypeError(f"extra must be a mapping, got {type(self.extra).__name__}")
            object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    # -- expiry -----------------------------------------------------------------------

    @property
    def is_expired(self) -> bool:
        """Whether the token has expired by the system clock (no leeway)."""
        return self.is_expiring(0.0)

    def is_expiring(self, leeway_seconds: float, now: datetime | None = None) -> bool:
        """Whether the token expires within ``leeway_seconds`` of ``now`` (default: the system clock)."""
        if self.expires_at is None:
            return False
        now = system_clock() if now is None else now
        return now + timedelta(seconds=leeway_seconds) >= self.expires_at

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """Seconds until expiry at ``now`` (negative once expired), ``None`` if it never expires."""
        if self.expires_at is None:
            return None
        now = system_clock() if now is None else now
        return (self.expires_at - now).total_seconds()

    @property
    def expires_in(self) -> float | None:
        """Seconds until expiry by the system clock (negative once expired), ``None`` if it never expires."""
        return self.seconds_left()

    @property
    def lifetime(self) -> float | None:
        """Seconds between obtaining and expiry, ``None`` if it never expires."""
        if self.expires_at is None:
            return None
        return (self.expires_at - self.obtained_at).total_seconds()

    def expiring_no_later_than(self, deadline: datetime) -> TokenData:
        """This token with ``expires_at`` capped at ``deadline`` (used for per-step cache TTLs)."""
        deadline = _aware_utc(deadline, "deadline")
        if self.expires_at is not None and self.expires_at <= deadline:
            return self
        return replace(self, expires_at=deadline)

    # -- presentation -------------------------------------------------------------------

    @property
    def authorization_header(self) -> str:
        """The ``Authorization`` header value, e.g. ``"Bearer abc"`` (type as the server sent it)."""
        return f"{self.token_type} {self.access_token}" if self.token_type else self.access_token

    def __repr__(self) -> str:
        expires = self.expires_at.isoformat() if self.expires_at else None
        refresh = mask_secret(self.refresh_token) if self.refresh_token else None
        extra = mask_mapping(dict(self.extra)) if self.extra else {}
        return (
            f"TokenData(access_token={mask_secret(self.access_token)!r}, token_type={self.token_type!r}, "
            f"expires_at={expires!r}, refresh_token={refresh!r}, scope={self.scope!r}, extra={extra!r})"
        )

    __str__ = __repr__

    # -- plain data (what storages persist) ------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data (ISO-8601 datetimes); :meth:`from_dict` reads it back."""
        data: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "obtained_at": self.obtained_at.isoformat(),
            "extra": dict(self.extra),
        }
        if self.credential_version is not None:
            data["credential_version"] = self.credential_version
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenData:
        """Rebuild a token from :meth:`to_dict` output; anything malformed raises ``ValueError``.

        Datetimes may be ISO-8601 strings or epoch seconds, so entries written by
        other tools (or by hand in ``redis-cli``) are readable too.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"token data must be a mapping, got {type(data).__name__}")
        try:
            extra = data.get("extra") or {}
            if not isinstance(extra, Mapping):
                raise ValueError("'extra' must be a mapping")
            obtained_raw = data.get("obtained_at")
            return cls(
                access_token=data["access_token"],
                token_type=data.get("token_type", "Bearer"),
                expires_at=_parse_instant(data.get("expires_at"), "expires_at"),
                refresh_token=data.get("refresh_token"),
                scope=data.get("scope"),
                obtained_at=_parse_instant(obtained_raw, "obtained_at") or system_clock(),
                extra=extra,
                credential_version=data.get("credential_version"),
            )
        except KeyError as exc:
            raise ValueError(f"token data lacks {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"malformed token data: {exc}") from None

    # -- parsing a token endpoint's answer ---------------------------------------------------

    @classmethod
    def from_response(
        cls,
        data: Mapping[str, Any],
        *,
        token_field: str = "access_token",
        default_lifetime: float | None = 3600.0,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
        clock: Clock | None = None,
        expires_in_field: str = "expires_in",
        refresh_token_field: str | None = "refresh_token",
        token_type: str | None = None,
        min_lifetime: float = DEFAULT_MIN_LIFETIME,
    ) -> TokenData:
        """Build a token from a decoded OAuth2-style JSON body.

        Field names may be dotted paths into nested objects (``"data.auth.token"``);
        a key that literally contains the dots wins. ``expires_in`` may be an int, a
        float or a numeric string; when missing, ``default_lifetime`` applies
        (``None``: the token never expires). ``token_type`` overrides the body's own.

        Raises :class:`AuthenticationException` naming the field when the token is
        missing or cannot be sent in a header (see :func:`header_problem`), when the
        ``token_type`` is not one visible-ASCII word, or when ``expires_in`` is zero,
        negative, shorter than ``min_lifetime``, not finite, not a number or longer than
        ``max_lifetime``.
        """
        if not isinstance(data, Mapping):
            raise AuthenticationException(f"token response is not a JSON object (got {type(data).__name__})")
        token = lookup(data, token_field)
        if token is None:
            raise AuthenticationException(f"token response has no {token_field!r} field")
        if not isinstance(token, str) or not token.strip():
            raise AuthenticationException(f"token response field {token_field!r} is not a non-empty string")
        problem = header_problem(token)
        if problem:
            # It ends up in a header; a line break there would be header injection.
            raise AuthenticationException(f"token response field {token_field!r} {problem}; it cannot be sent in a header")
        now = (clock or system_clock)()
        lifetime = parse_expires_in(lookup(data, expires_in_field), field=expires_in_field, max_lifetime=max_lifetime)
        if lifetime is not None:
            check_lifetime(lifetime, field=expires_in_field, min_lifetime=min_lifetime)
        else:
            lifetime = default_lifetime
        if token_type is None:
            sent_type = data.get("token_type")
            token_type = sent_type.strip() if isinstance(sent_type, str) and sent_type.strip() else "Bearer"
            problem = token_type_problem(token_type)
            if problem:
                raise AuthenticationException(f"token response field 'token_type' {problem}; it must be one word of visible ASCII")
        refresh = lookup(data, refresh_token_field) if refresh_token_field else None
        used = {token_field, expires_in_field, refresh_token_field or ""}
        roots = {path.split(".", 1)[0] for path in used if path and path not in data}
        return cls(
            access_token=token,
            token_type=token_type,
            expires_at=now + timedelta(seconds=lifetime) if lifetime is not None else None,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            scope=_scope_text(data.get("scope")),
            obtained_at=now,
            # The rest of the answer, minus everything that holds the token (nested paths drop their root).
            extra={k: v for k, v in data.items() if k not in used and k not in roots and k not in _STANDARD_FIELDS},
        )


def header_problem(value: Any, *, limit: int = MAX_TOKEN_LENGTH) -> str | None:
    """Why ``value`` cannot be sent as a token in a header, or ``None`` if it can.

    The answer describes the value (length, kind of character), never quotes it.
    """
    if not isinstance(value, str):
        return f"is not a string ({type(value).__name__})"
    if not value:
        return "is empty"
    if len(value) > limit:
        return f"is {len(value)} characters long, more than the {limit} allowed"
    if not _VISIBLE_ASCII.fullmatch(value):
        if any(c in value for c in "\r\n\x00"):
            return "contains a line break or NUL"
        if any(ord(c) > 0x7E for c in value):
            return "contains a non-ASCII character"
        return "contains a space or control character"
    return None


def token_type_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a ``token_type`` (one visible-ASCII word; empty means "no scheme")."""
    if value == "":
        return None
    return header_problem(value, limit=MAX_TOKEN_TYPE_LENGTH)


def validate_token(token: TokenData) -> None:
    """Raise :class:`AuthenticationException` unless ``token`` can be sent in a header.

    Run on every freshly obtained token before it is cached (the built-in parsers, the
    manager and the pipeline all call it), so a token that would fail every call is
    never stored. The caller adds the service and step to the exception.
    """
    problem = header_problem(token.access_token)
    if problem:
        raise AuthenticationException(f"the access token {problem}; it cannot be sent in a header, so it was not cached")
    problem = token_type_problem(token.token_type)
    if problem:
        raise AuthenticationException(f"the token_type {problem}; it must be one word of visible ASCII, so the token was not cached")


def check_lifetime(seconds: float, *, field: str, min_lifetime: float) -> None:
    """Refuse a lifetime the endpoint sent that is zero, negative or shorter than ``min_lifetime``."""
    if seconds <= 0:
        raise AuthenticationException(f"token response field {field!r} is {seconds:g}: the token would expire at once")
    if seconds < min_lifetime:
        raise AuthenticationException(
            f"token response field {field!r} is {seconds:g} s, shorter than the minimum token lifetime ({min_lifetime:g} s); "
            "caching it would cost a token fetch on almost every call"
        )


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """``data[path]``, else follow a dotted ``path`` through nested objects; ``None`` when absent."""
    if path in data:
        return data[path]
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_expires_in(value: Any, *, field: str = "expires_in", max_lifetime: float = DEFAULT_MAX_LIFETIME) -> float | None:
    """Seconds from an ``expires_in``-like value, ``None`` when absent; absurd values raise.

    The value is named in the message: it is a number, never a secret.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AuthenticationException(f"token response field {field!r} is not a number: {value!r}")
    if isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            raise AuthenticationException(f"token response field {field!r} is not a number: {value[:40]!r}") from None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        raise AuthenticationException(f"token response field {field!r} is not a number: {type(value).__name__}")
    if not math.isfinite(seconds):
        raise AuthenticationException(f"token response field {field!r} is not finite: {value!r}")
    if seconds < 0:
        raise AuthenticationException(f"token response field {field!r} is negative: {value!r}")
    if seconds > max_lifetime:
        raise AuthenticationException(f"token response field {field!r} is absurdly large ({value!r} s > {max_lifetime:.0f} s)")
    return seconds


def _scope_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " ".join(value) or None
    return None


def _parse_instant(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name!r} is not a datetime")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{name!r} is not finite")
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{name!r} is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name!r} is not an ISO-8601 datetime") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{name!r} lacks a timezone")
        return parsed.astimezone(timezone.utc)
    raise ValueError(f"{name!r} is not a datetime")
