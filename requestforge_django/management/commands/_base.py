"""What every ``requestforge_*`` command shares: unknown names become a clean ``CommandError``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from ...registry import UnknownNameError

T = TypeVar("T")


def run_or_fail(action: Callable[[], T]) -> T:
    """``action()``, with configuration mistakes reported as one line and a non-zero exit (no traceback)."""
    try:
        return action()
    except (UnknownNameError, ImproperlyConfigured) as exc:
        raise CommandError(str(exc)) from exc


def format_seconds(seconds: Any) -> str:
    """``"59m 58s"``-style durations for the human-readable tables."""
    if seconds is None:
        return "-"
    value = round(float(seconds))
    sign = "-" if value < 0 else ""
    value = abs(value)
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"
