"""How the token layer tells the outside world what happened, without knowing who listens.

The framework-free token code must not import Django, yet the Django layer wants to
send ``token_obtained`` / ``token_invalidated`` / ``token_refresh_failed`` signals and
the admin wants "last refresh / last error". So the token cache calls a small
observer object; the Django layer passes one that sends signals.

Observers are notified *after* the fact and must never break the token flow: an
exception raised by an observer is logged and swallowed (see :func:`notify`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .data import TokenData

logger = logging.getLogger("requestforge_django.tokens")


class TokenObserver:
    """Base observer: every method is a no-op, override the ones you care about.

    ``key`` is the storage key of the token (``"token:billing"`` for a manager,
    ``"<prefix>:<step>"`` for a pipeline step), so one observer can serve many caches.
    """

    def on_obtained(self, key: str, token: TokenData) -> None:
        """A new token was fetched and stored under ``key`` (called once per fetch, by the fetching process)."""

    def on_invalidated(self, key: str, reason: str = "manual") -> None:
        """The token under ``key`` was deliberately removed.

        ``reason`` says why: ``"manual"`` (a caller asked), ``"rejected"`` (the server
        refused the token and no replacement could be fetched), or whatever the caller
        of :meth:`~.single_flight.SingleFlightTokenCache.invalidate` passed.
        """

    def on_refresh_error(self, key: str, exc: BaseException) -> None:
        """Fetching a token for ``key`` failed; called whether or not a still-valid token was served instead."""


class CallbackTokenObserver(TokenObserver):
    """An observer built from plain callables, for callers who prefer functions to a subclass."""

    def __init__(
        self,
        on_obtained: Callable[[str, TokenData], None] | None = None,
        on_invalidated: Callable[[str, str], None] | None = None,
        on_refresh_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self._on_obtained = on_obtained
        self._on_invalidated = on_invalidated
        self._on_refresh_error = on_refresh_error

    def on_obtained(self, key: str, token: TokenData) -> None:
        if self._on_obtained is not None:
            self._on_obtained(key, token)

    def on_invalidated(self, key: str, reason: str = "manual") -> None:
        if self._on_invalidated is not None:
            self._on_invalidated(key, reason)

    def on_refresh_error(self, key: str, exc: BaseException) -> None:
        if self._on_refresh_error is not None:
            self._on_refresh_error(key, exc)


def notify(observer: TokenObserver | None, event: str, *args: object) -> None:
    """Call ``observer.<event>(*args)``; a failing observer is logged, never propagated."""
    if observer is None:
        return
    try:
        getattr(observer, event)(*args)
    except Exception:
        logger.exception("Token observer %s.%s failed; ignoring it", type(observer).__name__, event)
