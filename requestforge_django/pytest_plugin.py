"""pytest fixtures for projects that use requestforge_django (needs pytest-django).

Enable them in your root ``conftest.py``::

    pytest_plugins = ["requestforge_django.pytest_plugin"]

Fixtures:

``stub_token_endpoint``
    A started :class:`~requestforge_django.testing.StubTokenEndpoint`, stopped after
    the test. Needs no Django.
``requestforge_reset``
    Calls :func:`~requestforge_django.testing.reset_requestforge` before and after the
    test: fresh clients and no cached tokens under the configured ``KEY_PREFIX``. It
    uses pytest-django's ``settings`` fixture so that its clean-up runs while the
    settings the test assigned are still in place (and so deletes *that* test's
    keys). Not autouse; to reset around every test, add to your conftest::

        @pytest.fixture(autouse=True)
        def _fresh_requestforge(requestforge_reset): ...

``requestforge_stub``
    Both of the above plus ``settings.REQUESTFORGE =
    requestforge_settings_for(stub)``: ``get_client("stub")`` calls the stub. Returns
    the stub.

Importing this module imports no Django, so it is safe in ``pytest_plugins`` before
pytest-django has configured settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .testing import StubTokenEndpoint, requestforge_settings_for, reset_requestforge

__all__ = ["requestforge_reset", "requestforge_stub", "stub_token_endpoint"]


@pytest.fixture
def stub_token_endpoint() -> Iterator[StubTokenEndpoint]:
    """A running :class:`StubTokenEndpoint` (client ``test-client`` / ``test-secret``, 1 h tokens)."""
    with StubTokenEndpoint() as stub:
        yield stub


@pytest.fixture
def requestforge_reset(settings: Any) -> Iterator[None]:
    """Reset the registry and delete this test's token-cache entries, before and after the test."""
    reset_requestforge()
    yield
    reset_requestforge()


@pytest.fixture
def requestforge_stub(settings: Any, requestforge_reset: None, stub_token_endpoint: StubTokenEndpoint) -> StubTokenEndpoint:
    """``settings.REQUESTFORGE`` pointing client ``"stub"`` at a running stub; returns the stub."""
    settings.REQUESTFORGE = requestforge_settings_for(stub_token_endpoint)
    reset_requestforge()  # the stub's KEY_PREFIX may hold entries an interrupted run left behind
    return stub_token_endpoint
