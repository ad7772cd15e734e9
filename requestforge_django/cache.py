"""Moved to :mod:`requestforge_django.shared` (token storage, the lease, backend detection).

This path re-exports its names until the next minor release."""

from __future__ import annotations

import warnings

from .shared.errors import *  # noqa: F403 (the old path re-exports the new module)
from .shared.lease import *  # noqa: F403 (the old path re-exports the new module)
from .shared.token_storage import *  # noqa: F403 (the old path re-exports the new module)

warnings.warn(
    "requestforge_django.cache is deprecated (removed in the next minor release): use requestforge_django.shared",
    DeprecationWarning,
    stacklevel=2,
)
