"""Moved to :mod:`requestforge_django.shared.rate_limit`.

This path re-exports its names until the next minor release."""

from __future__ import annotations

import warnings

from .shared.rate_limit import *  # noqa: F403 (the old path re-exports the new module)

warnings.warn(
    "requestforge_django.shared_rate_limit is deprecated (removed in the next minor release): use requestforge_django.shared.rate_limit",
    DeprecationWarning,
    stacklevel=2,
)
