"""Moved to :mod:`requestforge_django.shared.status_records`; this path keeps working."""

from __future__ import annotations

import warnings

from .shared.status_records import (
    MAX_ERROR_LENGTH,
    STATUS_TTL,
    SignalTokenObserver,
    TokenEventRecord,
    describe_error,
    mask_record_text,
    read_status,
    status_key,
)

__all__ = [
    "MAX_ERROR_LENGTH",
    "STATUS_TTL",
    "SignalTokenObserver",
    "TokenEventRecord",
    "describe_error",
    "mask_record_text",
    "read_status",
    "status_key",
]

warnings.warn(
    "requestforge_django.token_events is deprecated (removed in the next minor release): use requestforge_django.shared.status_records",
    DeprecationWarning,
    stacklevel=2,
)
