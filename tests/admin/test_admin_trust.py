"""Credentials bound to their use in the admin: no admin user can send a secret somewhere new.

The hole (issue 12): a staff user who may only add/change client definitions (the
credential list answers 403 for them) saw every credential in the definition form,
saved a definition with ``TOKEN_URL`` on a host of their own and an existing credential,
pressed "Refresh now" and received ``client_secret`` at that host.

Every test goes through the real admin URLs with ``django.test.Client`` and users of
each permission set, against two loopback servers: the real token endpoint
(:class:`StubTokenEndpoint`, the origin the credential is bound to) and an attacker's host
(:class:`PartnerServer`, which records every request). "Nothing secret arrived" is
asserted on what the attacker's server recorded.
"""

from __future__ import annotations

import html as html_lib
import pickle
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.contrib.auth.models import Permission, User
from django.core import checks
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from requestforge_django import get_client, get_token_manager
from requestforge_django.checks.database import check_credential_bindings
from requestforge_django.models import ClientDefinition, Credential, UnboundCredentialError, normalize_origin
from requestforge_django.registry import registry
from requestforge_django.testing import PROTECTED_PATH, TOKEN_PATH, StubTokenEndpoint
from tests.admin.conftest import KEY_A, client_data, raw_column
from tests.django.settings_factory import requestforge_setting
from tests.support.partner_server import PartnerServer, Reply

pytestmark = pytest.mark.django_db

#: Canary secrets: none of them may ever reach the attacker's host or an admin page.
CLIENT_SECRET = "cs-CANARY-7f3a9e51d2"
PASSWORD = "pw-CANARY-41c0be77"
API_KEY = "ak-CANARY-0d5e8b21"
BEARER = "bt-CANARY-9a6c3f04"
PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
#: A line of the key's base64 body: what would show if any part of the key did.
KEY_LINE = PRIVATE_KEY.splitlines()[1]
CANARIES = (CLIENT_SECRET, PASSWORD, API_KEY, BEARER, KEY_LINE)

E043 = "requestforge.E043"


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture
def token_endpoint() -> Iterator[StubTokenEndpoint]:
    """The real token endpoint and API: the origin the credential is bound to."""
    with StubTokenEndpoint(expires_in=3600, client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def attacker() -> Iterator[PartnerServer]:
    """A host of the attacker's own: answers token requests like a real endpoint and records everything."""
    token = {"access_token": "attacker-issued-token", "token_type": "Bearer", "expires_in": 3600}
    with PartnerServer() as server:
        server.route("*", "*", Reply(200, token))
        yield server


@pytest.fixture
def configured(settings: Any, token_endpoint: StubTokenEndpoint, attacker: PartnerServer) -> StubTokenEndpoint:
    settings.REQUESTFORGE = requestforge_setting(token_endpoint, "default", ENCRYPTION_KEYS=[KEY_A])
    caches["default"].clear()
    registry.reset()
    return token_endpoint


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """``with committed(): ...``: saves inside run their on-commit receivers, as in production."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def erp(configured: StubTokenEndpoint, committed: Callable[..., Any]) -> Credential:
    """Credential ``erp`` (every secret a canary), bound to the token endpoint's origin."""
    with committed():
        return Credential.objects.create(
            name="erp",
            client_id=configured.client_id,
            client_secret=CLIENT_SECRET,
            username="erp-user",
            password=PASSWORD,
            api_key=API_KEY,
            token=BEARER,
            private_key=PRIVATE_KEY,
            key_id="erp-key-1",
            allowed_origins=[configured.url],
        )


@pytest.fixture
def erp_api(erp: Credential, configured: StubTokenEndpoint, committed: Callable[..., Any]) -> ClientDefinition:
    """A database client made by a credential manager: client_credentials with ``erp``, on the bound origin."""
    with committed():
        return ClientDefinition.objects.create(
            name="erp-api", base_url=configured.url, auth_type="client_credentials", token_url=configured.token_url, credential=erp
        )


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="requestforge_django", codename__in=codenames))
    return user


DEFINITIONS = ("add_clientdefinition", "change_clientdefinition", "view_clientdefinition", "delete_clientdefinition")
PIPELINES = ("add_pipelinedefinition", "change_pipelinedefinition", "view_pipelinedefinition", "add_pipelinestep", "change_pipelinestep")
CREDENTIALS = ("add_credential", "change_credential", "view_credential", "delete_credential")
VIEW_ALL = ("view_credential", "view_clientdefinition", "view_pipelinedefinition", "view_pipelinestep")


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser() -> Client:
    return login(User.objects.create_superuser("root", "root@example.com", "pw"))


