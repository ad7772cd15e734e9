"""AUTH ``CLIENT_AUTH_METHOD`` and ``REJECTED_STATUSES``: checks, the registry's clients, database definitions, the admin form.

Partner APIs and token endpoints are faked with ``responses``; the same settings against
a real authorization server are in ``test_real_oauth_auth_styles.py``.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from django.core.checks import run_checks
from django.test import override_settings

from requestforge_django import get_client
from requestforge_django.admin import ClientDefinitionForm
from requestforge_django.checks import CHECK_TAG
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.setting.validate import parse_client, validate_client
from requestforge_django.tokens.auth_hook import TokenAuthHook
from requestforge_django.tokens.providers import OAuth2TokenProvider

TOKEN_URL = "https://auth.example.com/oauth/token"
API = "https://api.example.com"
LOGIN_URL = "https://login.example.com/session"
SECRET = "cc-SECRET-value-9"
PASSWORD = "pw-SECRET-value-7"
INVALID_TOKEN = 'Bearer error="invalid_token", error_description="The access token is invalid."'
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def cc_auth(**extra: Any) -> dict[str, Any]:
    return {"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "shop", "CLIENT_SECRET": SECRET, **extra}


def pw_auth(**extra: Any) -> dict[str, Any]:
    return {"TYPE": "password", "TOKEN_URL": TOKEN_URL, "USERNAME": "alice", "PASSWORD": PASSWORD, **extra}


def client(auth: dict[str, Any]) -> dict[str, Any]:
    return {"BASE_URL": API, "AUTH": auth}


def problems(auth: dict[str, Any], *, pipelines: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(p.id, p.message) for p in validate_client("shop", client(auth), pipelines=pipelines)]


def checked(setting: dict[str, Any]) -> list[tuple[str, str]]:
    """The requestforge messages of Django's real check framework for ``setting``."""
    with override_settings(REQUESTFORGE=setting, CACHES=CACHES):
        return [(m.id, m.msg) for m in run_checks(tags=[CHECK_TAG]) if m.id != "requestforge.W001"]


# -- validation -------------------------------------------------------------------------------------


class TestClientAuthMethodSetting:
    @pytest.mark.parametrize(
        ("auth", "method"),
        [
            (cc_auth(), "client_secret_post"),
            (cc_auth(CLIENT_AUTH_METHOD="client_secret_post"), "client_secret_post"),
            (cc_auth(CLIENT_AUTH_METHOD="client_secret_basic"), "client_secret_basic"),
            (cc_auth(CLIENT_AUTH_METHOD="Client_Secret_Basic"), "client_secret_basic"),
            (pw_auth(CLIENT_ID="app", CLIENT_SECRET=SECRET, CLIENT_AUTH_METHOD="client_secret_basic"), "client_secret_basic"),
            (pw_auth(), "client_secret_post"),
        ],
    )
    def test_valid(self, auth: dict[str, Any], method: str) -> None:
        assert problems(auth) == []
        assert parse_client("shop", client(auth)).auth.client_auth_method == method

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            ("client_secret_jwk", 'did you mean "client_secret_jwt"'),
            ("basic", 'got "basic"'),
            ("client_secret_basik", 'did you mean "client_secret_basic"'),
            (None, "got None"),
            (["client_secret_basic"], "got list"),
        ],
    )
    def test_e003_not_one_of_the_methods(self, value: Any, fragment: str) -> None:
        [(check_id, message)] = checked({"CLIENTS": {"shop": client(cc_auth(CLIENT_AUTH_METHOD=value))}})
        assert check_id == "requestforge.E003"
        assert (
            '["CLIENTS"]["shop"]["AUTH"]["CLIENT_AUTH_METHOD"] must be one of "client_secret_post", "client_secret_basic", '
            '"client_secret_jwt", "private_key_jwt"'
        ) in message
        assert fragment in message

    @pytest.mark.parametrize("auth", [{"TYPE": "bearer", "TOKEN": "t"}, {"TYPE": "basic", "USERNAME": "u", "PASSWORD": "p"}])
    def test_w003_on_a_type_without_a_token_endpoint(self, auth: dict[str, Any]) -> None:
        [(check_id, message)] = problems({**auth, "CLIENT_AUTH_METHOD": "client_secret_basic"})
        assert check_id == "requestforge.W003" and "CLIENT_AUTH_METHOD" in message and "has no effect" in message

    def test_e011_password_grant_with_basic_needs_a_client_id_and_secret(self) -> None:
        found = checked({"CLIENTS": {"shop": client(pw_auth(CLIENT_AUTH_METHOD="client_secret_basic"))}})
        assert [check_id for check_id, _ in found] == ["requestforge.E011", "requestforge.E011"]
        assert all('is required with CLIENT_AUTH_METHOD "client_secret_basic"' in message for _, message in found)
        assert {message.split(" ")[0] for _, message in found} == {
            'REQUESTFORGE["CLIENTS"]["shop"]["AUTH"]["CLIENT_ID"]',
            'REQUESTFORGE["CLIENTS"]["shop"]["AUTH"]["CLIENT_SECRET"]',
        }
        with_credential = {"TYPE": "password", "TOKEN_URL": TOKEN_URL, "CREDENTIAL": "legacy", "CLIENT_AUTH_METHOD": "client_secret_basic"}
        assert problems(with_credential) == []


