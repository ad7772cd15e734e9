"""The token status page and the token actions of the admin, against a real token endpoint.

The tokens come from a :class:`~requestforge_django.testing.StubTokenEndpoint` (a real OAuth2
endpoint on 127.0.0.1) and live in a django-redis cache on a real redis-server, as in
production; every request goes through the real admin (``admin_client`` is a logged-in
superuser), so the assertions are about the HTML an operator receives.
"""

from __future__ import annotations

import html as html_lib
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from requestforge_django import DjangoCacheTokenStorage, get_client, get_pipeline, get_token_manager
from requestforge_django.fencing import client_token_key
from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition, PipelineStep
from requestforge_django.registry import registry
from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, PROTECTED_PATH, TOKEN_PATH, StubTokenEndpoint
from tests.admin.conftest import KEY_A
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db

STATIC_KEY = "legacy-api-key-0123456789"


def status_url() -> str:
    return reverse("admin:requestforge_django_tokenstatus")


def changelist(model: str) -> str:
    return reverse(f"admin:requestforge_django_{model}_changelist")


@pytest.fixture
def configured(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> StubTokenEndpoint:
    """Settings clients ``billing`` (client_credentials), ``partner-api`` (pipeline ``partner``), ``public``, ``legacy`` (api_key)."""
    setting = requestforge_setting(token_server, redis_cache, ENCRYPTION_KEYS=[KEY_A])
    setting["CLIENTS"]["legacy"] = {"BASE_URL": token_server.url, "AUTH": {"TYPE": "api_key", "KEY": STATIC_KEY}}
    settings.REQUESTFORGE = setting
    return token_server


def row(html: str, row_id: str) -> str:
    """The ``<tr>`` of the status page with ``id=row_id`` (fails the test when missing)."""
    found = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>.*?</tr>', html, re.S)
    assert found is not None, f"no row {row_id!r} in the page"
    return found.group(0)


def cell(row_html: str, css_class: str) -> str:
    found = re.search(rf'<td class="{re.escape(css_class)}[^"]*"[^>]*>(.*?)</td>', row_html, re.S)
    assert found is not None, f"no {css_class!r} cell in {row_html}"
    return html_lib.unescape(found.group(1)).strip()


def page(client: Client) -> str:
    response = client.get(status_url())
    assert response.status_code == 200
    return response.content.decode()


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def post_action(client: Client, action: str, kind: str, name: str, step: str | None = None, **extra: Any) -> Any:
    data = {"action": action, "kind": kind, "name": name, **({"step": step} if step else {})}
    return client.post(status_url(), data, **extra)


def tokens() -> list[str]:
    """Every full access token currently cached for the settings clients and pipeline."""
    found = [get_token_manager("billing").peek_token(), *(get_pipeline("partner").peek_step(s) for s in ("device", "app"))]
    return [t.access_token for t in found if t is not None]


def assert_no_secret(html: str, server: StubTokenEndpoint) -> None:
    for secret in (*tokens(), server.client_secret, STATIC_KEY):
        assert secret not in html


# -- the page ------------------------------------------------------------------------------------------


def test_lists_every_settings_client_and_pipeline_step(admin_client: Client, configured: StubTokenEndpoint) -> None:
    html = page(admin_client)
    for row_id in ("billing", "partner-api", "public", "legacy"):
        assert cell(row(html, f"token-client-{row_id}"), "source") == "settings"
    for step in ("device", "app"):
        line = row(html, f"token-pipeline-partner-{step}")
        assert cell(line, "step") == step and cell(line, "source") == "settings" and cell(line, "auth") == "pipeline-step"
        assert 'data-state="missing"' in line and cell(line, "state") == "not cached"
    billing = row(html, "token-client-billing")
    assert cell(billing, "auth") == "client_credentials" and cell(billing, "state") == "not cached"
    assert cell(row(html, "token-client-legacy"), "state") == "static credentials"
    assert cell(row(html, "token-client-public"), "state") == "no auth"
    assert "<a href" not in row(html, "token-client-billing")  # settings-defined: nothing to edit

    get_client("billing").get(PROTECTED_PATH)
    get_client("partner-api").get(PROTECTED_PATH)
    html = page(admin_client)
    billing = row(html, "token-client-billing")
    token = get_token_manager("billing").peek_token().access_token
    assert 'data-state="cached"' in billing and cell(billing, "state") == "cached"
    assert cell(billing, "token") == token[:4] + "****"
    assert cell(billing, "expires-in").startswith(("expires in 59 min", "expires in 1 h 00 min"))
    assert cell(billing, "last-obtained") != "-" and cell(billing, "last-error") == "-"
    for step in ("device", "app"):
        assert cell(row(html, f"token-pipeline-partner-{step}"), "state") == "cached"
    assert len(tokens()) == 3
    assert_no_secret(html, configured)


def test_refresh_now_fetches_a_new_token_and_the_page_shows_it(admin_client: Client, configured: StubTokenEndpoint) -> None:
    get_client("billing").get(PROTECTED_PATH)
    old = get_token_manager("billing").peek_token().access_token
    before = configured.stats().token_requests

    response = post_action(admin_client, "refresh", "client", "billing")
    assert response.status_code == 302 and response["Location"] == status_url()
    response = admin_client.get(response["Location"])
    new = get_token_manager("billing").peek_token().access_token
    assert new != old and configured.stats().token_requests == before + 1
    texts = messages_of(response)
    assert any(m.startswith(f"Refreshed billing: new token {new[:4]}****, expires in ") for m in texts), texts
    html = response.content.decode()
    billing = row(html, "token-client-billing")
    assert cell(billing, "state") == "cached" and cell(billing, "token") == new[:4] + "****"
    assert old not in html and new not in html
    assert_no_secret(html, configured)


def test_refresh_now_on_a_step_refetches_that_step_and_its_dependents(admin_client: Client, configured: StubTokenEndpoint) -> None:
    get_client("partner-api").get(PROTECTED_PATH)
    device, app = (get_pipeline("partner").peek_step(s).access_token for s in ("device", "app"))
    before = configured.stats().requests

    response = post_action(admin_client, "refresh", "pipeline", "partner", "app", follow=True)
    after = configured.stats().requests
    assert after.get(APP_TOKEN_PATH, 0) == before.get(APP_TOKEN_PATH, 0) + 1
    assert after.get(DEVICE_PATH, 0) == before.get(DEVICE_PATH, 0)
    assert get_pipeline("partner").peek_step("device").access_token == device
    assert get_pipeline("partner").peek_step("app").access_token != app
    assert any(m.startswith("Refreshed partner/app and the steps depending on it") for m in messages_of(response))

    post_action(admin_client, "refresh", "pipeline", "partner")  # no step: every step
    assert get_pipeline("partner").peek_step("device").access_token != device
    assert configured.stats().requests.get(DEVICE_PATH, 0) == before.get(DEVICE_PATH, 0) + 1


def test_invalidate_drops_the_token(admin_client: Client, configured: StubTokenEndpoint) -> None:
    get_client("billing").get(PROTECTED_PATH)
    get_client("partner-api").get(PROTECTED_PATH)

    response = post_action(admin_client, "invalidate", "client", "billing", follow=True)
    assert get_token_manager("billing").peek_token() is None
    assert "Invalidated billing: every process fetches a new token on next use." in messages_of(response)
    assert cell(row(response.content.decode(), "token-client-billing"), "state") == "not cached"

    response = post_action(admin_client, "invalidate", "pipeline", "partner", "device", follow=True)
    assert get_pipeline("partner").peek_step("device") is None and get_pipeline("partner").peek_step("app") is None
    assert any("partner/device, partner/app" in m for m in messages_of(response))
    html = response.content.decode()
    assert all(cell(row(html, f"token-pipeline-partner-{s}"), "state") == "not cached" for s in ("device", "app"))


def test_a_failed_refresh_keeps_the_token_and_shows_the_error(admin_client: Client, configured: StubTokenEndpoint) -> None:
    get_client("billing").get(PROTECTED_PATH)
    old = get_token_manager("billing").peek_token().access_token
    configured.fail_with(503, path=TOKEN_PATH)

    response = post_action(admin_client, "refresh", "client", "billing", follow=True)
    errors = [m for m in messages_of(response) if m.startswith("Could not refresh billing: ")]
    assert errors, messages_of(response)
    assert get_token_manager("billing").peek_token().access_token == old
    html = response.content.decode()
    billing = row(html, "token-client-billing")
    assert cell(billing, "state") == "cached" and cell(billing, "last-error") != "-"
    assert_no_secret(html, configured)
    assert configured.client_secret not in errors[0]


def test_static_clients_have_no_buttons_and_no_token_to_refresh(admin_client: Client, configured: StubTokenEndpoint) -> None:
    html = page(admin_client)
    assert "<form" not in row(html, "token-client-legacy") and "<form" not in row(html, "token-client-public")
    assert "Refresh now" in row(html, "token-client-billing") and "Invalidate" in row(html, "token-client-billing")
    response = post_action(admin_client, "refresh", "client", "legacy", follow=True)
    assert 'Client "legacy" has AUTH TYPE "api_key": it has no token to refresh or invalidate.' in messages_of(response)
    response = post_action(admin_client, "refresh", "client", "nope", follow=True)
    assert any(m.startswith("Could not refresh nope: UnknownNameError: No client named 'nope'") for m in messages_of(response))


def test_a_malformed_action_is_refused(admin_client: Client, configured: StubTokenEndpoint) -> None:
    assert post_action(admin_client, "explode", "client", "billing").status_code == 400
    assert post_action(admin_client, "refresh", "credential", "billing").status_code == 400
    assert admin_client.put(status_url()).status_code == 405
    assert configured.stats().token_requests == 0


# -- permissions -------------------------------------------------------------------------------------------


def staff(username: str, *codenames: str, is_staff: bool = True) -> User:
    user = User.objects.create_user(username, is_staff=is_staff)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="requestforge_django", codename__in=codenames))
    return user