@pytest.fixture
def credential_manager() -> Client:
    return login(staff("keeper", *CREDENTIALS, *DEFINITIONS))


@pytest.fixture
def definitions_editor() -> Client:
    """May add and change client and pipeline definitions; no permission at all on credentials."""
    return login(staff("mallory", *DEFINITIONS, *PIPELINES))


@pytest.fixture
def credential_user() -> Client:
    """A definitions editor who may also *use* credentials (``use_credential``), not see or change them."""
    return login(staff("user", *DEFINITIONS, "use_credential"))


@pytest.fixture
def viewer() -> Client:
    return login(staff("auditor", *VIEW_ALL))


# -- helpers ------------------------------------------------------------------------------------------------


def url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:requestforge_django_{model}_{view}", args=args)


def status_url() -> str:
    return reverse("admin:requestforge_django_tokenstatus")


def definition_data(**overrides: Any) -> dict[str, Any]:
    """A client definition POST body for this module: named "exfil", client credentials, no base URL yet."""
    return client_data(**{"name": "exfil", "base_url": "", "auth_type": "client_credentials", **overrides})


def credential_data(credential: Credential, **overrides: Any) -> dict[str, Any]:
    """The credential form as its page submits it: secrets blank (kept), identity and origins as stored."""
    data = {
        "name": credential.name,
        "is_active": "on",
        "client_id": credential.client_id,
        "username": credential.username,
        "scope": credential.scope,
        "extra_params": "{}",
        "allowed_origins": "\n".join(credential.allowed_origins),
        **{name: "" for name in Credential.SECRET_FIELDS},
    }
    data.update(overrides)
    return data


