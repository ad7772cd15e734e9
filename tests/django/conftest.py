"""Fixtures of the Django-layer tests of state shared through a cache."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["redis", "db"])
def shared_alias(request: pytest.FixtureRequest) -> str:
    """Run a test on django-redis and on the database cache; the cache alias."""
    return request.getfixturevalue("redis_cache" if request.param == "redis" else "db_cache")