def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(client: Client, configured: StubTokenEndpoint) -> None:
    for user in (None, staff("outsider", "view_clientdefinition", "change_clientdefinition", is_staff=False)):
        if user is not None:
            client.force_login(user)
        for response in (client.get(status_url()), post_action(client, "refresh", "client", "billing")):
            assert response.status_code == 302 and "/login/" in response["Location"]
    assert configured.stats().token_requests == 0


def test_staff_without_permission_get_403(client: Client, configured: StubTokenEndpoint) -> None:
    client.force_login(staff("nobody", "view_credential", "view_pipelinedefinition", "change_pipelinedefinition"))
    assert client.get(status_url()).status_code == 403
    assert post_action(client, "refresh", "client", "billing").status_code == 403
    assert post_action(client, "invalidate", "pipeline", "partner").status_code == 403
    assert configured.stats().fetches == 0


def test_viewers_see_the_page_but_cannot_act(client: Client, configured: StubTokenEndpoint) -> None:
    get_client("billing").get(PROTECTED_PATH)
    client.force_login(staff("viewer", "view_clientdefinition"))
    html = page(client)
    assert "<form" not in html.split('id="token-status"', 1)[1]  # no buttons
    assert cell(row(html, "token-client-billing"), "state") == "cached"
    fetched = configured.stats().token_requests
    assert post_action(client, "refresh", "client", "billing").status_code == 403
    assert post_action(client, "invalidate", "client", "billing").status_code == 403
    assert configured.stats().token_requests == fetched
    assert get_token_manager("billing").peek_token() is not None