def errors_of(response: Any) -> str:
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    return html_lib.unescape(" | ".join(found))


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def credential_choices(html: str) -> list[str]:
    """The option labels of the definition form's credential select."""
    select = re.search(r'<select name="credential"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, "no credential select on the page"
    return [
        html_lib.unescape(label).strip()
        for value, label in re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', select.group(1))
        if value
    ]


def refresh(client: Client, name: str) -> Any:
    return client.post(status_url(), {"action": "refresh", "kind": "client", "name": name}, follow=True)


def leaked(server: PartnerServer) -> list[str]:
    """Every canary (and the client id) that arrived at ``server``, in any header, path or body."""
    found = []
    for received in server.received:
        wire = received.path + " " + " ".join(f"{k}: {v}" for k, v in received.headers.items()) + " " + received.body.decode("latin-1")
        found += [canary for canary in CANARIES if canary in wire]
    return found


def assert_nothing_reached(server: PartnerServer) -> None:
    assert server.received == [], [(r.method, r.path) for r in server.received]


def assert_no_secret(html: str, *extra: str) -> None:
    for secret in (*CANARIES, *extra):
        assert secret not in html


# -- the reported attack ---------------------------------------------------------------------------------------


def test_the_definitions_only_editor_cannot_send_the_client_secret_to_their_host(
    definitions_editor: Client, erp: Credential, configured: StubTokenEndpoint, attacker: PartnerServer
) -> None:
    """The issue's steps, one by one: each is refused, and the attacker's host receives nothing."""
    assert definitions_editor.get(url("credential", "changelist")).status_code == 403
    assert definitions_editor.get(url("credential", "change", erp.pk)).status_code == 403

    # 1. The form does not offer the credential.
    add_page = definitions_editor.get(url("clientdefinition", "add"))
    assert add_page.status_code == 200
    assert credential_choices(add_page.content.decode()) == []

    # 2. A tampered POST naming it is refused; nothing is saved.
    response = definitions_editor.post(
        url("clientdefinition", "add"),
        definition_data(base_url=attacker.url, token_url=attacker.url + TOKEN_PATH, credential=str(erp.pk)),
    )
    assert response.status_code == 200
    assert "Select a valid choice" in errors_of(response)
    assert not ClientDefinition.objects.filter(name="exfil").exists()

    # 3. "Refresh now": there is no such client to refresh.
    response = refresh(definitions_editor, "exfil")
    assert any(m.startswith("Could not refresh exfil: UnknownNameError") for m in messages_of(response)), messages_of(response)
    assert_nothing_reached(attacker)
    assert configured.stats().token_requests == 0


def test_a_definition_that_reached_the_database_anyway_sends_nothing_on_refresh_now(
    definitions_editor: Client, erp: Credential, configured: StubTokenEndpoint, attacker: PartnerServer, committed: Callable[..., Any]
) -> None:
    """Defence in depth: a row written around the admin (shell, fixture, SQL) is refused by the registry."""
    with committed():
        ClientDefinition.objects.create(
            name="exfil", base_url=configured.url, auth_type="client_credentials", token_url=attacker.url + TOKEN_PATH, credential=erp
        )
    response = refresh(definitions_editor, "exfil")
    texts = messages_of(response)
    assert any(
        m.startswith("Could not refresh exfil: UnboundCredentialError")
        and f'database client "exfil" would send credential "erp" to {attacker.url} (AUTH.TOKEN_URL)' in m
        and E043 in m
        for m in texts
    ), texts
    assert_no_secret(response.content.decode())
    assert_nothing_reached(attacker)

    with pytest.raises(UnboundCredentialError) as caught:
        get_client("exfil")
    error = caught.value
    assert (error.definition, error.credential, error.origin, error.key) == ("exfil", "erp", attacker.url, "AUTH.TOKEN_URL")
    again = pickle.loads(pickle.dumps(error))
    assert (again.definition, again.credential, again.origin) == ("exfil", "erp", attacker.url) and str(again) == str(error)
    assert_no_secret(str(error) + repr(error))
    assert_nothing_reached(attacker)


def test_the_definitions_only_editor_cannot_repoint_a_definition_that_uses_the_credential(
    definitions_editor: Client, erp_api: ClientDefinition, configured: StubTokenEndpoint, attacker: PartnerServer
) -> None:
    change = url("clientdefinition", "change", erp_api.pk)
    page = definitions_editor.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and 'name="base_url"' not in html  # view-only for this user
    assert_no_secret(html)

    for field in ("base_url", "token_url"):
        target = attacker.url + (TOKEN_PATH if field == "token_url" else "")
        body = definition_data(
            name="erp-api", base_url=configured.url, token_url=configured.token_url, credential=str(erp_api.credential_id)
        )
        body[field] = target
        assert definitions_editor.post(change, body).status_code == 403
    body = definition_data(name="erp-api", base_url=configured.url, token_url=configured.token_url, verify_ssl="", credential="")
    assert definitions_editor.post(change, body).status_code == 403  # not even by dropping the credential
    erp_api.refresh_from_db()
    assert (erp_api.base_url, erp_api.token_url, erp_api.credential_id) == (configured.url, configured.token_url, erp_api.credential.pk)

    # "Refresh now" on it is allowed (their permission on definitions) and goes where the credential is bound.
    response = refresh(definitions_editor, "erp-api")
    assert any(m.startswith("Refreshed erp-api: new token ") for m in messages_of(response)), messages_of(response)
    assert configured.stats().token_requests == 1
    assert_no_secret(response.content.decode(), get_token_manager("erp-api").peek_token().access_token)
    assert_nothing_reached(attacker)


def test_pipeline_editors_have_no_way_to_a_credential(
    definitions_editor: Client, erp: Credential, configured: StubTokenEndpoint, attacker: PartnerServer
) -> None:
    """A pipeline step takes no credential: its form has no such field, and a pipeline client cannot carry one."""
    add_page = definitions_editor.get(url("pipelinedefinition", "add")).content.decode()
    assert "credential" not in add_page.lower()
    response = definitions_editor.post(
        url("clientdefinition", "add"),
        definition_data(base_url=attacker.url, auth_type="pipeline", pipeline="partner", credential=str(erp.pk)),
    )
    assert response.status_code == 200 and "Select a valid choice" in errors_of(response)
    assert_nothing_reached(attacker)


# -- users who may use the credential ---------------------------------------------------------------------------


def test_a_user_who_may_use_the_credential_sees_it_and_is_held_to_its_origins(
    credential_user: Client, erp: Credential, configured: StubTokenEndpoint, attacker: PartnerServer
) -> None:
    assert credential_user.get(url("credential", "changelist")).status_code == 403  # use is not view
    assert credential_choices(credential_user.get(url("clientdefinition", "add")).content.decode()) == ["erp"]

    response = credential_user.post(
        url("clientdefinition", "add"),
        definition_data(base_url=configured.url, token_url=attacker.url + TOKEN_PATH, credential=str(erp.pk)),
    )
    errors = errors_of(response)
    assert response.status_code == 200 and f'Credential "erp" may not be sent to {attacker.url}' in errors and E043 in errors
    assert f"its allowed origins are {configured.url}." in errors

    for auth_type in ("api_key", "bearer", "basic"):  # static secrets go to BASE_URL: bound there too
        response = credential_user.post(
            url("clientdefinition", "add"), definition_data(auth_type=auth_type, base_url=attacker.url, credential=str(erp.pk))
        )
        assert response.status_code == 200 and f'Credential "erp" may not be sent to {attacker.url}' in errors_of(response), auth_type
    assert not ClientDefinition.objects.exists()

    response = credential_user.post(
        url("clientdefinition", "add"),
        definition_data(name="erp-ok", base_url=configured.url, token_url=configured.token_url, credential=str(erp.pk)),
    )
    assert response.status_code == 302, errors_of(response)
    response = refresh(credential_user, "erp-ok")
    assert any(m.startswith("Refreshed erp-ok: new token ") for m in messages_of(response)), messages_of(response)
    assert configured.stats().token_requests == 1
    assert_nothing_reached(attacker)


def test_the_origin_binding_holds_for_superusers_too(superuser: Client, erp: Credential, attacker: PartnerServer) -> None:
    """Superusers see every credential, and still change the binding only on the credential itself."""
    other = Credential.objects.create(name="other", client_id="x", client_secret=CLIENT_SECRET)
    assert credential_choices(superuser.get(url("clientdefinition", "add")).content.decode()) == ["erp", "other"]
    response = superuser.post(
        url("clientdefinition", "add"),
        definition_data(base_url=attacker.url, token_url=attacker.url + TOKEN_PATH, credential=str(other.pk)),
    )
    errors = errors_of(response)
    assert f'Credential "other" may not be sent to {attacker.url}' in errors
    assert "its allowed origins are none: only clients defined in settings may use it." in errors
    assert_nothing_reached(attacker)


# -- the credential manager owns the binding -------------------------------------------------------------------


def test_only_users_who_may_change_the_credential_edit_its_origins(
    credential_manager: Client, credential_user: Client, viewer: Client, erp: Credential, configured: StubTokenEndpoint
) -> None:
    change = url("credential", "change", erp.pk)
    widened = credential_data(erp, allowed_origins=f"{configured.url}\nhttps://elsewhere.example.com")
    assert credential_user.post(change, widened).status_code == 403
    assert viewer.post(change, widened).status_code == 403
    erp.refresh_from_db()
    assert erp.allowed_origins == [configured.url]

    viewer_page = viewer.get(change).content.decode()
    assert configured.url in viewer_page and 'name="allowed_origins"' not in viewer_page  # shown, not editable
    assert_no_secret(viewer_page)

    form = credential_manager.get(change).content.decode()
    assert re.search(r'<textarea name="allowed_origins"[^>]*>\s*' + re.escape(configured.url) + r"</textarea>", form)
    response = credential_manager.post(change, credential_data(erp, allowed_origins="HTTPS://Auth.Example.com:443/\n\n" + configured.url))
    assert response.status_code == 302, errors_of(response)
    erp.refresh_from_db()
    assert erp.allowed_origins == ["https://auth.example.com", configured.url]
    assert erp.client_secret == CLIENT_SECRET  # secrets left blank were kept

    for bad in ("https://auth.example.com/oauth/token", "ftp://files.example.com", "auth.example.com", "https://user:pw@auth.example.com"):
        response = credential_manager.post(change, credential_data(erp, allowed_origins=bad))
        assert response.status_code == 200 and "Entry 1" in errors_of(response), bad


def test_narrowing_the_origins_warns_and_the_definition_stops_sending(
    credential_manager: Client, erp_api: ClientDefinition, configured: StubTokenEndpoint, committed: Callable[..., Any]
) -> None:
    get_client("erp-api").get(PROTECTED_PATH)
    assert configured.stats().token_requests == 1
    erp = erp_api.credential
    with committed():
        response = credential_manager.post(
            url("credential", "change", erp.pk), credential_data(erp, allowed_origins="https://auth.example.com"), follow=True
        )
    texts = messages_of(response)
    assert any(f'Client definition "erp-api" sends this credential to {configured.url}, which is no longer allowed' in m for m in texts)
    with pytest.raises(UnboundCredentialError):
        get_client("erp-api")
    assert configured.stats().token_requests == 1  # nothing more was sent


def test_the_recording_server_does_catch_a_leak_once_the_manager_binds_the_credential_there(
    credential_manager: Client, erp: Credential, configured: StubTokenEndpoint, attacker: PartnerServer, committed: Callable[..., Any]
) -> None:
    """Positive control: binding to a host is the credential manager's decision, and then the secret goes there."""
    with committed():
        response = credential_manager.post(
            url("credential", "change", erp.pk), credential_data(erp, allowed_origins=f"{configured.url}\n{attacker.url}")
        )
    assert response.status_code == 302, errors_of(response)
    response = credential_manager.post(
        url("clientdefinition", "add"),
        definition_data(base_url=attacker.url, token_url=attacker.url + TOKEN_PATH, credential=str(erp.pk)),
    )
    assert response.status_code == 302, errors_of(response)
    refresh(credential_manager, "exfil")
    assert leaked(attacker) == [CLIENT_SECRET]


# -- view-only users and what every page shows --------------------------------------------------------------------


def test_view_only_users_see_no_secret_and_can_change_nothing(
    viewer: Client, erp_api: ClientDefinition, configured: StubTokenEndpoint, attacker: PartnerServer
) -> None:
    get_client("erp-api").get(PROTECTED_PATH)
    token = get_token_manager("erp-api").peek_token().access_token
    for page in (
        url("credential", "changelist"),
        url("credential", "change", erp_api.credential_id),
        url("clientdefinition", "changelist"),
        url("clientdefinition", "change", erp_api.pk),
        status_url(),
    ):
        response = viewer.get(page)
        assert response.status_code == 200, page
        assert_no_secret(response.content.decode(), token)
    assert viewer.get(url("clientdefinition", "add")).status_code == 403
    body = definition_data(name="erp-api", base_url=attacker.url, token_url=configured.token_url, credential=str(erp_api.credential_id))
    assert viewer.post(url("clientdefinition", "change", erp_api.pk), body).status_code == 403
    assert viewer.post(status_url(), {"action": "refresh", "kind": "client", "name": "erp-api"}).status_code == 403
    assert_nothing_reached(attacker)


def test_no_admin_page_shows_a_secret(superuser: Client, erp_api: ClientDefinition, configured: StubTokenEndpoint) -> None:
    erp = erp_api.credential
    ciphertexts = tuple(raw_column(Credential._meta.db_table, name, erp.pk) for name in Credential.SECRET_FIELDS)
    response = refresh(superuser, "erp-api")
    token = get_token_manager("erp-api").peek_token().access_token
    pages = [response]
    for page in (
        url("credential", "changelist"),
        url("credential", "change", erp.pk),
        url("clientdefinition", "add"),
        url("clientdefinition", "change", erp_api.pk),
        url("clientdefinition", "changelist"),
        status_url(),
    ):
        pages.append(superuser.get(page))
    for page in pages:
        assert page.status_code == 200
        assert_no_secret(page.content.decode(), token, *ciphertexts)


# -- settings clients are trusted code ---------------------------------------------------------------------------


def test_settings_clients_use_any_credential_whatever_its_binding(
    settings: Any, configured: StubTokenEndpoint, committed: Callable[..., Any]
) -> None:
    with committed():
        Credential.objects.create(name="unbound", client_id=configured.client_id, client_secret=CLIENT_SECRET)
    clients = {**settings.REQUESTFORGE["CLIENTS"]}
    clients["erp-settings"] = {
        "BASE_URL": configured.url,
        "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": configured.token_url, "CREDENTIAL": "unbound"},
    }
    settings.REQUESTFORGE = {**settings.REQUESTFORGE, "CLIENTS": clients}
    assert get_client("erp-settings").get(PROTECTED_PATH).status_code == 200
    assert configured.stats().token_requests == 1


