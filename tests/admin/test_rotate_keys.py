"""``manage.py requestforge_rotate_keys``: re-encrypt with the first key, all or nothing, counts only."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from requestforge_django.encryption import decrypt, encrypt, fingerprint
from requestforge_django.models import Credential
from tests.admin.conftest import KEY_A, KEY_B, KEY_C, SECRET, raw_column, set_raw_column

pytestmark = pytest.mark.django_db
TABLE = Credential._meta.db_table
COLUMNS = ("client_secret", "password", "api_key", "token")


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("requestforge_rotate_keys", *args, stdout=out)
    return out.getvalue()


def make_rows(count: int) -> list[Credential]:
    return [
        Credential.objects.create(name=f"c{i}", client_secret=f"{SECRET}-{i}", token=f"{SECRET}-t{i}" if i % 2 else "")
        for i in range(count)
    ]


def snapshot() -> dict[tuple[int, str], Any]:
    return {(c.pk, col): raw_column(TABLE, col, c.pk) for c in Credential.objects.all() for col in COLUMNS}


def test_rotate_then_drop_the_old_key_every_row_still_reads(use_keys: Any) -> None:
    use_keys(KEY_A)
    rows = make_rows(7)
    before = snapshot()
    use_keys(KEY_B, KEY_A)
    output = rotate("--batch-size", "3")
    assert f"encrypting with {fingerprint(KEY_B)}" in output
    assert "requestforge_django.Credential: 10 values in 7 rows re-encrypted." in output
    assert SECRET not in output
    after = snapshot()
    for key, value in before.items():
        if value:
            assert after[key] != value  # new ciphertext
        else:
            assert after[key] == ""  # empty stays empty

    use_keys(KEY_B)  # the old key is gone
    for row in rows:
        loaded = Credential.objects.get(pk=row.pk)
        assert loaded.client_secret == row.client_secret
        assert loaded.token == row.token


def test_dry_run_changes_nothing(use_keys: Any) -> None:
    make_rows(3)
    before = snapshot()
    use_keys(KEY_B, KEY_A)
    output = rotate("--dry-run")
    assert "4 values in 3 rows would be re-encrypted" in output
    assert snapshot() == before


def test_an_undecryptable_row_fails_naming_it_and_nothing_changes(use_keys: Any) -> None:
    rows = make_rows(4)
    use_keys(KEY_C)
    stranger = encrypt("from another key set")
    use_keys(KEY_A)
    set_raw_column(TABLE, "password", rows[2].pk, stranger)
    before = snapshot()
    use_keys(KEY_B, KEY_A)
    for args in ((), ("--dry-run",)):
        with pytest.raises(CommandError) as info:
            rotate(*args)
        message = str(info.value)
        assert f'requestforge_django.Credential pk={rows[2].pk} field "password"' in message
        assert fingerprint(KEY_A) in message and fingerprint(KEY_B) in message
        assert "nothing was changed" in message
        assert SECRET not in message and stranger not in message and "another key set" not in message
        assert snapshot() == before  # rolled back


def test_missing_keys_fail_cleanly(settings: Any) -> None:
    settings.REQUESTFORGE = {}
    with pytest.raises(CommandError, match="E009"):
        rotate()


def test_rotating_an_empty_database_is_fine() -> None:
    assert "0 values in 0 rows re-encrypted" in rotate()
    assert decrypt(encrypt("x")) == "x"
