"""``requestforge_django.encryption`` and ``EncryptedTextField``: secrets are ciphertext at rest, errors name rows, not values."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from requestforge_django import encryption
from requestforge_django.encryption import (
    DecryptionError,
    EncryptionError,
    EncryptionKeysMissing,
    InvalidEncryptionKey,
    decrypt,
    encrypt,
    fingerprint,
)
from requestforge_django.fields import CIPHERTEXT_PREFIX, Ciphertext, EncryptedTextField, secret_state
from requestforge_django.models import Credential
from tests.admin.conftest import KEY_A, KEY_B, KEY_C, SECRET, raw_column, set_raw_column

TABLE = Credential._meta.db_table

# -- the key set ------------------------------------------------------------------------------------


def test_encrypt_decrypt_round_trip_with_the_first_key() -> None:
    token = encrypt(SECRET)
    assert SECRET not in token
    assert token != encrypt(SECRET)  # a random IV each time
    assert decrypt(token) == SECRET


def test_every_key_decrypts_the_first_encrypts(use_keys: Any) -> None:
    use_keys(KEY_A)
    old = encrypt(SECRET)
    use_keys(KEY_B, KEY_A)
    assert decrypt(old) == SECRET
    new = encrypt(SECRET)
    use_keys(KEY_B)
    assert decrypt(new) == SECRET
    with pytest.raises(DecryptionError):
        decrypt(old)


def test_the_key_set_is_cached_and_dropped_on_reload(use_keys: Any) -> None:
    use_keys(KEY_A)
    first = encryption._get()
    assert encryption._get() is first
    use_keys(KEY_B)
    assert encryption._get() is not first
    assert encryption.ensure_keys() == (fingerprint(KEY_B),)


def test_fingerprints_are_short_stable_and_not_the_key() -> None:
    assert fingerprint(KEY_A) == fingerprint(KEY_A.encode())
    assert len(fingerprint(KEY_A)) == 8 and fingerprint(KEY_A) not in KEY_A
    assert fingerprint(KEY_A) != fingerprint(KEY_B)


def test_missing_keys_raise_a_clear_configuration_error() -> None:
    for setting in ({}, {"ENCRYPTION_KEYS": []}):
        with override_settings(REQUESTFORGE=setting):
            with pytest.raises(EncryptionKeysMissing, match=r"ENCRYPTION_KEYS.*requestforge\.E009") as info:
                encrypt(SECRET)
            assert isinstance(info.value, ImproperlyConfigured) and isinstance(info.value, EncryptionError)
            assert "Fernet.generate_key()" in str(info.value)


def test_an_invalid_key_is_named_by_index_never_by_value() -> None:
    setting = {"ENCRYPTION_KEYS": [KEY_A, SECRET]}
    with override_settings(REQUESTFORGE=setting), pytest.raises(InvalidEncryptionKey, match=r'\["ENCRYPTION_KEYS"\]\[1\].*E007') as info:
        encrypt("x")
    assert SECRET not in str(info.value)


def test_decryption_error_names_row_field_and_key_set_but_no_secret() -> None:
    token = encrypt(SECRET)
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": [KEY_B, KEY_C]}), pytest.raises(DecryptionError) as info:
        decrypt(token, model="requestforge_django.Credential", pk=7, field="password")
    error = info.value
    assert (error.model, error.pk, error.field, error.fingerprints) == (
        "requestforge_django.Credential",
        7,
        "password",
        (fingerprint(KEY_B), fingerprint(KEY_C)),
    )
    text = str(error)
    assert 'requestforge_django.Credential pk=7 field "password"' in text
    assert fingerprint(KEY_B) in text and fingerprint(KEY_C) in text
    for secret in (SECRET, token, KEY_A, KEY_B, KEY_C):
        assert secret not in text


# -- the field ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_column_never_holds_the_secret() -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app", client_secret=SECRET, password=SECRET + "2")
    for column in ("client_secret", "password"):
        stored = raw_column(TABLE, column, credential.pk)
        assert SECRET not in stored
        assert decrypt(stored).startswith(SECRET)
    assert raw_column(TABLE, "client_id", credential.pk) == "erp-app"
    loaded = Credential.objects.get(pk=credential.pk)
    assert (loaded.client_secret, loaded.password) == (SECRET, SECRET + "2")
    assert Credential.objects.values_list("client_secret", flat=True).get() == SECRET


@pytest.mark.django_db
def test_empty_values_stay_empty_and_are_not_encrypted() -> None:
    credential = Credential.objects.create(name="erp", client_secret="")
    assert raw_column(TABLE, "client_secret", credential.pk) == ""
    assert Credential.objects.get().client_secret == ""
    assert secret_state(credential, "client_secret") == "empty"
    assert Credential.objects.filter(client_secret="").count() == 1
    assert Credential.objects.exclude(client_secret="").count() == 0


@pytest.mark.django_db
def test_a_row_encrypted_with_an_unknown_key_fails_on_access_only_naming_row_and_field(use_keys: Any) -> None:
    Credential.objects.create(name="good", client_secret=SECRET)
    bad = Credential.objects.create(name="bad", client_id="bad-app", password="x")
    use_keys(KEY_C)
    stranger = encrypt("from another key set")
    use_keys(KEY_A)
    set_raw_column(TABLE, "password", bad.pk, stranger)

    rows = {c.name: c for c in Credential.objects.all()}  # loading every row works
    assert rows["good"].client_secret == SECRET
    assert rows["bad"].client_id == "bad-app"
    assert secret_state(rows["bad"], "password") == "unreadable"
    with pytest.raises(DecryptionError) as info:
        _ = rows["bad"].password
    assert (info.value.model, info.value.pk, info.value.field) == ("requestforge_django.Credential", bad.pk, "password")
    assert info.value.fingerprints == (fingerprint(KEY_A),)
    assert f'pk={bad.pk} field "password"' in str(info.value)
    with pytest.raises(DecryptionError):
        rows["bad"].auth_values()

    # Saving another field keeps the unreadable ciphertext as it was.
    rows["bad"].client_id = "renamed"
    rows["bad"].save()
    assert raw_column(TABLE, "password", bad.pk) == stranger
    # Once the key is back, the value reads fine.
    use_keys(KEY_A, KEY_C)
    assert Credential.objects.get(pk=bad.pk).password == "from another key set"


@pytest.mark.django_db
def test_rows_stay_loadable_without_keys_and_the_error_says_so(settings: Any) -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app", token=SECRET)
    settings.REQUESTFORGE = {}
    loaded = Credential.objects.get(pk=credential.pk)
    assert loaded.client_id == "erp-app"
    with pytest.raises(EncryptionKeysMissing):
        _ = loaded.token


@pytest.mark.django_db
def test_filtering_by_a_secret_value_is_refused() -> None:
    Credential.objects.create(name="erp", client_secret=SECRET)
    with pytest.raises(FieldError, match="can only be compared with"):
        Credential.objects.filter(client_secret=SECRET).count()
    with pytest.raises(FieldError):
        Credential.objects.filter(client_secret__icontains="s3").count()
    assert Credential.objects.filter(client_secret__isnull=False).count() == 1


@pytest.mark.django_db
def test_dumpdata_writes_ciphertext_and_loaddata_reads_it_back(tmp_path: Path) -> None:
    Credential.objects.create(name="erp", client_secret=SECRET, password="")
    out = StringIO()
    call_command("dumpdata", "requestforge_django.credential", stdout=out)
    assert SECRET not in out.getvalue()
    fields = json.loads(out.getvalue())[0]["fields"]
    assert fields["client_secret"].startswith(CIPHERTEXT_PREFIX) and fields["password"] == ""

    Credential.objects.all().delete()
    fixture = tmp_path / "credentials.json"
    fixture.write_text(out.getvalue())
    call_command("loaddata", str(fixture), verbosity=0)
    loaded = Credential.objects.get(name="erp")
    assert loaded.client_secret == SECRET
    assert SECRET not in raw_column(TABLE, "client_secret", loaded.pk)


def test_ciphertext_marker_hides_its_value() -> None:
    marker = Ciphertext("gAAAA-not-shown")
    assert "gAAAA" not in repr(marker)


def test_deconstruct_and_the_migration_contain_no_key() -> None:
    _name, path, args, kwargs = EncryptedTextField(blank=True).deconstruct()
    assert path == "requestforge_django.fields.EncryptedTextField"
    assert (args, kwargs) == ([], {"blank": True})
    migration = (Path(__file__).resolve().parents[2] / "requestforge_django" / "migrations" / "0001_initial.py").read_text()
    for key in (KEY_A, KEY_B, "ENCRYPTION_KEYS", "SECRET_KEY"):
        assert key not in migration
