"""``requestforge.E043`` for saved token_exchange definitions: ``manage.py check --database`` applies the subject-token rule.

A database ``token_exchange`` client may send the token of its ``SUBJECT_TOKEN_FROM``
only to an origin that source already sends its secrets or tokens to
(:mod:`requestforge_django.registry.exchange`). The admin form enforces it when a row is
saved; a row saved before the rule existed, or whose source changed afterwards, used to
pass ``check --database`` and fail only in ``get_client``. The check reads definitions
only: every test runs it with ``responses`` active and no URL registered, so a token or
discovery request would fail the test, and asserts the registry built nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
from django.core.checks import Error, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from requestforge_django.checks import CHECK_TAG
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.registry import UnboundSubjectError, get_token_manager, registry
from tests.support.app_tables import without_app_tables

KEY = "pmIUQnmBvqvM_VrE6S4HdmWZNuhK8fKOEEIIQHMSrqk="  # the tests-only key of tests/settings.py
E043 = "requestforge.E043"
AUTH = "https://auth.example.com"
TOKEN_URL = f"{AUTH}/oauth/token"
API = "https://api.example.com"
SSO = "https://sso.example.org"
STS = "https://sts.example.net"
SECRET = "cs-CANARY-7f3a91c2e4"

SETTING: dict[str, Any] = {
    "ENCRYPTION_KEYS": [KEY],
    "CLIENTS": {
        "upstream": {
            "BASE_URL": API,
            "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "up", "CLIENT_SECRET": SECRET},
        },
    },
    "PIPELINES": {"login": {"STEPS": [{"NAME": "sso", "URL": f"{SSO}/token"}]}},
}

pytestmark = pytest.mark.django_db


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def exchange(name: str, subject: str, *, token_url: str = "", issuer: str = "", **fields: Any) -> ClientDefinition:
    """A token_exchange row saved without the admin form, its own credential bound to where it sends it (no E043 for that)."""
    endpoint = origin_of(token_url or issuer)
    credential = Credential.objects.create(name=f"{name}-cred", client_id=name, client_secret=SECRET, allowed_origins=[endpoint, API])
    return ClientDefinition.objects.create(
        name=name,
        base_url=API,
        auth_type="token_exchange",
        token_url=token_url,
        issuer=issuer,
        credential=credential,
        subject_token_from=subject,
        **fields,
    )


def subject_errors(*, databases: tuple[str, ...] | None = ("default",)) -> list[Any]:
    """The E043 messages of every requestforge check, with no request possible and nothing built."""
    registry.reset()
    with responses.RequestsMock() as mock:  # no URL registered: any request raises ConnectionError out of the check
        messages = [m for m in run_checks(tags=[CHECK_TAG], databases=None if databases is None else list(databases)) if m.id == E043]
        assert len(mock.calls) == 0
    assert repr(registry) == "<Registry (nothing built)>"
    for message in messages:
        assert SECRET not in message.msg and SECRET not in message.hint
    return messages


def test_definitions_bound_to_their_sources_pass() -> None:
    exchange("at-token-url", "upstream", token_url=f"{AUTH}/exchange")  # the settings source's TOKEN_URL origin
    exchange("at-base-url", "upstream", token_url=f"{API}/sts")  # ... its BASE_URL origin
    exchange("at-step", "login", token_url=f"{SSO}/exchange")  # a settings pipeline: its steps' origins
    exchange("by-issuer", "upstream", issuer=AUTH)  # ISSUER: its origin, without fetching the metadata
    with override_settings(REQUESTFORGE=SETTING):
        assert subject_errors() == []
        with responses.RequestsMock():
            call_command("check", "--database", "default", "--tag", CHECK_TAG)


def test_an_unbound_definition_is_e043_naming_client_key_and_origins() -> None:
    token = exchange("ex", "upstream", token_url=f"{STS}/token")
    discovered = exchange("ex-issuer", "login", issuer="https://idp.example.net")
    with override_settings(REQUESTFORGE=SETTING):
        assert subject_errors(databases=None) == []  # a plain `check` never opens a connection
        messages = subject_errors()
        assert [(type(m), m.obj) for m in messages] == [
            (Error, 'REQUESTFORGE client "ex"'),
            (Error, 'REQUESTFORGE client "ex-issuer"'),
        ]
        assert messages[0].msg == (
            f'Client definition "ex" (pk={token.pk}) would send the token of "upstream" (AUTH.SUBJECT_TOKEN_FROM) to {STS} '
            f'(AUTH.TOKEN_URL) for token exchange, not an origin "upstream" sends its secrets or tokens to ({API}, {AUTH}); '
            "get_client raises UnboundSubjectError and nothing is sent."
        )
        assert messages[1].msg.startswith(
            f'Client definition "ex-issuer" (pk={discovered.pk}) would send the token of "login" (AUTH.SUBJECT_TOKEN_FROM) to '
            f'https://idp.example.net (AUTH.ISSUER) for token exchange, not an origin "login" sends its secrets or tokens to ({SSO});'
        )
        assert messages[0].hint.startswith('Point AUTH.TOKEN_URL at an origin "upstream" already sends')
        with responses.RequestsMock(), pytest.raises(SystemCheckError, match=r'requestforge\.E043.*"ex".*AUTH\.SUBJECT_TOKEN_FROM'):
            call_command("check", "--database", "default", "--tag", CHECK_TAG)
        # What the check announces is what the registry does, nothing sent.
        for name in ("ex", "ex-issuer"):
            with responses.RequestsMock(), pytest.raises(UnboundSubjectError):
                get_token_manager(name)


def test_a_database_source_binds_by_its_credentials_allowed_origins_and_a_later_change_is_found() -> None:
    source_credential = Credential.objects.create(name="src", client_id="src", client_secret=SECRET, allowed_origins=[AUTH, API])
    ClientDefinition.objects.create(
        name="source", base_url=API, auth_type="client_credentials", token_url=TOKEN_URL, credential=source_credential
    )
    at_auth = exchange("at-auth", "source", token_url=f"{AUTH}/exchange")
    at_sts = exchange("at-sts", "source", token_url=f"{STS}/token")
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": [KEY]}):
        assert [(m.obj, f"pk={at_sts.pk}" in m.msg) for m in subject_errors()] == [('REQUESTFORGE client "at-sts"', True)]
        assert f'not an origin "source" sends its secrets or tokens to ({AUTH}, {API})' in subject_errors()[0].msg

        # The source's credential managers bind it to the STS: both exchanges pass.
        Credential.objects.filter(pk=source_credential.pk).update(allowed_origins=[AUTH, API, STS])
        assert subject_errors() == []

        # Later the source moves its token endpoint to the STS and AUTH is dropped: the saved exchange at AUTH is now reported.
        ClientDefinition.objects.filter(name="source").update(token_url=f"{STS}/oauth/token")
        Credential.objects.filter(pk=source_credential.pk).update(allowed_origins=[API, STS])
        assert [m.obj for m in subject_errors()] == ['REQUESTFORGE client "at-auth"']
        assert f'"at-auth" (pk={at_auth.pk})' in subject_errors()[0].msg


def test_rows_the_registry_never_exchanges_with_are_not_reported() -> None:
    exchange("off", "upstream", token_url=f"{STS}/token", is_active=False)  # inactive
    exchange("nowhere", "missing", token_url=f"{STS}/token")  # names nothing: E052, not an origin question
    exchange("upstream", "login", token_url=f"{STS}/token")  # shadowed by the settings entry: E031, the row is unused
    with override_settings(REQUESTFORGE=SETTING):
        assert subject_errors() == []
        assert [m.id for m in run_checks(tags=[CHECK_TAG], databases=["default"]) if m.id == "requestforge.E031"] == ["requestforge.E031"]


@pytest.mark.django_db(transaction=True)
def test_silent_before_migrate_so_migrate_can_run() -> None:
    with without_app_tables(), override_settings(REQUESTFORGE=SETTING):
        assert subject_errors() == []