def test_actions_need_the_change_permission_of_their_kind(client: Client, configured: StubTokenEndpoint) -> None:
    client.force_login(staff("clients-only", "change_clientdefinition"))
    html = page(client)  # change implies view
    assert "Refresh now" in row(html, "token-client-billing")
    assert "<form" not in row(html, "token-pipeline-partner-app")
    assert post_action(client, "refresh", "client", "billing").status_code == 302
    assert get_token_manager("billing").peek_token() is not None
    assert post_action(client, "refresh", "pipeline", "partner").status_code == 403
    assert get_pipeline("partner").peek_step("app") is None

    client.force_login(staff("both", "view_clientdefinition", "change_pipelinedefinition"))
    assert "Refresh now" in row(page(client), "token-pipeline-partner-app")
    assert post_action(client, "refresh", "pipeline", "partner").status_code == 302
    assert get_pipeline("partner").peek_step("app") is not None


def test_csrf_is_enforced(configured: StubTokenEndpoint) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    assert post_action(client, "refresh", "client", "billing").status_code == 403
    assert configured.stats().token_requests == 0

    html = page(client)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None
    response = client.post(status_url(), {"action": "refresh", "kind": "client", "name": "billing", "csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302
    assert configured.stats().token_requests == 1


# -- the definition change lists: token column and admin actions -------------------------------------------------


@pytest.fixture
def database_definitions(
    configured: StubTokenEndpoint, django_capture_on_commit_callbacks: Callable[..., Any]
) -> tuple[ClientDefinition, PipelineDefinition]:
    """A database client ``erp-api`` (credential ``erp``), an inactive client and a database pipeline ``partner-db``.

    Created with the on-commit callbacks run, so the registry sees them as in production.
    """
    server = configured
    with django_capture_on_commit_callbacks(execute=True):
        credential = Credential.objects.create(
            name="erp", client_id=server.client_id, client_secret=server.client_secret, allowed_origins=[server.url]
        )
        client = ClientDefinition.objects.create(
            name="erp-api", base_url=server.url, auth_type="client_credentials", token_url=server.token_url, credential=credential
        )
        ClientDefinition.objects.create(name="old-api", base_url=server.url, is_active=False)
        pipeline = PipelineDefinition.objects.create(name="partner-db")
        PipelineStep.objects.create(
            pipeline=pipeline,
            order=1,
            name="device",
            fetcher="header",
            url=server.url + DEVICE_PATH,
            headers={"X-Device-ID": server.device_id},
            token_header="X-Device-Token",
            ttl=3600,
        )
        PipelineStep.objects.create(
            pipeline=pipeline,
            order=2,
            name="app",
            url=server.url + APP_TOKEN_PATH,
            headers={"X-Device-Token": "{device}"},
            data={"client_id": server.app_client_id},
            depends_on=["device"],
        )
    return client, pipeline


def token_column(html: str, name: str) -> str:
    """The token column of the change list row whose first cell links to ``name``."""
    same_row = "(?:(?!</tr>).)*?"
    found = re.search(rf'<tr>{same_row}>{re.escape(name)}</a></th>{same_row}<td class="field-token_status">(.*?)</td>', html, re.S)
    assert found is not None, f"no change list row for {name!r}"
    return html_lib.unescape(found.group(1))


def test_database_definitions_are_listed_with_a_link_and_without_secrets(
    admin_client: Client, configured: StubTokenEndpoint, database_definitions: tuple[ClientDefinition, PipelineDefinition]
) -> None:
    client, pipeline = database_definitions
    html = page(admin_client)
    erp = row(html, "token-client-erp-api")
    assert cell(erp, "source") == "database" and cell(erp, "state") == "not cached"
    assert reverse("admin:requestforge_django_clientdefinition_change", args=(client.pk,)) in erp
    assert reverse("admin:requestforge_django_pipelinedefinition_change", args=(pipeline.pk,)) in row(html, "token-pipeline-partner-db-app")
    assert "old-api" not in html  # inactive: not a client
    assert configured.client_secret not in html


def test_client_changelist_column_and_actions(
    admin_client: Client, configured: StubTokenEndpoint, database_definitions: tuple[ClientDefinition, PipelineDefinition]
) -> None:
    client, _ = database_definitions
    inactive = ClientDefinition.objects.get(name="old-api")
    html = admin_client.get(changelist("clientdefinition")).content.decode()
    assert token_column(html, "erp-api") == "not cached" and token_column(html, "old-api") == "inactive"
    assert f'href="{status_url()}"' in html and "Token status" in html
    assert '<option value="refresh_tokens">Refresh tokens now</option>' in html

    data = {"action": "refresh_tokens", "_selected_action": [client.pk, inactive.pk], "index": 0}
    response = admin_client.post(changelist("clientdefinition"), data, follow=True)
    texts = messages_of(response)
    assert any(m.startswith("Refreshed erp-api: new token ") for m in texts), texts
    assert '"old-api" is inactive: it has no token.' in texts
    token = get_token_manager("erp-api").peek_token().access_token
    column = token_column(response.content.decode(), "erp-api")
    assert column.startswith("cached, expires in ") and token not in response.content.decode()
    assert configured.stats().token_requests == 1

    response = admin_client.post(changelist("clientdefinition"), {**data, "action": "invalidate_tokens"}, follow=True)
    assert "Invalidated erp-api: every process fetches a new token on next use." in messages_of(response)
    assert get_token_manager("erp-api").peek_token() is None
    assert token_column(response.content.decode(), "erp-api") == "not cached"


def test_pipeline_changelist_column_and_actions(
    admin_client: Client, configured: StubTokenEndpoint, database_definitions: tuple[ClientDefinition, PipelineDefinition]
) -> None:
    _, pipeline = database_definitions
    html = admin_client.get(changelist("pipelinedefinition")).content.decode()
    assert token_column(html, "partner-db") == "device: not cached<br>app: not cached"

    data = {"action": "refresh_tokens", "_selected_action": [pipeline.pk], "index": 0}
    response = admin_client.post(changelist("pipelinedefinition"), data, follow=True)
    assert any(m.startswith("Refreshed every step of partner-db: new final token ") for m in messages_of(response))
    column = token_column(response.content.decode(), "partner-db")
    assert re.fullmatch(
        r"device: cached, expires in (59 min \d\d s|1 h 00 min)<br>app: cached, expires in (59 min \d\d s|1 h 00 min)", column
    ), column
    assert configured.stats().requests.get(DEVICE_PATH) == 1 and configured.stats().requests.get(APP_TOKEN_PATH) == 1

    response = admin_client.post(changelist("pipelinedefinition"), {**data, "action": "invalidate_tokens"}, follow=True)
    assert "Invalidated partner-db/device, partner-db/app: every process fetches a new token on next use." in messages_of(response)
    assert token_column(response.content.decode(), "partner-db") == "device: not cached<br>app: not cached"


def test_view_only_users_get_no_token_actions(
    client: Client, configured: StubTokenEndpoint, database_definitions: tuple[ClientDefinition, PipelineDefinition]
) -> None:
    definition, _ = database_definitions
    client.force_login(staff("viewer", "view_clientdefinition"))
    html = client.get(changelist("clientdefinition")).content.decode()
    assert "refresh_tokens" not in html and token_column(html, "erp-api") == "not cached"
    client.post(changelist("clientdefinition"), {"action": "refresh_tokens", "_selected_action": [definition.pk], "index": 0})
    assert configured.stats().token_requests == 0


def test_a_token_whose_credential_is_gone_is_shown_and_can_still_be_invalidated(
    admin_client: Client, configured: StubTokenEndpoint, database_definitions: tuple[ClientDefinition, PipelineDefinition]
) -> None:
    """Invalidation works from the name alone (nothing is built): the command and the page both drop the token."""
    token = get_token_manager("erp-api").get_token()
    Credential.objects.filter(name="erp").update(is_active=False)  # no signal: the token stays in the shared cache
    spec = registry.definitions().settings
    storage = DjangoCacheTokenStorage(cache_alias=spec.cache, key_prefix=spec.key_prefix)
    assert storage.get(client_token_key("erp-api")) == token

    erp = row(page(admin_client), "token-client-erp-api")
    assert 'data-state="error"' in erp and cell(erp, "state") == 'credential "erp" missing or inactive'

    out = io.StringIO()
    call_command("requestforge_invalidate", "erp-api", stdout=out, stderr=io.StringIO())
    assert out.getvalue().split() == ["Invalidated", "erp-api"]
    assert storage.get(client_token_key("erp-api")) is None

    storage.set(client_token_key("erp-api"), token)
    response = post_action(admin_client, "invalidate", "client", "erp-api", follow=True)
    assert "Invalidated erp-api: every process fetches a new token on next use." in messages_of(response)
    assert storage.get(client_token_key("erp-api")) is None
