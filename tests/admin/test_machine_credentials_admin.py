"""Issue 17 in the admin: ``Credential.private_key`` (encrypted, write-only, rotated, E009) and ``key_id``; definitions
that choose client assertions, JWT-bearer, token exchange and ISSUER, checked like settings.

A canary private key is stored through the admin form and then looked for (any line of its
base64 body, and its ciphertext) on every page that shows the credential.
"""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.core.checks.registry import CheckRegistry
from django.core.management import call_command
from django.test import Client, override_settings

from requestforge_django.admin import ClientDefinitionForm
from requestforge_django.checks import CHECK_TAG, check_encryption_keys
from requestforge_django.encryption import decrypt
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.setting.validate import parse_client
from tests.admin.conftest import KEY_A, KEY_B, client_data, credential_data, errors_of, raw_column, staff, url

pytestmark = pytest.mark.django_db

TABLE = Credential._meta.db_table
API = "https://erp.example.com"
TOKEN_URL = "https://auth.example.com/oauth/token"
ISSUER = "https://auth.example.com"
CANARY_KEY = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
)
EC_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
KEY_LINES = [line for line in CANARY_KEY.splitlines() if not line.startswith("-----")]


def assert_no_key(text: str, *ciphertexts: str) -> None:
    for line in KEY_LINES:
        assert line not in text
    for ciphertext in ciphertexts:
        assert not ciphertext or ciphertext not in text


# -- the credential's private key ---------------------------------------------------------------------


def test_a_private_key_entered_in_the_admin_is_stored_encrypted_and_never_shown(admin_client: Client) -> None:
    response = admin_client.post(url("credential", "add"), credential_data(private_key=CANARY_KEY, key_id="k-2025"))
    assert response.status_code == 302, errors_of(response)
    credential = Credential.objects.get(name="erp")
    assert credential.private_key.strip() == CANARY_KEY.strip() and credential.key_id == "k-2025"
    stored = raw_column(TABLE, "private_key", credential.pk)
    assert_no_key(stored)
    assert decrypt(stored).strip() == CANARY_KEY.strip()
    pages = [url("credential", "change", credential.pk), url("credential", "changelist"), url("credential", "history", credential.pk)]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        assert_no_key(response.content.decode(), stored)
    change = admin_client.get(url("credential", "change", credential.pk)).content.decode()
    assert re.search(r'<textarea[^>]*name="private_key"[^>]*>\s*</textarea>', change)
    assert "k-2025" in change  # the key id is not a secret
    listing = admin_client.get(url("credential", "changelist")).content.decode()
    assert re.search(r'class="field-private_key_state">set<', listing)


def test_a_blank_submission_keeps_the_key_and_clear_erases_it(admin_client: Client) -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app", private_key=CANARY_KEY)
    response = admin_client.post(url("credential", "change", credential.pk), credential_data())
    assert response.status_code == 302, errors_of(response)
    assert Credential.objects.get().private_key == CANARY_KEY
    response = admin_client.post(url("credential", "change", credential.pk), credential_data(private_key_clear="on"))
    assert response.status_code == 302, errors_of(response)
    assert Credential.objects.get().private_key == ""


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("pk-CANARY-no-pem-here", "is not a PEM private key"),
        ("-----BEGIN PRIVATE KEY-----\nQUJD-CANARY\n-----END PRIVATE KEY-----", "is not a readable PEM private key"),
    ],
)
def test_a_key_that_cannot_sign_is_refused_without_being_echoed(admin_client: Client, value: str, fragment: str) -> None:
    response = admin_client.post(url("credential", "add"), credential_data(private_key=value))
    assert response.status_code == 200
    errors = errors_of(response)
    assert fragment in errors and "(requestforge.E050)" in errors
    assert "CANARY" not in response.content.decode()
    assert not Credential.objects.exists()


def test_view_only_users_see_set_for_the_private_key(client: Client) -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app", private_key=CANARY_KEY, key_id="k1")
    client.force_login(staff("viewer", "view_credential"))
    html = client.get(url("credential", "change", credential.pk)).content.decode()
    assert re.search(r'<label>Private key:</label>\s*<div class="readonly">set</div>', html)
    assert_no_key(html, raw_column(TABLE, "private_key", credential.pk))


