"""Moved to :mod:`requestforge_django.checks` (``.encryption`` and ``.database``); this path keeps working."""

from __future__ import annotations

import warnings

from .checks import (
    check_credential_bindings,
    check_credentials_exist,
    check_definition_names,
    check_encryption_keys,
)
from .checks import register_database_checks as register_encryption_checks
from .setting.ids import E_CREDENTIAL_ORIGIN, E_DEFINED_TWICE, E_KEYS_MISSING, W_CREDENTIAL_MISSING

__all__ = [
    "E_CREDENTIAL_ORIGIN",
    "E_DEFINED_TWICE",
    "E_KEYS_MISSING",
    "W_CREDENTIAL_MISSING",
    "check_credential_bindings",
    "check_credentials_exist",
    "check_definition_names",
    "check_encryption_keys",
    "register_encryption_checks",
]

warnings.warn(
    "requestforge_django.checks_encryption is deprecated (removed in the next minor release): use requestforge_django.checks",
    DeprecationWarning,
    stacklevel=2,
)
