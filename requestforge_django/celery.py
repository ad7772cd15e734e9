"""Celery beat wiring: a ready-made schedule entry for :func:`requestforge_django.tasks.refresh_due_tokens`.

In the Celery app of a Django project::

    from requestforge_django.celery import beat_schedule

    app.conf.beat_schedule = {**beat_schedule(), **your_other_entries}

or in settings with ``CELERY_BEAT_SCHEDULE = beat_schedule()`` when the app reads its
configuration from Django settings (``app.config_from_object("django.conf:settings",
namespace="CELERY")``). With django-celery-beat, create an ``IntervalSchedule`` of
``WARM_INTERVAL`` seconds and a ``PeriodicTask`` with task
``"requestforge_django.tasks.refresh_due_tokens"`` and ``expire_seconds`` set to the
same interval (``expires`` there is the date the whole schedule ends; see docs/celery.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BEAT_ENTRY_NAME", "REFRESH_TASK", "beat_schedule"]

BEAT_ENTRY_NAME = "requestforge-refresh-due-tokens"
REFRESH_TASK = "requestforge_django.tasks.refresh_due_tokens"


def beat_schedule(interval: float | None = None, *, name: str = BEAT_ENTRY_NAME, queue: str | None = None) -> dict[str, dict[str, Any]]:
    """``{name: entry}`` running the refresh every ``interval`` seconds (default: ``WARM_INTERVAL``).

    Each run expires after one interval: if workers are busy, a late run is dropped
    instead of piling up behind the next one.
    """
    if interval is None:
        from .setting.conf import requestforge_settings

        interval = float(requestforge_settings.spec.warm_interval)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    options: dict[str, Any] = {"expires": float(interval)}
    if queue is not None:
        options["queue"] = queue
    return {name: {"task": REFRESH_TASK, "schedule": float(interval), "options": options}}
