"""Signals about the token lifecycle, for metrics, audit logs and alerting.

The registry's token observer sends them (``sender`` is
:class:`~requestforge_django.shared.SignalTokenObserver`; the ``name`` kwarg says
which client or pipeline); this module only defines them so that receivers can be connected
without importing anything heavy. They are sent in the process where the event
happened: a refresh done by a Celery worker is signalled in that worker.

No signal ever carries a token or a secret: receivers get the name, the step and
the expiry, which is enough to observe the lifecycle, and a receiver that logs its
kwargs wholesale cannot leak a credential.

``token_obtained``
    A new token was fetched from an endpoint (not served from the cache).
    kwargs: ``name`` (str, the client or pipeline name), ``step`` (str, the pipeline
    step, or ``None`` for a client's token), ``expires_at`` (aware ``datetime``, or
    ``None`` when the token does not expire).

``token_invalidated``
    A cached token was dropped, in the cache shared by every process.
    kwargs: ``name``, ``step`` (as above; for a pipeline invalidation that cascades,
    one signal per dropped step), ``reason`` (str: e.g. ``"manual"``, ``"rejected"``
    (the API answered 401), ``"credential_changed"``, ``"definition_changed"``).

``token_refresh_failed``
    Fetching a token failed (after the fetcher's own retries).
    kwargs: ``name``, ``step`` (as above), ``error`` (the exception; its ``str()`` is
    already masked, so it is safe to log).

Example::

    from django.dispatch import receiver
    from requestforge_django.signals import token_refresh_failed

    @receiver(token_refresh_failed)
    def alert(sender, name, step, error, **kwargs):
        logger.error("token refresh failed for %s/%s: %s", name, step, error)
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["token_invalidated", "token_obtained", "token_refresh_failed"]

#: kwargs: ``name``, ``step``, ``expires_at``.
token_obtained = Signal()
#: kwargs: ``name``, ``step``, ``reason``.
token_invalidated = Signal()
#: kwargs: ``name``, ``step``, ``error`` (masked).
token_refresh_failed = Signal()
