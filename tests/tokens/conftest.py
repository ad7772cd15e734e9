"""What the token-layer tests share: a mocked token endpoint and the form a provider sent it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses


def form(call: Any) -> dict[str, list[str]]:
    """The form body of a request ``responses`` recorded, parsed (the way the token endpoint reads it)."""
    body = call.request.body
    return parse_qs(body if isinstance(body, str) else body.decode())


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """``requests`` answered by registered responses only; a registered one never called fails the test."""
    with responses.RequestsMock() as rsps:
        yield rsps
