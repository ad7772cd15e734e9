"""Celery tasks that keep every token warm, so no request ever waits for a token endpoint.

Schedule :func:`refresh_due_tokens` with :func:`requestforge_django.celery.beat_schedule`
at an interval shorter than ``REFRESH_AHEAD`` (the ``requestforge.W006`` check says when
it is not). Each run renews every token that is missing or inside its refresh-ahead
window, under the same cross-process lease as the request path (see
:mod:`requestforge_django.warming`), which is what makes the task

* idempotent: a second run a moment later finds every token fresh and fetches nothing;
* safe with two beat processes (a mistake that happens in real deployments): both
  runs compete for the same leases, so each token is still fetched once;
* harmless when late: the schedule entry expires runs older than one interval,
  because a queue of stale runs would only repeat the same work.

A failed renewal leaves the still-valid token in place and sends
``token_refresh_failed`` (from the worker that tried); the next run tries again.
Results are ignored (``ignore_result``): the outcome is in the logs, the signals and
``manage.py requestforge_status``, not in a result backend.
"""

from __future__ import annotations

import logging

from celery import shared_task

from .operations import WarmResult, warm

logger = logging.getLogger("requestforge_django.tasks")

__all__ = ["refresh_due_tokens", "warm_token"]


def _summary(results: list[WarmResult]) -> dict[str, str]:
    for result in results:
        if result.status in ("renewed", "failed", "error"):
            log = logger.info if result.ok else logger.warning
            log("Token %s: %s%s", result.label, result.status, f" ({result.error})" if result.error else "")
    return {result.label: result.status for result in results}


@shared_task(name="requestforge_django.tasks.refresh_due_tokens", ignore_result=True)
def refresh_due_tokens() -> dict[str, str]:
    """Renew every token of ``WARM`` (default: every token-backed client and pipeline) that is due."""
    return _summary(warm())


@shared_task(name="requestforge_django.tasks.warm_token", ignore_result=True)
def warm_token(name: str) -> dict[str, str]:
    """Renew the token(s) of one client or pipeline if due (e.g. right after a credential changed)."""
    return _summary(warm([name]))
