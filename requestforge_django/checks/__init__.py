"""Every system check of the app (``manage.py check``), registered by one function.

* :mod:`.settings`: the ``REQUESTFORGE`` setting (the rules live in
  :mod:`requestforge_django.setting`; ids and fixes in ``docs/checks.md``);
* :mod:`.database`: definitions and credentials stored in the database (E031, E043, W008);
* :mod:`.encryption`: encryption keys that stored secrets need (E009).

All carry the tag :data:`CHECK_TAG` (``manage.py check --tag requestforge``); the ones
that read the database also carry Django's ``database`` tag and run only when the check
framework is given databases.
"""

from __future__ import annotations

from django.core import checks

from .base import CHECK_TAG
from .database import check_credential_bindings, check_credentials_exist, check_definition_names, check_subject_bindings
from .encryption import check_encryption_keys
from .settings import check_settings, to_check_message

__all__ = [
    "CHECK_TAG",
    "check_credential_bindings",
    "check_credentials_exist",
    "check_definition_names",
    "check_encryption_keys",
    "check_settings",
    "check_subject_bindings",
    "register_checks",
    "register_database_checks",
    "to_check_message",
]


def register_database_checks() -> None:
    """Register the checks that read the database (tags ``requestforge`` and ``database``); idempotent."""
    checks.register(check_encryption_keys, CHECK_TAG, checks.Tags.database)
    checks.register(check_definition_names, CHECK_TAG, checks.Tags.database)
    checks.register(check_credential_bindings, CHECK_TAG, checks.Tags.database)
    checks.register(check_subject_bindings, CHECK_TAG, checks.Tags.database)
    checks.register(check_credentials_exist, CHECK_TAG, checks.Tags.database)


def register_checks() -> None:
    """Register every check of the app; idempotent (Django's registry holds each function once)."""
    checks.register(check_settings, CHECK_TAG)
    register_database_checks()
