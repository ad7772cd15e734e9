"""Declarative clients bound by name inherit everything from the REQUESTFORGE entry, through the registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from requestforge_django import get, http_client
from requestforge_django.http.messages import HttpResponse
from requestforge_django.testing import StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@http_client("billing")
class Billing:
    @get("/api/protected")
    def protected(self) -> dict[str, Any]: ...

    @get("/api/protected")
    def protected_response(self) -> HttpResponse: ...


@pytest.fixture
def server(settings: Any, redis_cache: str) -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(expires_in=3600) as server:
        settings.REQUESTFORGE = requestforge_setting(server, redis_cache)
        yield server


def test_name_bound_class_uses_the_configured_client_and_its_token_auth(server: StubTokenEndpoint) -> None:
    billing = Billing()
    assert billing.protected() == {"ok": True, "method": "GET", "path": "/api/protected"}
    assert billing.protected_response().status_code == 200
    assert server.stats().token_requests == 1  # one token, shared by both calls


def test_settings_change_is_followed(server: StubTokenEndpoint, settings: Any) -> None:
    billing = Billing()
    billing.protected()
    settings.REQUESTFORGE = {**settings.REQUESTFORGE, "KEY_PREFIX": "rf-other"}  # a rebuilt registry
    assert billing.protected() == {"ok": True, "method": "GET", "path": "/api/protected"}
    assert server.stats().token_requests == 2  # new prefix, new token: the class followed the rebuilt client
