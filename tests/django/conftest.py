"""Fixtures of the Django-layer tests: state shared through a cache, and where the registry is asked for a client."""

from __future__ import annotations

import threading
from typing import Any

import pytest


@pytest.fixture(params=["redis", "db"])
def shared_alias(request: pytest.FixtureRequest) -> str:
    """Run a test on django-redis and on the database cache; the cache alias."""
    return request.getfixturevalue("redis_cache" if request.param == "redis" else "db_cache")


@pytest.fixture
def get_client_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread of every call of ``registry.get_client`` during the test, in order.

    The lookup may read database definitions, a blocking call: an async caller must make
    it off the event loop, and only the thread it ran on shows that.
    """
    import requestforge_django.registry as registry_module

    threads: list[int] = []
    real = registry_module.get_client

    def spy(name: str) -> Any:
        threads.append(threading.get_ident())
        return real(name)

    monkeypatch.setattr(registry_module, "get_client", spy)
    return threads