# -- the database check ---------------------------------------------------------------------------------------


def e043(databases: Any = ("default",)) -> list[checks.CheckMessage]:
    return [m for m in check_credential_bindings(databases=databases) if m.id == E043]


def test_check_e043_reports_definitions_outside_their_credential_binding(
    settings: Any, erp_api: ClientDefinition, configured: StubTokenEndpoint, attacker: PartnerServer
) -> None:
    assert e043() == []
    ClientDefinition.objects.filter(pk=erp_api.pk).update(base_url=attacker.url)  # changed outside the admin
    ClientDefinition.objects.create(name="off", base_url=attacker.url, auth_type="bearer", credential=erp_api.credential, is_active=False)
    ClientDefinition.objects.create(name="via-pipeline", base_url=attacker.url, auth_type="pipeline", pipeline="partner")

    (error,) = e043()
    assert error.level == checks.ERROR and error.obj == 'REQUESTFORGE client "erp-api"'
    assert f'Client definition "erp-api" (pk={erp_api.pk}) would send credential "erp" to {attacker.url} (BASE_URL)' in error.msg
    assert f"allowed origins ({configured.url})" in error.msg
    assert_no_secret(error.msg + (error.hint or ""))
    assert e043(databases=None) == []  # never opens a connection without --database

    with pytest.raises(SystemCheckError, match=re.escape(E043)):
        call_command("check", "--database", "default", "--tag", "requestforge")

    # A settings entry of the same name shadows the row (E031): the row is not used, so not bound.
    settings.REQUESTFORGE = {
        **settings.REQUESTFORGE,
        "CLIENTS": {**settings.REQUESTFORGE["CLIENTS"], "erp-api": {"BASE_URL": configured.url}},
    }
    assert e043() == []


