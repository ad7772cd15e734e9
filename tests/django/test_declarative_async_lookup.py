"""``async def`` methods of a class bound by name look their client up without blocking the loop.

The registry may read database definitions to build a client; on the event loop that is a
blocking call (and Django refuses it outright). The Django app installs ``aget_client`` as
the declarative async resolver, so the lookup runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from types import MappingProxyType
from typing import Any

import pytest

import requestforge_django.registry as registry_module
from requestforge_django.http.client import HttpClient
from requestforge_django.http.declarative import get, http_client, set_client_resolver
from requestforge_django.http.messages import HttpRequest, HttpResponse
from requestforge_django.testing import StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@http_client("billing")
class Billing:
    @get("/invoices/{invoice_id}")
    async def invoice(self, invoice_id: int) -> dict[str, Any]: ...


@pytest.fixture
def configured(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> StubTokenEndpoint:
    settings.REQUESTFORGE = requestforge_setting(token_server, redis_cache)
    return token_server


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[HttpRequest]:
    """Every ``arequest`` answered with ``{"ok": true}`` without a network (the lookup is what is tested)."""
    sent: list[HttpRequest] = []

    async def arequest(self: HttpClient, request: HttpRequest) -> HttpResponse:
        sent.append(request)
        return HttpResponse(200, MappingProxyType({"Content-Type": "application/json"}), b'{"ok": true}', request.url)

    monkeypatch.setattr(HttpClient, "arequest", arequest)
    return sent


def test_an_async_method_looks_its_client_up_off_the_loop(
    configured: StubTokenEndpoint, answered: list[HttpRequest], get_client_threads: list[int]
) -> None:
    lookups = get_client_threads

    async def call() -> tuple[Any, int]:
        return await Billing().invoice(42), threading.get_ident()

    result, loop_thread = asyncio.run(call())
    assert result == {"ok": True}
    assert [request.url for request in answered] == ["/invoices/42"]
    assert lookups, "the registry was not asked for the client"
    assert loop_thread not in lookups


def test_without_an_async_resolver_the_sync_one_runs_in_a_worker_thread(answered: list[HttpRequest]) -> None:
    threads: list[int] = []
    client = HttpClient()

    def resolve(name: str) -> HttpClient:
        threads.append(threading.get_ident())
        return client

    previous = set_client_resolver(resolve)
    try:

        async def call() -> tuple[Any, int]:
            return await Billing().invoice(7), threading.get_ident()

        result, loop_thread = asyncio.run(call())
    finally:
        set_client_resolver(previous, async_resolver=registry_module.aget_client)
    assert result == {"ok": True}
    assert threads and loop_thread not in threads
