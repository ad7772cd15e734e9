"""Fixtures for the storage and admin tests: fixed Fernet keys and raw reads of encrypted columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

#: Tests-only keys. KEY_A is the one in tests/settings.py.
KEY_A = "pmIUQnmBvqvM_VrE6S4HdmWZNuhK8fKOEEIIQHMSrqk="
KEY_B = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
KEY_C = "hQ7hO3m8c0yqkwHhQ0hEmrDq-Q1vGkK0mB0e7mM5Dk4="
SECRET = "s3cr3t-VALUE-that-must-never-show"


def raw_column(table: str, column: str, pk: Any) -> Any:
    """The stored value of one column, read with SQL (bypassing the field's decryption)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(table)} WHERE id = %s", [pk])
        row = cursor.fetchone()
    return row[0]


def set_raw_column(table: str, column: str, pk: Any, value: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {connection.ops.quote_name(table)} SET {connection.ops.quote_name(column)} = %s WHERE id = %s", [value, pk])


@pytest.fixture
def use_keys(settings: Any) -> Callable[..., None]:
    """``use_keys(KEY_B, KEY_A)``: set ENCRYPTION_KEYS (keeping the rest of REQUESTFORGE)."""

    def apply(*keys: str) -> None:
        settings.REQUESTFORGE = {**settings.REQUESTFORGE, "ENCRYPTION_KEYS": list(keys)}

    return apply


def client_data(**overrides: Any) -> dict[str, Any]:
    """A complete POST body for the client definition form; ``None`` leaves a field out."""
    data = {
        "name": "erp",
        "is_active": "on",
        "base_url": "https://erp.example.com",
        "timeout": "",
        "headers": "{}",
        "verify_ssl": "on",
        "ca_bundle": "",
        "retry": "",
        "circuit_breaker": "",
        "rate_limit": "",
        "hooks": "[]",
        "auth_type": "",
        "credential": "",
        "token_url": "",
        "scope": "",
        "api_key_header": "",
        "api_key_query_param": "",
        "pipeline": "",
        "excluded_paths": "[]",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
