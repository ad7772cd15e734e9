"""Fixtures for the storage and admin tests: fixed Fernet keys, raw reads of encrypted columns, admin form bodies."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.urls import reverse

from requestforge_django.models import Credential

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


def url(model: str, view: str, *args: Any) -> str:
    """The admin page ``view`` (``"add"``, ``"change"``, ``"changelist"``, ...) of one of the app's models."""
    return reverse(f"admin:requestforge_django_{model}_{view}", args=args)


def errors_of(response: Any) -> str:
    """Every error message on the page (form, inline and formset errors), as text."""
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    return html_lib.unescape(" | ".join(found))


def staff(username: str, *codenames: str) -> User:
    """A staff user holding only the app's permissions ``codenames`` (none: may log in, may see nothing)."""
    user = User.objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="requestforge_django", codename__in=codenames))
    return user


def form_body(fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with ``overrides`` applied; an override ``None`` leaves the field out of the POST."""
    return {k: v for k, v in {**fields, **overrides}.items() if v is not None}


def credential_data(**overrides: Any) -> dict[str, Any]:
    """A complete POST body for the credential form (every secret blank: keep); ``None`` leaves a field out."""
    fields = {
        "name": "erp",
        "is_active": "on",
        "client_id": "erp-app",
        "username": "",
        "key_id": "",
        "scope": "",
        "extra_params": "{}",
        "allowed_origins": "",
        **{name: "" for name in Credential.SECRET_FIELDS},
    }
    return form_body(fields, overrides)


def client_data(**overrides: Any) -> dict[str, Any]:
    """A complete POST body for the client definition form; ``None`` leaves a field out."""
    fields = {
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
    return form_body(fields, overrides)