class TestRejectedStatusesSetting:
    @pytest.mark.parametrize(
        ("auth", "statuses"),
        [
            (cc_auth(), {401}),
            (cc_auth(REJECTED_STATUSES=[401, 403]), {401, 403}),
            (pw_auth(REJECTED_STATUSES=(403,)), {403}),
            ({"TYPE": "pipeline", "PIPELINE": "partner", "REJECTED_STATUSES": [401, 419]}, {401, 419}),
        ],
    )
    def test_valid(self, auth: dict[str, Any], statuses: set[int]) -> None:
        assert problems(auth, pipelines=("partner",)) == []
        assert parse_client("shop", client(auth), pipelines=("partner",)).auth.rejected_statuses == frozenset(statuses)

    @pytest.mark.parametrize("value", [[], [500], [401, 503], [399], ["401"], [401.0], [True], 401, "401", None, {"401": 1}])
    def test_e003_not_a_list_of_4xx_statuses(self, value: Any) -> None:
        [(check_id, message)] = checked({"CLIENTS": {"shop": client(cc_auth(REJECTED_STATUSES=value))}})
        assert check_id == "requestforge.E003"
        assert message.startswith('REQUESTFORGE["CLIENTS"]["shop"]["AUTH"]["REJECTED_STATUSES"] must be a non-empty list of HTTP 4xx')

    def test_w003_on_static_credentials_that_cannot_be_refetched(self) -> None:
        [(check_id, message)] = problems({"TYPE": "api_key", "KEY": "k", "REJECTED_STATUSES": [401, 403]})
        assert check_id == "requestforge.W003" and "REJECTED_STATUSES" in message


# -- the clients the registry builds ---------------------------------------------------------------


@pytest.fixture
def configure(settings: Any) -> Any:
    def apply(clients: dict[str, Any], **top: Any) -> None:
        settings.REQUESTFORGE = {"KEY_PREFIX": f"rf-{uuid.uuid4().hex[:8]}", "CLIENTS": clients, **top}

    return apply


def token_answers(*tokens: str) -> None:
    for token in tokens:
        responses.post(TOKEN_URL, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600})


def token_calls() -> list[Any]:
    return [call.request for call in responses.calls if call.request.url == TOKEN_URL]


def api_calls() -> list[str]:
    return [call.request.headers.get("Authorization", "") for call in responses.calls if call.request.url.startswith(API)]


