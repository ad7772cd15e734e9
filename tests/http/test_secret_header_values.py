"""A ``Secret`` given as a header value: sent in clear on the wire, a credential everywhere else.

It used to raise ``TypeError`` when the request was prepared (the header check ran a regex
on the ``Secret`` object), on both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import UntrustedOriginException
from requestforge_django.http.messages import HttpMethod, HttpRequest
from requestforge_django.http.secrets import Secret
from tests.support.partner_server import PartnerServer, Reply

VALUE = "tenant-key-0123456789abcdef"


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    with PartnerServer(quiet=True) as running:
        running.route("GET", "/data", Reply(200, {"ok": True}))
        yield running


def client_of(server: PartnerServer) -> HttpClient:
    return HttpClient(HttpClientConfigBuilder().with_base_url(server.url).build())


def test_the_header_is_marked_sensitive_and_masked() -> None:
    request = HttpRequest(HttpMethod.GET, "/data", headers={"X-Tenant-Key": Secret(VALUE), "X-Trace": "t"})
    assert request.sensitive == {"x-tenant-key"}
    assert VALUE not in request.to_curl() and VALUE not in repr(request)
    added = HttpRequest(HttpMethod.GET, "/data").with_headers({"X-Tenant-Key": Secret(VALUE)})
    assert added.sensitive == {"x-tenant-key"}


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_value_is_sent_in_clear(server: PartnerServer, path: str) -> None:
    client = client_of(server)
    headers = {"X-Tenant-Key": Secret(VALUE)}
    if path == "sync":
        response = client.get("/data", headers=headers)
    else:

        async def call() -> object:
            async with client:
                return await client.aget("/data", headers=headers)

        response = asyncio.run(call())
    assert response.status_code == 200  # type: ignore[attr-defined]
    (received,) = server.requests_to("/data")
    assert received.header("X-Tenant-Key") == VALUE


def test_a_client_without_credentials_still_binds_it_to_its_origin(server: PartnerServer) -> None:
    with pytest.raises(UntrustedOriginException):
        client_of(server).get("http://other.invalid/data", headers={"X-Tenant-Key": Secret(VALUE)})
