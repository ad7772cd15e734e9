"""What every ``requestforge_*`` command shares: unknown names become a clean ``CommandError``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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
