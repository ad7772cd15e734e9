"""Moved to :mod:`requestforge_django.shared.breaker`.

This path re-exports its names until the next minor release."""

from __future__ import annotations

import warnings

from .shared.breaker import *  # noqa: F403 (the old path re-exports the new module)

warnings.warn(
    "requestforge_django.shared_breaker is deprecated (removed in the next minor release): use requestforge_django.shared.breaker",
    DeprecationWarning,
    stacklevel=2,
)