def test_rotate_keys_re_encrypts_the_private_key_and_prints_none_of_it(use_keys: Any) -> None:
    use_keys(KEY_A)
    credential = Credential.objects.create(name="erp", private_key=CANARY_KEY)
    before = raw_column(TABLE, "private_key", credential.pk)
    use_keys(KEY_B, KEY_A)
    out = StringIO()
    call_command("requestforge_rotate_keys", stdout=out)
    assert "requestforge_django.Credential: 1 values in 1 rows re-encrypted." in out.getvalue()
    assert_no_key(out.getvalue(), before)
    after = raw_column(TABLE, "private_key", credential.pk)
    assert after != before
    use_keys(KEY_B)  # the old key is gone: the private key still reads
    assert Credential.objects.get().private_key == CANARY_KEY


def test_e009_a_stored_private_key_needs_the_encryption_keys() -> None:
    Credential.objects.create(name="erp", private_key=CANARY_KEY)
    registry = CheckRegistry()
    registry.register(check_encryption_keys, CHECK_TAG)
    with override_settings(REQUESTFORGE={}):
        messages = registry.run_checks(tags=[CHECK_TAG], databases=["default"])
    assert [m.id for m in messages] == ["requestforge.E009"]
    assert "the database holds encrypted credential secrets" in messages[0].msg


# -- client definitions -------------------------------------------------------------------------------


def credential(**fields: Any) -> Credential:
    values = {"name": "erp", "client_id": "erp-app", "allowed_origins": [API, ISSUER], **fields}
    return Credential.objects.create(**values)


def definition_form(cred: Credential, **changes: Any) -> ClientDefinitionForm:
    data = client_data(
        base_url=API,
        auth_type="client_credentials",
        credential=str(cred.pk),
        token_url=TOKEN_URL,
        issuer="",
        client_auth_method="private_key_jwt",
        algorithm="",
        audience="[]",
        resource="[]",
        assertion="",
        subject_token_from="",
        subject_token_type="",
    )
    data.update(changes)
    return ClientDefinitionForm(data=data)


def test_a_private_key_jwt_definition_maps_to_the_same_spec_as_settings() -> None:
    form = definition_form(
        credential(private_key=CANARY_KEY), algorithm="PS256", audience='["orders"]', resource='"https://erp.example.com"'
    )
    assert form.is_valid(), form.errors
    raw = form.save().to_setting()
    assert raw["AUTH"] == {
        "TYPE": "client_credentials",
        "TOKEN_URL": TOKEN_URL,
        "CREDENTIAL": "erp",
        "CLIENT_AUTH_METHOD": "private_key_jwt",
        "ALGORITHM": "PS256",
        "AUDIENCE": ["orders"],
        "RESOURCE": "https://erp.example.com",
    }
    auth = parse_client("erp", raw).auth
    assert (auth.algorithm, auth.audience, auth.resource) == ("PS256", ("orders",), ("https://erp.example.com",))


def test_private_key_jwt_needs_a_credential_with_a_private_key() -> None:
    form = definition_form(credential(client_secret="s" * 40))
    assert not form.is_valid()
    [error] = form.errors["credential"]
    assert 'has no PRIVATE_KEY, required for AUTH TYPE "client_credentials" with private_key_jwt' in error and "E011" in error


def test_e051_the_algorithm_must_fit_the_credentials_key() -> None:
    form = definition_form(credential(private_key=EC_KEY), algorithm="RS256")
    assert not form.is_valid()
    [error] = form.errors["algorithm"]
    assert "RS256 does not fit the EC key on secp256r1" in error and "(requestforge.E051)" in error
    assert EC_KEY.splitlines()[1] not in str(form.errors)


def test_w009_a_short_client_secret_jwt_secret_is_a_warning() -> None:
    form = definition_form(credential(client_secret="short-CANARY"), client_auth_method="client_secret_jwt")
    assert form.is_valid(), form.errors
    [warning] = form.requestforge_warnings
    assert "12 bytes" in warning and "(requestforge.W009)" in warning and "short-CANARY" not in warning


