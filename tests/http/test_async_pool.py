"""Pool sizes on the async path mean what they mean on the sync path.

``pool_maxsize`` without ``pool_block`` (the default) is how many connections the sync
pool keeps, not a cap on calls in flight; with ``pool_block`` it is a cap. Under ASGI every
page of a process shares one event loop, so a cap would queue a busy site's calls behind
``pool_maxsize`` of them (found by the example project's uvicorn test: 50 pages x 3 calls
took 1.3 s instead of about one partner latency).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from tests.http.test_async_client import InFlight
from tests.support.partner_server import PartnerServer


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    with PartnerServer(quiet=True) as running:
        yield running


def most_in_flight(server: PartnerServer, *, block: bool, calls: int = 8) -> int:
    gate = InFlight(target=calls)  # each request is held until all are in flight (or 0.3 s pass)
    server.route("GET", "/held", gate)
    client = HttpClient(HttpClientConfigBuilder().with_base_url(server.url).with_pool_size(maxsize=2, block=block).build())

    async def main() -> None:
        async with client:
            responses = await asyncio.gather(*(client.aget("/held") for _ in range(calls)))
        assert [response.status_code for response in responses] == [200] * calls

    asyncio.run(main())
    return gate.most


def test_without_pool_block_pool_maxsize_does_not_cap_calls_in_flight(server: PartnerServer) -> None:
    assert most_in_flight(server, block=False) == 8


def test_with_pool_block_pool_maxsize_caps_calls_in_flight(server: PartnerServer) -> None:
    assert most_in_flight(server, block=True) == 2
