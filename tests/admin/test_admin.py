"""The admin: secrets are write-only, definitions are validated exactly like ``manage.py check``.

Every request goes through the real admin (``admin_client`` is a logged-in superuser),
so the assertions are about the HTML an operator receives.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
from django.test import Client

from requestforge_django.admin import CredentialForm
from requestforge_django.encryption import encrypt
from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition, PipelineStep
from tests.admin.conftest import KEY_A, KEY_C, SECRET, client_data, credential_data, errors_of, raw_column, set_raw_column, staff, url

pytestmark = pytest.mark.django_db
TABLE = Credential._meta.db_table


def step_data(index: int, **fields: Any) -> dict[str, Any]:
    values = {
        "order": index,
        "name": "",
        "fetcher": "body",
        "url": "",
        "method": "POST",
        "headers": "{}",
        "data": "",
        "json": "",
        "params": "{}",
        "token_header": "",
        "token_field": "access_token",
        "expires_in_field": "expires_in",
        "ttl": "",
        "depends_on": "[]",
    }
    values.update(fields)
    return {f"steps-{index}-{key}": value for key, value in values.items()}


def pipeline_data(steps: list[dict[str, Any]], initial: int = 0, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "partner",
        "is_active": "on",
        "refresh_from_step": "",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(initial),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, step in enumerate(steps):
        data.update(step_data(index, **step))
    data.update(overrides)
    return data


# -- write-only secrets ----------------------------------------------------------------------------------


def test_the_change_page_never_contains_a_secret(admin_client: Client) -> None:
    credential = Credential.objects.create(
        name="erp", client_id="erp-app", client_secret=SECRET, password=SECRET, api_key=SECRET, token=SECRET
    )
    html = admin_client.get(url("credential", "change", credential.pk)).content.decode()
    assert SECRET not in html
    for ciphertext in (raw_column(TABLE, "client_secret", credential.pk), raw_column(TABLE, "token", credential.pk)):
        assert ciphertext not in html
    for name in Credential.SECRET_FIELDS:
        if name == "private_key":  # multi-line: an empty textarea (browsers drop a PEM's line breaks in a password input)
            assert re.search(r'<textarea[^>]*name="private_key"[^>]*>\s*</textarea>', html)
        else:
            tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
            assert tag is not None and 'type="password"' in tag.group(0) and "value=" not in tag.group(0)
        assert f'name="{name}_clear"' in html
    assert 'type="hidden" name="client_secret"' not in html
    assert "Currently set. Leave blank to keep the stored value." in html
    assert "erp-app" in html  # not a secret: shown


def test_the_list_shows_set_or_not_set_only(admin_client: Client) -> None:
    Credential.objects.create(name="erp", client_secret=SECRET)
    html = admin_client.get(url("credential", "changelist")).content.decode()
    assert SECRET not in html
    assert re.search(r'class="field-client_secret_state">set<', html)
    assert re.search(r'class="field-password_state">not set<', html)


def test_a_rejected_submission_does_not_echo_the_typed_secret(admin_client: Client) -> None:
    Credential.objects.create(name="taken")
    response = admin_client.post(url("credential", "add"), credential_data(name="taken", client_secret=SECRET))
    assert response.status_code == 200 and "already exists" in errors_of(response)
    assert SECRET not in response.content.decode()


def test_adding_a_credential_stores_ciphertext(admin_client: Client) -> None:
    response = admin_client.post(url("credential", "add"), credential_data(client_secret=SECRET))
    assert response.status_code == 302, errors_of(response)
    credential = Credential.objects.get(name="erp")
    assert SECRET not in raw_column(TABLE, "client_secret", credential.pk)
    assert credential.client_secret == SECRET
    assert credential.password == ""


def test_blank_keeps_clear_erases_and_a_new_value_replaces(admin_client: Client) -> None:
    credential = Credential.objects.create(name="erp", client_id="old", client_secret=SECRET, password="pw", token="tok")
    response = admin_client.post(
        url("credential", "change", credential.pk), credential_data(client_id="new", password_clear="on", token="new-token")
    )
    assert response.status_code == 302, errors_of(response)
    credential = Credential.objects.get(pk=credential.pk)
    assert credential.client_id == "new"
    assert credential.client_secret == SECRET  # blank: kept
    assert credential.password == ""  # cleared
    assert credential.token == "new-token"  # replaced


def test_a_value_and_clear_together_are_refused(admin_client: Client) -> None:
    credential = Credential.objects.create(name="erp", client_secret=SECRET)
    response = admin_client.post(
        url("credential", "change", credential.pk), credential_data(client_secret="other", client_secret_clear="on")
    )
    assert response.status_code == 200
    assert "Enter a new value or tick clear, not both." in errors_of(response)
    assert Credential.objects.get().client_secret == SECRET


def test_an_unreadable_secret_is_reported_and_can_be_replaced(admin_client: Client, use_keys: Any) -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app")
    use_keys(KEY_C)
    stranger = encrypt("lost")
    use_keys(KEY_A)
    set_raw_column(TABLE, "password", credential.pk, stranger)
    assert "cannot be decrypted" in admin_client.get(url("credential", "changelist")).content.decode()
    html = admin_client.get(url("credential", "change", credential.pk)).content.decode()
    assert "cannot be decrypted with the current ENCRYPTION_KEYS" in html and stranger not in html
    # Editing another field keeps it; entering a new value replaces it.
    assert admin_client.post(url("credential", "change", credential.pk), credential_data(client_id="x")).status_code == 302
    assert raw_column(TABLE, "password", credential.pk) == stranger
    assert admin_client.post(url("credential", "change", credential.pk), credential_data(password="fresh")).status_code == 302
    assert Credential.objects.get().password == "fresh"


def test_a_secret_cannot_be_saved_without_keys(admin_client: Client, settings: Any) -> None:
    settings.REQUESTFORGE = {}
    response = admin_client.post(url("credential", "add"), credential_data(client_secret=SECRET))
    assert response.status_code == 200
    assert "requestforge.E009" in errors_of(response)
    assert not Credential.objects.exists()
    assert admin_client.post(url("credential", "add"), credential_data()).status_code == 302  # no secret: fine


def test_the_credential_form_labels_are_capitalised_alike(admin_client: Client) -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app", client_secret=SECRET)
    html = admin_client.get(url("credential", "change", credential.pk)).content.decode()
    labels = [html_lib.unescape(text).strip() for text in re.findall(r"<label[^>]*>([^<]+)</label>", html)]
    for expected in ("Client id:", "Client secret:", "Password:", "API key:", "Bearer token:", "Allowed origins:", "Clear client secret"):
        assert expected in labels, labels
    assert [label for label in labels if not label[0].isupper()] == []
    list_html = admin_client.get(url("credential", "changelist")).content.decode()
    assert all(f"<span>{header}</span>" in list_html for header in ("Client secret", "Password", "API key", "Bearer token")), list_html


def test_the_form_has_no_initial_secret_values() -> None:
    credential = Credential.objects.create(name="erp", client_secret=SECRET)
    form = CredentialForm(instance=credential)
    assert SECRET not in form.as_div()
    assert all(form[name].value() in (None, "") for name in Credential.SECRET_FIELDS)


# -- permissions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["credential", "clientdefinition", "pipelinedefinition"])
def test_users_without_permission_are_refused(client: Client, model: str) -> None:
    credential = Credential.objects.create(name="erp", client_secret=SECRET)
    target = {"credential": credential.pk}.get(model) or (
        ClientDefinition.objects.create(name="c", base_url="https://c.example.com").pk
        if model == "clientdefinition"
        else PipelineDefinition.objects.create(name="p").pk
    )
    pages = [url(model, "changelist"), url(model, "change", target), url(model, "add")]
    for page in pages:  # anonymous: sent to the login page
        response = client.get(page)
        assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(staff("nobody"))
    for page in pages:
        assert client.get(page).status_code == 403
    assert client.post(url(model, "change", target), {}).status_code == 403


def test_view_only_users_see_set_not_the_secret_and_cannot_change(client: Client) -> None:
    credential = Credential.objects.create(name="erp", client_id="erp-app", client_secret=SECRET, token=SECRET)
    client.force_login(staff("viewer", "view_credential"))
    response = client.get(url("credential", "change", credential.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET not in html and raw_column(TABLE, "token", credential.pk) not in html
    assert "erp-app" in html
    assert re.search(r'<label>Client secret:</label>\s*<div class="readonly">set</div>', html)
    assert client.post(url("credential", "change", credential.pk), credential_data(client_secret="x")).status_code == 403
    assert Credential.objects.get().client_secret == SECRET


# -- client definitions: the rules of manage.py check -----------------------------------------------------------


def test_a_valid_client_is_saved(admin_client: Client) -> None:
    credential = Credential.objects.create(
        name="erp-prod", client_id="i", client_secret=SECRET, allowed_origins=["https://login.erp.example.com", "https://erp.example.com"]
    )
    data = client_data(
        auth_type="client_credentials",
        credential=str(credential.pk),
        token_url="https://login.erp.example.com/token",
        retry='{"STRATEGY": "simple", "MAX_RETRIES": 2}',
        rate_limit='{"RATE": 5}',
    )
    response = admin_client.post(url("clientdefinition", "add"), data)
    assert response.status_code == 302, errors_of(response)
    client = ClientDefinition.objects.get()
    assert client.to_setting()["AUTH"]["CREDENTIAL"] == "erp-prod"
    assert client.to_setting()["RETRY"] == {"STRATEGY": "simple", "MAX_RETRIES": 2}


@pytest.mark.parametrize(
    ("overrides", "check_id", "fragment"),
    [
        ({"base_url": "ftp://erp"}, "requestforge.E003", "BASE_URL must be an absolute URL"),
        ({"headers": '{"X-N": 1}'}, "requestforge.E003", 'HEADERS["X-N"] must be a string'),
        ({"retry": '{"STRATEGY": "exponental"}'}, "requestforge.E003", 'did you mean "exponential"'),
        ({"retry": '{"MAX_RETRIS": 3}'}, "requestforge.E002", 'did you mean "MAX_RETRIES"'),
        ({"rate_limit": '{"BURST": 3}'}, "requestforge.E004", 'RATE_LIMIT["RATE"] is required'),
        ({"name": "bad name"}, "requestforge.E008", "unusable client name"),
        ({"auth_type": "bearer"}, "requestforge.E011", 'AUTH["TOKEN"] is required for AUTH TYPE "bearer"'),
        ({"auth_type": "client_credentials"}, "requestforge.E011", 'AUTH["TOKEN_URL"] is required'),
        ({"auth_type": "pipeline", "pipeline": "partnr"}, "requestforge.E012", 'names pipeline "partnr"'),
        ({"hooks": '["requestforge_django.nope.Hook"]'}, "requestforge.E013", "cannot import"),
        ({"hooks": '["requestforge_django.models.Credential"]'}, "requestforge.E014", "implements none of"),
    ],
)
def test_client_form_errors_carry_the_check_id_and_key(
    admin_client: Client, overrides: dict[str, str], check_id: str, fragment: str
) -> None:
    PipelineDefinition.objects.create(name="partner")
    response = admin_client.post(url("clientdefinition", "add"), client_data(**overrides))
    assert response.status_code == 200
    errors = errors_of(response)
    assert check_id in errors and fragment in errors, errors
    assert not ClientDefinition.objects.exists()


def test_client_errors_are_shown_on_the_matching_field(admin_client: Client) -> None:
    response = admin_client.post(url("clientdefinition", "add"), client_data(auth_type="password", retry='{"MAX_RETRIES": -1}'))
    form = response.context["adminform"].form
    assert [e.code for e in form.errors.as_data()["token_url"]] == ["requestforge.E011"]
    assert [e.code for e in form.errors.as_data()["credential"]] == ["requestforge.E011", "requestforge.E011"]
    assert [e.code for e in form.errors.as_data()["retry"]] == ["requestforge.E003"]


def test_a_credential_lacking_what_the_auth_type_needs_is_refused(admin_client: Client) -> None:
    credential = Credential.objects.create(name="ids-only", client_id="i")
    inactive = Credential.objects.create(name="off", token=SECRET, is_active=False)
    response = admin_client.post(
        url("clientdefinition", "add"),
        client_data(auth_type="client_credentials", credential=str(credential.pk), token_url="https://a.example.com/t"),
    )
    assert 'Credential "ids-only" has no CLIENT_SECRET, required for AUTH TYPE "client_credentials". (requestforge.E011)' in errors_of(
        response
    )
    response = admin_client.post(url("clientdefinition", "add"), client_data(auth_type="bearer", credential=str(inactive.pk)))
    assert 'Credential "off" is inactive' in errors_of(response)
    assert not ClientDefinition.objects.exists()


def test_a_client_name_defined_in_settings_is_refused(admin_client: Client, settings: Any) -> None:
    settings.REQUESTFORGE = {**settings.REQUESTFORGE, "CLIENTS": {"erp": {"BASE_URL": "https://erp.example.com"}}}
    response = admin_client.post(url("clientdefinition", "add"), client_data(name="erp"))
    assert response.status_code == 200
    assert 'already defined in REQUESTFORGE["CLIENTS"]' in errors_of(response) and "requestforge.E031" in errors_of(response)
    assert admin_client.post(url("clientdefinition", "add"), client_data(name="erp2")).status_code == 302


def test_warnings_do_not_block_saving_and_are_shown(admin_client: Client) -> None:
    response = admin_client.post(url("clientdefinition", "add"), client_data(verify_ssl=None), follow=True)
    assert ClientDefinition.objects.filter(verify_ssl=False).exists()
    texts = [str(m) for m in response.context["messages"]]
    assert any("requestforge.W004" in text and "VERIFY_SSL" in text for text in texts), texts


# -- pipeline definitions ------------------------------------------------------------------------------------------

DEVICE = {
    "name": "device_token",
    "fetcher": "header",
    "url": "https://auth.partner.com/v1/device/register",
    "headers": '{"X-Device-ID": "device-123"}',
    "token_header": "X-Device-Token",
    "ttl": "2592000",
}
APP = {
    "name": "app_token",
    "url": "https://auth.partner.com/v1/app/token",
    "data": '{"client_id": "app-id"}',
    "headers": '{"X-Device-Token": "{device_token}"}',
    "depends_on": '["device_token"]',
    "ttl": "3600",
}


def test_a_valid_pipeline_with_ordered_steps_is_saved(admin_client: Client) -> None:
    # Entered out of order: the order field decides.
    data = pipeline_data([{**APP, "order": "2"}, {**DEVICE, "order": "1"}], refresh_from_step="app_token")
    data["steps-0-order"], data["steps-1-order"] = "2", "1"
    response = admin_client.post(url("pipelinedefinition", "add"), data)
    assert response.status_code == 302, errors_of(response)
    pipeline = PipelineDefinition.objects.get()
    assert [s["NAME"] for s in pipeline.to_setting()["STEPS"]] == ["device_token", "app_token"]
    assert pipeline.problems() == []
    html = admin_client.get(url("pipelinedefinition", "changelist")).content.decode()
    assert "device_token -&gt; app_token" in html


@pytest.mark.parametrize(
    ("steps", "overrides", "check_id", "fragment"),
    [
        ([{**APP, "depends_on": "[]"}], {}, "requestforge.E026", 'STEPS[0]["HEADERS"]["X-Device-Token"] uses the placeholder'),
        ([DEVICE, {**APP, "name": "device_token"}], {}, "requestforge.E021", "already the NAME of step 0"),
        ([{**APP, "depends_on": '["device_token"]'}, DEVICE], {}, "requestforge.E024", "comes after"),
        ([{**DEVICE, "token_header": ""}], {}, "requestforge.E004", 'TOKEN_HEADER"] is required'),
        ([{**DEVICE, "fetcher": "heder"}], {}, "requestforge.E022", 'did you mean "header"'),
        ([{**DEVICE, "name": "device-token"}], {}, "requestforge.E008", "unusable step name"),
        ([DEVICE], {"refresh_from_step": "app"}, "requestforge.E027", "REFRESH_FROM_STEP names step"),
        ([], {}, "requestforge.E003", "STEPS must not be empty"),
    ],
)
def test_pipeline_errors_carry_the_check_id_and_key(
    admin_client: Client, steps: list[dict[str, Any]], overrides: dict[str, str], check_id: str, fragment: str
) -> None:
    data = pipeline_data(steps, **overrides)
    response = admin_client.post(url("pipelinedefinition", "add"), data)
    assert response.status_code == 200
    errors = errors_of(response)
    assert check_id in errors and fragment in errors, errors
    assert not PipelineDefinition.objects.exists() and not PipelineStep.objects.exists()


def test_step_errors_land_on_the_step_field(admin_client: Client) -> None:
    response = admin_client.post(url("pipelinedefinition", "add"), pipeline_data([DEVICE, {**APP, "depends_on": "[]"}]))
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors == {}
    assert [e.code for e in formset.forms[1].errors.as_data()["headers"]] == ["requestforge.E026"]


def test_editing_a_pipeline_validates_the_saved_and_new_steps_together(admin_client: Client) -> None:
    pipeline = PipelineDefinition.objects.create(name="partner")
    step = PipelineStep.objects.create(
        pipeline=pipeline, order=1, name="device_token", fetcher="header", url=DEVICE["url"], token_header="X"
    )
    data = pipeline_data([DEVICE, APP], initial=1)
    data["steps-0-id"], data["steps-0-pipeline"] = str(step.pk), str(pipeline.pk)
    data["steps-1-order"] = "2"
    assert admin_client.post(url("pipelinedefinition", "change", pipeline.pk), data).status_code == 302
    assert [s.name for s in pipeline.steps.all()] == ["device_token", "app_token"]
    # Deleting the first step leaves app_token depending on nothing that exists.
    data = pipeline_data([DEVICE, APP], initial=2)
    for index, row in enumerate(pipeline.steps.all()):
        data[f"steps-{index}-id"], data[f"steps-{index}-pipeline"] = str(row.pk), str(pipeline.pk)
    data["steps-1-order"] = "2"
    data["steps-0-DELETE"] = "on"
    response = admin_client.post(url("pipelinedefinition", "change", pipeline.pk), data)
    assert response.status_code == 200 and "requestforge.E023" in errors_of(response)
    assert pipeline.steps.count() == 2


def test_a_pipeline_name_defined_in_settings_is_refused(admin_client: Client, settings: Any) -> None:
    settings.REQUESTFORGE = {**settings.REQUESTFORGE, "PIPELINES": {"partner": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com"}]}}}
    response = admin_client.post(url("pipelinedefinition", "add"), pipeline_data([DEVICE]))
    errors = errors_of(response)
    assert "requestforge.E031" in errors and 'REQUESTFORGE["PIPELINES"]' in errors
    assert "requestforge.E008" not in errors  # no noise about the (rejected) name from the steps
    assert not PipelineDefinition.objects.exists()


def test_an_unusable_pipeline_name_is_reported_on_the_name_field(admin_client: Client) -> None:
    response = admin_client.post(url("pipelinedefinition", "add"), pipeline_data([DEVICE], name="bad name"))
    form = response.context["adminform"].form
    assert [e.code for e in form.errors.as_data()["name"]] == ["requestforge.E008"]
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == []
