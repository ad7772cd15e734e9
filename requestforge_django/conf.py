"""Moved to :mod:`requestforge_django.setting.conf`.

This path re-exports its names until the next minor release."""

from __future__ import annotations

import warnings

from .setting.conf import *  # noqa: F403 (the old path re-exports the new module)

warnings.warn(
    "requestforge_django.conf is deprecated (removed in the next minor release): use requestforge_django.setting.conf",
    DeprecationWarning,
    stacklevel=2,
)