def basic_of(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


pytestmark = pytest.mark.django_db(databases=[])


class TestRegistryClients:
    @responses.activate
    @pytest.mark.parametrize("method", [None, "client_secret_post", "client_secret_basic"])
    def test_client_credentials_sends_the_configured_client_authentication(self, configure: Any, method: str | None) -> None:
        configure({"shop": client(cc_auth(**({"CLIENT_AUTH_METHOD": method} if method else {})))})
        token_answers("tok-1")
        responses.get(f"{API}/orders", json={})
        assert get_client("shop").get("/orders").status_code == 200
        [sent] = token_calls()
        form = parse_qs(sent.body if isinstance(sent.body, str) else sent.body.decode())
        assert form["grant_type"] == ["client_credentials"]
        if method == "client_secret_basic":
            assert sent.headers["Authorization"] == basic_of("shop", SECRET)
            assert "client_id" not in form and "client_secret" not in form
        else:
            assert "Authorization" not in sent.headers
            assert (form["client_id"], form["client_secret"]) == (["shop"], [SECRET])
        assert api_calls() == ["Bearer tok-1"]

    @responses.activate
    def test_password_grant_with_basic(self, configure: Any) -> None:
        configure({"legacy": client(pw_auth(CLIENT_ID="app", CLIENT_SECRET=SECRET, CLIENT_AUTH_METHOD="client_secret_basic"))})
        token_answers("tok-1")
        responses.get(f"{API}/me", json={})
        get_client("legacy").get("/me")
        [sent] = token_calls()
        form = parse_qs(sent.body if isinstance(sent.body, str) else sent.body.decode())
        assert sent.headers["Authorization"] == basic_of("app", SECRET)
        assert (form["grant_type"], form["username"], form["password"]) == (["password"], ["alice"], [PASSWORD])
        assert "client_secret" not in form

    def test_provider_and_hook_carry_the_settings(self, configure: Any) -> None:
        configure({"shop": client(cc_auth(CLIENT_AUTH_METHOD="client_secret_basic", REJECTED_STATUSES=[401, 403]))})
        hook = get_client("shop").config.auth_hook
        assert isinstance(hook, TokenAuthHook) and hook.auth_error_statuses == frozenset({401, 403})
        provider = hook.token_manager._provider
        assert isinstance(provider, OAuth2TokenProvider) and provider.auth_method == "client_secret_basic"
        assert SECRET not in repr(provider)

    @responses.activate
    def test_403_with_invalid_token_refetches_once_by_default(self, configure: Any) -> None:
        configure({"shop": client(cc_auth())})
        token_answers("tok-1", "tok-2")
        responses.get(f"{API}/orders", status=403, headers={"WWW-Authenticate": INVALID_TOKEN})
        responses.get(f"{API}/orders", json={"ok": True})
        assert get_client("shop").get("/orders").status_code == 200
        assert api_calls() == ["Bearer tok-1", "Bearer tok-2"] and len(token_calls()) == 2

    @responses.activate
    def test_bare_403_is_returned_unless_listed(self, configure: Any) -> None:
        configure({"plain": client(cc_auth()), "listed": client(cc_auth(REJECTED_STATUSES=[401, 403]))})
        token_answers("tok-1", "tok-2", "tok-3")
        responses.get(f"{API}/orders", status=403)
        responses.get(f"{API}/orders", status=403)
        responses.get(f"{API}/orders", json={"ok": True})
        assert get_client("plain").get("/orders").status_code == 403
        assert get_client("listed").get("/orders").status_code == 200
        assert api_calls() == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3"]
        assert len(token_calls()) == 3  # plain: one token; listed: one, then one refetch

    @responses.activate
    def test_a_rejected_refetched_token_is_returned_not_retried_again(self, configure: Any) -> None:
        configure({"shop": client(cc_auth(REJECTED_STATUSES=[403]))})
        token_answers("tok-1", "tok-2", "tok-3")
        responses.get(f"{API}/orders", status=403)
        assert get_client("shop").get("/orders").status_code == 403
        assert api_calls() == ["Bearer tok-1", "Bearer tok-2"] and len(token_calls()) == 2

    @responses.activate
    def test_pipeline_client_uses_its_rejected_statuses(self, configure: Any) -> None:
        step = {"NAME": "app_token", "URL": LOGIN_URL, "TOKEN_FIELD": "token"}
        configure(
            {"partner": {"BASE_URL": API, "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner", "REJECTED_STATUSES": [419]}}},
            PIPELINES={"partner": {"STEPS": [step]}},
        )
        responses.post(LOGIN_URL, json={"token": "p-1", "expires_in": 3600})
        responses.post(LOGIN_URL, json={"token": "p-2", "expires_in": 3600})
        responses.get(f"{API}/things", status=419)
        responses.get(f"{API}/things", json={"ok": True})
        assert get_client("partner").get("/things").status_code == 200
        assert api_calls() == ["Bearer p-1", "Bearer p-2"]
        assert sum(call.request.url == LOGIN_URL for call in responses.calls) == 2


