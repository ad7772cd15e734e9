"""Where token events go in the Django layer: the public signals and a shared status record.

The framework-free token caches report what happens to a :class:`TokenObserver`;
:class:`SignalTokenObserver` is the one the registry gives them. For every event it

* sends the matching signal of :mod:`requestforge_django.signals`, in this process,
  with the client or pipeline name and step (never the token), and
* updates a small status record in the shared cache (last obtained, last error and
  when), so ``requestforge_status``, the admin and any other process can show what
  the process that did the fetch saw.

A failure to write the record is logged and ignored: status is a convenience, the
token flow must not depend on it.

Every text a record holds goes through :func:`describe_error` / :func:`mask_record_text`
(when written, and again when read, for records written by an older version): the
record is shown by ``requestforge_status``, the admin status page and monitoring, and
an exception's text may carry what a token endpoint echoed back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches

from ..http.exceptions import redact_exception
from ..http.masking import mask_text
from ..tokens.data import TokenData
from ..tokens.observer import TokenObserver

logger = logging.getLogger("requestforge_django")

#: How long a status record outlives its last update (a week: "last error" stays visible).
STATUS_TTL = 7 * 24 * 3600
#: Longest error text kept in a status record.
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class TokenEventRecord:
    """The shared status of one token (a client's, or one pipeline step's); times are Unix seconds."""

    last_obtained_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    last_invalidated_at: float | None = None
    last_invalidated_reason: str | None = None

    @classmethod
    def from_cache(cls, value: Any) -> TokenEventRecord:
        if not isinstance(value, Mapping):
            return cls()
        known = {name: value.get(name) for name in cls.__dataclass_fields__}
        for name in ("last_error", "last_invalidated_reason"):
            known[name] = mask_record_text(known[name])
        return cls(**known)

    def to_cache(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def status_key(key_prefix: str, name: str, step: str | None) -> str:
    return f"{key_prefix}:status:{name}:{step or '-'}"


def read_status(cache_alias: str, key_prefix: str, name: str, step: str | None) -> TokenEventRecord:
    """The record for ``name``/``step``; empty when never written or when the cache is unreachable."""
    try:
        return TokenEventRecord.from_cache(caches[cache_alias].get(status_key(key_prefix, name, step)))
    except Exception as exc:
        logger.warning("Could not read token status %s/%s from cache %r (%s)", name, step, cache_alias, type(exc).__name__)
        return TokenEventRecord()


class SignalTokenObserver(TokenObserver):
    """Observer of one client's or pipeline's token cache.

    ``steps_by_key`` maps storage keys to pipeline step names (``None`` for a
    client's own token); events for other keys are ignored.
    """

    def __init__(self, name: str, steps_by_key: Mapping[str, str | None], *, cache_alias: str, key_prefix: str) -> None:
        self.name = name
        self._steps_by_key = dict(steps_by_key)
        self._cache_alias = cache_alias
        self._key_prefix = key_prefix

    def on_obtained(self, key: str, token: TokenData) -> None:
        from ..signals import token_obtained

        if key not in self._steps_by_key:
            return
        step = self._steps_by_key[key]
        self._record(step, last_obtained_at=time.time())
        token_obtained.send(sender=self.__class__, name=self.name, step=step, expires_at=token.expires_at)

    def on_invalidated(self, key: str, reason: str = "manual") -> None:
        from ..signals import token_invalidated

        if key not in self._steps_by_key:
            return
        step = self._steps_by_key[key]
        self._record(step, last_invalidated_at=time.time(), last_invalidated_reason=mask_record_text(reason))
        token_invalidated.send(sender=self.__class__, name=self.name, step=step, reason=reason)

    def on_refresh_error(self, key: str, exc: BaseException) -> None:
        from ..signals import token_refresh_failed

        if key not in self._steps_by_key:
            return
        step = self._steps_by_key[key]
        self._record(step, last_error=describe_error(exc), last_error_at=time.time())
        token_refresh_failed.send(sender=self.__class__, name=self.name, step=step, error=exc)

    def _record(self, step: str | None, **changes: Any) -> None:
        key = status_key(self._key_prefix, self.name, step)
        try:
            cache = caches[self._cache_alias]
            record = TokenEventRecord.from_cache(cache.get(key)).to_cache()
            record.update(changes)
            cache.set(key, record, timeout=STATUS_TTL)
        except Exception as exc:
            logger.warning("Could not record token status %s/%s in cache %r (%s)", self.name, step, self._cache_alias, type(exc).__name__)

    def __repr__(self) -> str:
        return f"SignalTokenObserver(name={self.name!r})"


def describe_error(exc: BaseException, secrets: tuple[object, ...] = ()) -> str:
    """``"TypeName: message"``, masked and shortened: the one way an error becomes status text.

    A foreign exception is reduced to its redacted stand-in first (its message may
    quote a URL with its query); then the text is masked as free text
    (:func:`~requestforge_django.http.masking.mask_text`: query values, URL passwords,
    ``Bearer`` credentials, ``secret_name=value`` pairs) plus ``secrets``.
    """
    shown = redact_exception(exc) or exc
    try:
        message = str(shown)
    except Exception:
        message = "(message unavailable)"
    return mask_record_text(f"{type(shown).__name__}: {message}", secrets) or ""


def mask_record_text(text: str | None, secrets: tuple[object, ...] = ()) -> str | None:
    """Status text as it may be stored and shown: masked (see :func:`describe_error`) and at most ``MAX_ERROR_LENGTH`` long."""
    if not isinstance(text, str):
        return None if text is None else mask_record_text(str(text), secrets)
    text = mask_text(text, secrets)
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "\u2026"
    return text


__all__ = ["SignalTokenObserver", "TokenEventRecord", "describe_error", "mask_record_text", "read_status", "status_key"]
