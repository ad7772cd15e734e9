"""``aget_client``: the same client as ``get_client``, looked up off the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import requestforge_django
from requestforge_django import aget_client, get_client
from requestforge_django.registry import UnknownNameError
from requestforge_django.testing import StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture
def configured(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> StubTokenEndpoint:
    settings.REQUESTFORGE = requestforge_setting(token_server, redis_cache)
    return token_server


def test_same_object_as_get_client(configured: StubTokenEndpoint) -> None:
    async def lookup() -> tuple[object, object, int]:
        loop_thread = threading.get_ident()
        first = await aget_client("billing")
        second = await aget_client("billing")
        assert threading.get_ident() == loop_thread
        return first, second, loop_thread

    first, second, _ = asyncio.run(lookup())
    assert first is second is get_client("billing")
    assert requestforge_django.aget_client is aget_client


def test_lookup_runs_off_the_event_loop(configured: StubTokenEndpoint, get_client_threads: list[int]) -> None:
    threads = get_client_threads

    async def lookup() -> tuple[object, int]:
        return await aget_client("billing"), threading.get_ident()

    client, loop_thread = asyncio.run(lookup())
    assert client is get_client("billing")  # the real one, imported before the spy
    assert threads and threads[0] != loop_thread


def test_unknown_name_raises_the_same_error(configured: StubTokenEndpoint) -> None:
    with pytest.raises(UnknownNameError):
        asyncio.run(aget_client("no-such-client"))
