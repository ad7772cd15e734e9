"""What every token looks like right now, for ``requestforge_status``, the admin and monitoring.

One row per client and per pipeline step, read from the shared cache without
fetching anything: whether a token is cached, when it expires, a masked prefix of it
(enough to tell two tokens apart, never enough to use one), and the last fetch and
last error any process recorded (:mod:`requestforge_django.shared.status_records`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from .fencing import GONE, current_credential_version
from .http.masking import mask_secret
from .registry import Definitions, Registry, UnknownNameError, registry
from .registry.loading import OAUTH_TYPES
from .shared.status_records import TokenEventRecord, describe_error, read_status
from .tokens.data import TokenData

__all__ = ["TokenState", "TokenStatus", "describe_expiry", "format_duration", "token_statuses"]


class TokenState(str, Enum):
    """What a status row's token is, in one word: the same on the admin page, in the commands and in ``--json``."""

    CACHED = "cached"  #: a valid token is in the shared cache
    EXPIRED = "expired"  #: the cached token has expired (the next call fetches)
    MISSING = "missing"  #: no token is cached (the next call fetches)
    ERROR = "error"  #: the cache cannot be read, or the client cannot be built (``error`` / ``problem`` says why)
    STATIC = "static"  #: static credentials or no auth: there is no token
    PIPELINE = "pipeline"  #: a client authenticated by a pipeline: see the pipeline's step rows

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TokenStatus:
    """The state of one client's token or one pipeline step's token.

    ``cached`` is ``None`` when the cache could not be read (``error`` says why) or
    when the client cannot be built (``problem`` says why: its credential is missing
    or inactive, cannot be decrypted, or is not bound to where the client sends it;
    the cache itself is fine then). ``auth`` is the client's AUTH TYPE
    (``"pipeline-step"`` for a step row); clients with static credentials
    (``api_key``, ``bearer``, ``basic``) or none have no token.
    """

    name: str
    kind: str  # "client" | "pipeline"
    step: str | None
    source: str  # "settings" | "database"
    auth: str
    uses_tokens: bool
    cached: bool | None = None
    expires_at: datetime | None = None
    expires_in: float | None = None
    token: str | None = None  # masked
    last_obtained_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    error: str | None = None
    problem: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.step}" if self.step else self.name

    @property
    def state(self) -> TokenState:
        """The row's :class:`TokenState`."""
        if self.problem or self.error:
            return TokenState.ERROR
        if self.auth == "pipeline":
            return TokenState.PIPELINE
        if not self.uses_tokens:
            return TokenState.STATIC
        if not self.cached:
            return TokenState.MISSING
        if self.expires_in is not None and self.expires_in <= 0:
            return TokenState.EXPIRED
        return TokenState.CACHED

    @property
    def state_text(self) -> str:
        """The state as every surface shows it, e.g. ``"cached"``, ``"not cached"`` or ``"static credentials"``."""
        state = self.state
        if state is TokenState.ERROR:
            return self.problem or f"cache unreadable: {self.error}"
        if state is TokenState.STATIC:
            return "no auth" if self.auth == "none" else "static credentials"
        return _STATE_TEXT[state]

    @property
    def expiry(self) -> str:
        """``"expires in 59 min 58 s"``, ``"expired 3 s ago"`` or ``"-"`` (see :func:`describe_expiry`)."""
        return describe_expiry(self.expires_in)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings, ``expires_in`` in seconds, ``state`` a :class:`TokenState` value."""
        row = {key: value.isoformat() if isinstance(value, datetime) else value for key, value in asdict(self).items()}
        row["state"] = self.state.value
        return row


_STATE_TEXT = {
    TokenState.CACHED: "cached",
    TokenState.EXPIRED: "cached (expired)",
    TokenState.MISSING: "not cached",
    TokenState.PIPELINE: "via its pipeline",
}


def token_statuses(names: Iterable[str] | None = None, *, using: Registry | None = None) -> list[TokenStatus]:
    """Rows for ``names`` (clients or pipelines; default: every client, then every pipeline).

    Raises :class:`UnknownNameError` for a name that is neither.
    """
    reg = using or registry
    definitions = reg.definitions()
    selected = list(names) if names is not None else [*definitions.clients, *definitions.pipelines]
    rows: list[TokenStatus] = []
    for name in selected:
        if name in definitions.clients:
            rows.append(_client_row(reg, definitions, name))
        elif name in definitions.pipelines:
            rows.extend(_step_rows(reg, definitions, name))
        else:
            raise UnknownNameError("client or pipeline", name, [*definitions.clients, *definitions.pipelines])
    return rows


def _client_row(reg: Registry, definitions: Definitions, name: str) -> TokenStatus:
    spec = definitions.clients[name]
    auth = spec.auth.type if spec.auth is not None else "none"
    base: dict[str, Any] = {"name": name, "kind": "client", "step": None, "source": definitions.sources.get(name, "settings"), "auth": auth}
    if auth not in OAUTH_TYPES:
        return TokenStatus(**base, uses_tokens=auth == "pipeline")
    row = TokenStatus(**base, uses_tokens=True)
    credential = spec.auth.credential if spec.auth is not None else None
    if credential and current_credential_version(credential) == GONE:
        return _with_token(row, definitions, None, problem=f'credential "{credential}" missing or inactive')
    try:
        manager = reg.get_token_manager(name)
    except Exception as exc:  # not a cache problem: the client cannot be built (undecryptable, unbound credential)
        return _with_token(row, definitions, None, problem=describe_error(exc))
    return _with_token(row, definitions, manager.peek_token)


def _step_rows(reg: Registry, definitions: Definitions, name: str) -> list[TokenStatus]:
    source = definitions.sources.get(name, "settings")
    rows = []
    for step in definitions.pipelines[name].steps:
        row = TokenStatus(name=name, kind="pipeline", step=step.name, source=source, auth="pipeline-step", uses_tokens=True)
        rows.append(_with_token(row, definitions, lambda step=step.name: reg.get_pipeline(name).peek_step(step)))
    return rows


def _with_token(row: TokenStatus, definitions: Definitions, peek: Any, *, problem: str | None = None) -> TokenStatus:
    settings = definitions.settings
    record: TokenEventRecord = read_status(settings.cache, settings.key_prefix, row.name, row.step)
    changes: dict[str, Any] = {
        "last_obtained_at": _as_datetime(record.last_obtained_at),
        "last_error": record.last_error,
        "last_error_at": _as_datetime(record.last_error_at),
    }
    if problem is not None:
        return replace(row, problem=problem, **changes)
    try:
        token: TokenData | None = peek()
    except Exception as exc:  # an unreachable cache: show it, do not crash the page
        return replace(row, error=describe_error(exc), **changes)
    if token is None:
        return replace(row, cached=False, **changes)
    left = token.seconds_left()
    return replace(
        row,
        cached=True,
        expires_at=token.expires_at,
        expires_in=None if left is None else round(left, 1),
        token=mask_secret(token.access_token),
        **changes,
    )


def _as_datetime(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc)


def format_duration(seconds: float | None) -> str:
    """A duration as every surface writes it: ``"42 s"``, ``"59 min 58 s"``, ``"1 h 00 min"`` (``"-"`` for none).

    The sign is dropped: :func:`describe_expiry` says which side of now it is on.
    """
    if seconds is None:
        return "-"
    value = abs(round(float(seconds)))
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def describe_expiry(seconds: float | None) -> str:
    """Time left on a token, the same on the admin page and in the commands' text output.

    ``"expires in 59 min 58 s"``, ``"expired 3 s ago"``, or ``"-"`` when there is no
    token or it never expires. (``--json`` keeps ``expires_in`` as a number of seconds.)
    """
    if seconds is None:
        return "-"
    if seconds <= 0:
        return f"expired {format_duration(seconds)} ago"
    return f"expires in {format_duration(seconds)}"
