"""What the token-layer tests share: a mocked token endpoint and the form a provider sent it, a fake clock,
a read-counting storage and joinable renewals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

from .fakes import FakeClock, ReadCountingStorage, Renewals


def form(call: Any) -> dict[str, list[str]]:
    """The form body of a request ``responses`` recorded, parsed (the way the token endpoint reads it)."""
    body = call.request.body
    return parse_qs(body if isinstance(body, str) else body.decode())


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """``requests`` answered by registered responses only; a registered one never called fails the test."""
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves (``advance``): token lifetimes without waiting."""
    return FakeClock()


@pytest.fixture
def storage() -> ReadCountingStorage:
    """Counts its reads; not the in-memory type, so the token layer treats it as shared (Redis-like).

    Files that need another storage define their own ``storage``.
    """
    return ReadCountingStorage()


@pytest.fixture
def renewals() -> Renewals:
    """Background renewals on threads a test can join."""
    return Renewals()