def test_jwt_bearer_definition_takes_the_key_from_the_credential() -> None:
    missing = definition_form(credential(), auth_type="jwt_bearer", client_auth_method="client_secret_post")
    assert not missing.is_valid()
    assert 'has no PRIVATE_KEY, required for AUTH TYPE "jwt_bearer"' in missing.errors["credential"][0]
    Credential.objects.all().delete()
    form = definition_form(
        credential(private_key=EC_KEY), auth_type="jwt_bearer", client_auth_method="client_secret_post", assertion='{"SUBJECT": "u1"}'
    )
    assert form.is_valid(), form.errors
    raw = form.save().to_setting()
    assert raw["AUTH"]["ASSERTION"] == {"SUBJECT": "u1"} and "PRIVATE_KEY" not in str(raw)


def test_a_key_in_the_assertion_json_is_refused_beside_the_credential() -> None:
    form = definition_form(
        credential(private_key=EC_KEY),
        auth_type="jwt_bearer",
        client_auth_method="client_secret_post",
        assertion='{"PRIVATE_KEY": "pk-CANARY"}',
    )
    assert not form.is_valid()
    errors = " ".join(form.errors["assertion"])
    assert 'AUTH["ASSERTION"]["PRIVATE_KEY"] is set together with CREDENTIAL "erp"' in errors and "E005" in errors
    assert "pk-CANARY" not in errors


def test_e043_an_issuer_the_credential_is_not_bound_to() -> None:
    form = definition_form(
        credential(client_secret="s" * 40, allowed_origins=[API]),
        client_auth_method="client_secret_basic",
        token_url="",
        issuer="https://idp.example.net",
    )
    assert not form.is_valid()
    [error] = form.errors["issuer"]
    assert "may not be sent to https://idp.example.net" in error and "(requestforge.E043)" in error


def test_e005_token_url_and_issuer() -> None:
    form = definition_form(credential(client_secret="s" * 40), client_auth_method="client_secret_post", issuer=ISSUER)
    assert not form.is_valid()
    assert 'AUTH["ISSUER"] is set together with TOKEN_URL' in form.errors["issuer"][0]


@pytest.fixture
def upstream(settings: Any) -> None:
    """A settings client whose token a database definition may want to exchange; it gets its token at auth.example.com."""
    auth = {"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "up", "CLIENT_SECRET": "up-CANARY"}
    settings.REQUESTFORGE = {**settings.REQUESTFORGE, "CLIENTS": {"upstream": {"BASE_URL": "https://up.example.com", "AUTH": auth}}}


@pytest.mark.usefixtures("upstream")
def test_token_exchange_definition_checks_its_subject() -> None:
    cred = credential(client_secret="s" * 40, allowed_origins=[API, ISSUER, "https://evil.example"])
    exchange = {"auth_type": "token_exchange", "client_auth_method": "client_secret_post"}
    unknown = definition_form(cred, **exchange, subject_token_from="upstreem")
    assert not unknown.is_valid()
    assert '"upstreem", which is neither a client nor a pipeline' in unknown.errors["subject_token_from"][0]
    assert "(requestforge.E052)" in unknown.errors["subject_token_from"][0]

    itself = definition_form(cred, **exchange, subject_token_from="erp")
    assert not itself.is_valid() and "(requestforge.E053)" in itself.errors["subject_token_from"][0]

    elsewhere = definition_form(cred, **exchange, subject_token_from="upstream", token_url="https://evil.example/token")
    assert not elsewhere.is_valid()
    [error] = elsewhere.errors["token_url"]
    assert 'would send the token of "upstream" to https://evil.example' in error and "requestforge.E043" in error

    good = definition_form(cred, **exchange, subject_token_from="upstream")
    assert good.is_valid(), good.errors
    assert good.save().to_setting()["AUTH"]["SUBJECT_TOKEN_FROM"] == "upstream"


def test_e043_database_check_covers_an_issuer_outside_the_credentials_origins() -> None:
    from requestforge_django.checks.database import check_credential_bindings

    cred = credential(client_secret="s" * 40, allowed_origins=[API])
    ClientDefinition.objects.create(
        name="erp", base_url=API, auth_type="client_credentials", issuer="https://idp.example.net", credential=cred
    )
    [message] = check_credential_bindings(databases=["default"])
    assert message.id == "requestforge.E043" and "https://idp.example.net (AUTH.ISSUER)" in message.msg