# -- origins -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://Auth.Example.com", "https://auth.example.com"),
        ("https://auth.example.com:443/", "https://auth.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_origins_are_normalized(text: str, expected: str) -> None:
    assert normalize_origin(text) == expected


@pytest.mark.parametrize(
    "text", ["", "auth.example.com", "ftp://x.example.com", "https://x.example.com/token", "https://x.example.com?a=1"]
)
def test_what_is_not_an_origin_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(text)


# -- the migration ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_binds_existing_credentials_to_their_current_use() -> None:
    app = "requestforge_django"
    executor = MigrationExecutor(connection)
    executor.migrate([(app, "0001_initial")])
    try:
        old = executor.loader.project_state([(app, "0001_initial")]).apps
        OldCredential, OldDefinition = old.get_model(app, "Credential"), old.get_model(app, "ClientDefinition")
        oauth = OldCredential.objects.create(name="oauth", client_id="i", client_secret=CLIENT_SECRET)
        static = OldCredential.objects.create(name="static", api_key=API_KEY)
        unused = OldCredential.objects.create(name="unused", client_secret=CLIENT_SECRET)
        parked = OldCredential.objects.create(name="parked", token=BEARER)
        common = {"verify_ssl": True, "headers": {}, "hooks": [], "excluded_paths": []}
        OldDefinition.objects.create(
            name="a",
            base_url="https://api.example.com/v1",
            auth_type="client_credentials",
            token_url="https://Login.Example.com/t",
            credential=oauth,
            **common,
        )
        OldDefinition.objects.create(
            name="b",
            base_url="https://api2.example.com:8443",
            auth_type="password",
            token_url="https://login.example.com:443/x",
            credential=oauth,
            **common,
        )
        OldDefinition.objects.create(
            name="c",
            base_url="http://legacy.example.com",
            auth_type="api_key",
            token_url="https://ignored.example.com/t",
            credential=static,
            **common,
        )
        OldDefinition.objects.create(
            name="d", base_url="https://off.example.com", auth_type="bearer", credential=parked, is_active=False, **common
        )

        executor = MigrationExecutor(connection)
        executor.migrate([(app, "0002_credential_allowed_origins")])
        new = executor.loader.project_state([(app, "0002_credential_allowed_origins")]).apps
        origins = dict(new.get_model(app, "Credential").objects.values_list("name", "allowed_origins"))
        assert origins == {
            "oauth": ["https://login.example.com", "https://api.example.com", "https://api2.example.com:8443"],
            "static": ["http://legacy.example.com"],
            "unused": [],
            "parked": [],  # only active definitions count: reactivating one needs a credential manager
        }
        assert unused.pk and (raw_column(Credential._meta.db_table, "client_secret", oauth.pk) or "").startswith("gAAAA")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "requestforge_django", "--check", "--dry-run", verbosity=0)
