"""Moved to :mod:`requestforge_django.setting.specs` (``DEFAULTS``: :mod:`requestforge_django.setting.keys`).

This path re-exports its names until the next minor release."""

from __future__ import annotations

import warnings

from .setting.keys import DEFAULTS as DEFAULTS
from .setting.specs import *  # noqa: F403 (the old path re-exports the new module)

warnings.warn(
    "requestforge_django.specs is deprecated (removed in the next minor release): use requestforge_django.setting.specs",
    DeprecationWarning,
    stacklevel=2,
)