# -- database definitions and the admin form ------------------------------------------------------


@pytest.mark.django_db
class TestDatabaseDefinitions:
    def definition(self, **fields: Any) -> ClientDefinition:
        credential = Credential.objects.create(name="erp", client_id="erp-app", client_secret=SECRET, allowed_origins=[API])
        return ClientDefinition(
            name="erp", base_url=API, auth_type="client_credentials", token_url=f"{API}/token", credential=credential, **fields
        )

    def test_the_field_maps_to_the_same_spec_as_settings(self) -> None:
        basic = self.definition(client_auth_method="client_secret_basic")
        raw = basic.to_setting()
        assert raw["AUTH"]["CLIENT_AUTH_METHOD"] == "client_secret_basic"
        assert parse_client("erp", raw).auth.client_auth_method == "client_secret_basic"
        assert basic.problems() == []

    @pytest.mark.parametrize("value", ["client_secret_post", ""])
    def test_the_default_is_left_out_as_a_user_would(self, value: str) -> None:
        raw = self.definition(client_auth_method=value).to_setting()
        assert "CLIENT_AUTH_METHOD" not in raw["AUTH"]
        assert parse_client("erp", raw).auth.client_auth_method == "client_secret_post"

    def test_a_new_definition_defaults_to_the_form_body(self) -> None:
        assert ClientDefinition().client_auth_method == "client_secret_post"

    def test_unused_by_static_auth_types(self) -> None:
        definition = self.definition(client_auth_method="client_secret_basic")
        definition.auth_type = "bearer"
        assert "CLIENT_AUTH_METHOD" not in (definition.to_setting()["AUTH"])

    def form_data(self, credential: Credential, **changes: Any) -> dict[str, Any]:
        data = {
            "name": "erp",
            "is_active": "on",
            "base_url": API,
            "verify_ssl": "on",
            "headers": "{}",
            "hooks": "[]",
            "excluded_paths": "[]",
            "auth_type": "password",
            "token_url": f"{API}/token",
            "credential": str(credential.pk),
            "client_auth_method": "client_secret_basic",
        }
        data.update(changes)
        return data

    def test_admin_form_offers_the_field_and_needs_a_client_secret_for_basic(self) -> None:
        assert ClientDefinitionForm().fields["client_auth_method"].initial == "client_secret_post"
        user_only = Credential.objects.create(name="legacy", username="alice", password=PASSWORD, allowed_origins=[API])
        form = ClientDefinitionForm(data=self.form_data(user_only))
        assert not form.is_valid()
        [error] = form.errors["credential"]
        assert 'has no CLIENT_ID or CLIENT_SECRET, required for AUTH TYPE "password" with client_secret_basic' in error
        assert "(requestforge.E011)" in error

        full = Credential.objects.create(
            name="legacy-app", username="alice", password=PASSWORD, client_id="app", client_secret=SECRET, allowed_origins=[API]
        )
        form = ClientDefinitionForm(data=self.form_data(full))
        assert form.is_valid(), form.errors
        saved = form.save()
        assert saved.client_auth_method == "client_secret_basic"
        assert saved.to_setting()["AUTH"]["CLIENT_AUTH_METHOD"] == "client_secret_basic"
        post = ClientDefinitionForm(data=self.form_data(user_only, name="erp2", client_auth_method="client_secret_post"))
        assert post.is_valid(), post.errors

    def test_admin_form_refuses_an_unknown_method(self) -> None:
        credential = Credential.objects.create(name="x", client_id="a", client_secret=SECRET, allowed_origins=[API])
        form = ClientDefinitionForm(data=self.form_data(credential, auth_type="client_credentials", client_auth_method="private_key_jws"))
        assert not form.is_valid() and "client_auth_method" in form.errors
