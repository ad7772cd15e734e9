"""The async path (``aget``... ``arequest_many``) against real loopback servers.

Each test drives its own event loop with ``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.declarative import get, http_client, post
from requestforge_django.http.exceptions import (
    CircuitBreakerException,
    ConnectionException,
    HttpClientException,
    MaxRetryException,
    TimeoutException,
    UntrustedOriginException,
)
from requestforge_django.http.hooks import ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from requestforge_django.http.messages import HttpMethod, HttpRequest, HttpResponse, RequestContext
from tests.support.partner_server import PartnerServer, Received, Reply

TOKEN = "async-test-bearer-0123456789abcdef"


def echo(received: Received) -> Reply:
    return Reply(
        200,
        {
            "method": received.method,
            "path": received.path,
            "auth": received.header("Authorization"),
            "body": received.body.decode() if received.body else None,
        },
    )


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    with PartnerServer(quiet=True) as running:
        yield running


def bearer_client(server: PartnerServer, builder: HttpClientConfigBuilder | None = None) -> HttpClient:
    builder = builder or HttpClientConfigBuilder()
    return HttpClient(builder.with_base_url(server.url).with_bearer_token(TOKEN).build())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class TestVerbs:
    def test_each_verb_sends_its_method_body_params_and_credentials(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        client = bearer_client(server)

        async def main() -> list[HttpResponse]:
            async with client:
                return [
                    await client.aget("/items", params={"q": "a b"}),
                    await client.ahead("/items"),
                    await client.aoptions("/items"),
                    await client.adelete("/items/1"),
                    await client.apost("/items", json_data={"n": 1}),
                    await client.aput("/items/1", data={"n": "2"}),
                    await client.apatch("/items/1", json_data=[3]),
                ]

        get_, head, options, delete, post_, put, patch = run(main())
        assert get_.json() == {"method": "GET", "path": "/items?q=a+b", "auth": f"Bearer {TOKEN}", "body": None}
        assert head.status_code == 200 and head.content == b""
        assert options.json()["method"] == "OPTIONS"
        assert delete.json()["method"] == "DELETE"
        assert post_.json()["body"] == '{"n": 1}'
        assert put.json()["body"] == "n=2"
        assert patch.json() == {"method": "PATCH", "path": "/items/1", "auth": f"Bearer {TOKEN}", "body": "[3]"}
        assert get_.headers["content-type"] == "application/json"  # case-insensitive headers
        assert get_.url == f"{server.url}/items?q=a+b"
        assert server.requests_to("/items")[-1].header("Content-Type") == "application/json"

    def test_same_wire_request_as_the_sync_path(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        client = bearer_client(server)
        client.post("/same", json_data={"k": "v"}, params={"p": "1"}, headers={"X-Trace": "t"})
        run(client.apost("/same", json_data={"k": "v"}, params={"p": "1"}, headers={"X-Trace": "t"}))
        sync_sent, async_sent = server.requests_to("/same")
        assert sync_sent.path == async_sent.path == "/same?p=1"
        assert sync_sent.body == async_sent.body
        for name in ("Authorization", "X-Trace", "Content-Type", "Content-Length", "User-Agent"):
            assert sync_sent.header(name) == async_sent.header(name)


class Recorder(RequestHookInterface, ResponseHookInterface, ErrorHookInterface):
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        self.events.append(f"request auth={request.headers.get('Authorization') is not None}")
        return request.with_headers({"X-Hooked": "yes"})

    def after_response(self, response: HttpResponse, context: RequestContext) -> HttpResponse:
        self.events.append(f"response {response.status_code}")
        return response

    def on_error(self, error: Exception, context: RequestContext) -> None:
        self.events.append(f"error {type(error).__name__}")


class TestLifecycle:
    def test_hooks_run_in_the_sync_order(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        events: list[str] = []
        client = bearer_client(server, HttpClientConfigBuilder().with_hooks(Recorder(events)))
        response = run(client.aget("/hooked"))
        assert events == ["request auth=False", "response 200"]  # request hooks run before the auth hook
        sent = server.requests_to("/hooked")[0]
        assert sent.header("X-Hooked") == "yes" and sent.header("Authorization") == f"Bearer {TOKEN}"
        assert response.status_code == 200

    def test_retries_then_succeeds(self, server: PartnerServer) -> None:
        replies = iter([Reply(503, {}), Reply(503, {}), Reply(200, {"ok": 3})])
        server.route("GET", "/flaky", lambda _r: next(replies))
        client = bearer_client(server, HttpClientConfigBuilder().with_retry(max_retries=3, base_delay=0.001, jitter=False))
        assert run(client.aget("/flaky")).json() == {"ok": 3}
        assert len(server.requests_to("/flaky")) == 3

    def test_retries_exhausted_raise_and_reach_error_hooks(self, server: PartnerServer) -> None:
        server.route("GET", "/down", Reply(503, {}))
        events: list[str] = []
        builder = HttpClientConfigBuilder().with_retry(max_retries=2, base_delay=0.001, jitter=False).with_hooks(Recorder(events))
        client = bearer_client(server, builder)
        with pytest.raises(MaxRetryException) as caught:
            run(client.aget("/down"))
        assert caught.value.attempts == 3
        assert len(server.requests_to("/down")) == 3
        assert events[-1] == "error MaxRetryException"

    def test_open_breaker_refuses_without_sending(self, server: PartnerServer) -> None:
        server.route("GET", "/broken", Reply(500, {}))
        client = bearer_client(server, HttpClientConfigBuilder().with_circuit_breaker(failure_threshold=2, recovery_timeout=60))

        async def main() -> None:
            assert (await client.aget("/broken")).status_code == 500
            assert (await client.aget("/broken")).status_code == 500
            with pytest.raises(CircuitBreakerException):
                await client.aget("/broken")

        run(main())
        assert len(server.requests_to("/broken")) == 2
        assert client.config.effective_circuit_breaker is not None
        with pytest.raises(CircuitBreakerException):  # one breaker serves both paths
            client.get("/broken")

    def test_rejected_token_is_refreshed_once(self, server: PartnerServer) -> None:
        from requestforge_django.http.hooks import AuthHookInterface

        class Rotating(AuthHookInterface):
            def __init__(self) -> None:
                self.token = "old"
                self.refreshes = 0

            def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
                return request.with_headers({"Authorization": f"Bearer {self.token}"})

            def refresh_auth(self, context: RequestContext | None = None) -> bool:
                self.refreshes += 1
                self.token = "new"
                return True

        server.route("GET", "/guarded", lambda r: Reply(200, {}) if r.header("Authorization") == "Bearer new" else Reply(401, {}))
        hook = Rotating()
        client = HttpClient(HttpClientConfigBuilder().with_base_url(server.url).with_auth_hook(hook).build())
        assert run(client.aget("/guarded")).status_code == 200
        assert hook.refreshes == 1
        assert [r.header("Authorization") for r in server.requests_to("/guarded")] == ["Bearer old", "Bearer new"]


class TestFailures:
    def test_read_timeout(self, server: PartnerServer) -> None:
        release = threading.Event()

        def stalled(_received: Received) -> Reply:
            release.wait(5)
            return Reply(200, {})

        server.route("GET", "/slow", stalled)
        client = bearer_client(server, HttpClientConfigBuilder().with_timeout(2, read=0.2))
        try:
            with pytest.raises(TimeoutException) as caught:
                run(client.aget("/slow"))
        finally:
            release.set()
        assert "Read timeout" in str(caught.value)
        assert caught.value.url == f"{server.url}/slow"

    def test_total_timeout(self, server: PartnerServer) -> None:
        release = threading.Event()
        server.route("GET", "/slow", lambda _r: (release.wait(5), Reply(200, {}))[1])
        client = bearer_client(server, HttpClientConfigBuilder().with_total_timeout(0.2))
        try:
            with pytest.raises(TimeoutException, match=r"Total timeout of 0\.2 s exceeded"):
                run(client.aget("/slow"))
        finally:
            release.set()

    def test_refused_connection(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        client = HttpClient(HttpClientConfigBuilder().with_base_url(f"http://127.0.0.1:{port}").build())
        with pytest.raises(ConnectionException) as caught:
            run(client.aget("/x", params={"api_key": "hush-0123456789"}))
        assert "hush-0123456789" not in str(caught.value) and "hush-0123456789" not in (caught.value.url or "")

    def test_header_with_a_line_break_is_refused_unsent(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        with pytest.raises(HttpClientException, match="line break") as caught:
            run(bearer_client(server).aget("/x", headers={"X-Note": "ok\r\nX-Injected: secret-value-123"}))
        assert "secret-value-123" not in str(caught.value)
        assert server.received == []

    def test_without_aiohttp_the_error_names_the_extra(self, server: PartnerServer, monkeypatch: pytest.MonkeyPatch) -> None:
        import sys

        from requestforge_django.http.exceptions import ConfigurationError

        monkeypatch.setitem(sys.modules, "aiohttp", None)  # what an environment without the extra looks like
        with pytest.raises(ConfigurationError, match=r'pip install "requestforge-django\[async\]"'):
            run(bearer_client(server).aget("/x"))

    def test_max_response_bytes(self, server: PartnerServer) -> None:
        server.route("GET", "/big", Reply(200, b"x" * 5000))
        client = bearer_client(server, HttpClientConfigBuilder().with_max_response_bytes(1000))
        with pytest.raises(HttpClientException, match="max_response_bytes"):
            run(client.aget("/big"))


class TestTrustBoundary:
    def test_untrusted_origin_is_refused_before_sending(self, server: PartnerServer) -> None:
        with PartnerServer() as other:
            other.route("*", "*", echo)
            client = bearer_client(server)
            with pytest.raises(UntrustedOriginException):
                run(client.aget(f"{other.url}/steal"))
            assert other.received == []

    def test_cross_origin_redirect_loses_credentials(self, server: PartnerServer) -> None:
        with PartnerServer() as other:
            other.route("*", "*", echo)
            server.route("GET", "/hop", Reply(302, b"", headers={"Location": f"{other.url}/landed?x=1"}))
            client = bearer_client(server)
            response = run(client.aget("/hop", headers={"X-Api-Key": "k-0123456789"}))
            assert response.json()["path"] == "/landed?x=1"
            landed = other.requests_to("/landed")[0]
            assert landed.header("Authorization") is None and landed.header("X-Api-Key") is None
            assert server.requests_to("/hop")[0].header("Authorization") == f"Bearer {TOKEN}"

    def test_same_origin_redirect_keeps_credentials_and_303_becomes_get(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        server.route("POST", "/create", Reply(303, b"", headers={"Location": "/created"}))
        response = run(bearer_client(server).apost("/create", json_data={"a": 1}))
        assert response.json() == {"method": "GET", "path": "/created", "auth": f"Bearer {TOKEN}", "body": None}

    def test_refuse_mode_refuses_cross_origin_hop(self, server: PartnerServer) -> None:
        with PartnerServer() as other:
            other.route("*", "*", echo)
            server.route("GET", "/hop", Reply(302, b"", headers={"Location": f"{other.url}/x"}))
            client = bearer_client(server, HttpClientConfigBuilder().with_cross_origin_redirects("refuse"))
            with pytest.raises(UntrustedOriginException):
                run(client.aget("/hop"))
            assert other.received == []


class InFlight:
    """A handler that counts requests in flight and holds each until ``target`` are in flight (or a short wait passes)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.now = 0
        self.most = 0
        self.condition = threading.Condition()

    def __call__(self, received: Received) -> Reply:
        with self.condition:
            self.now += 1
            self.most = max(self.most, self.now)
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.now >= self.target, timeout=0.3)
            self.now -= 1
        return Reply(200, {"path": received.path})


class TestRequestMany:
    def test_order_kept_and_concurrency_bounded(self, server: PartnerServer) -> None:
        gate = InFlight(target=4)
        server.route("*", "*", gate)
        client = bearer_client(server)
        batch = [HttpRequest(HttpMethod.GET, f"/items/{i}") for i in range(12)]
        progress: list[tuple[int, int]] = []

        async def main() -> list[Any]:
            async with client:
                return await client.arequest_many(batch, max_concurrency=4, on_progress=lambda d, t: progress.append((d, t)))

        results = run(main())
        assert [r.json()["path"] for r in results] == [f"/items/{i}" for i in range(12)]
        assert gate.most == 4
        assert progress[-1] == (12, 12) and [d for d, _ in progress] == list(range(1, 13))

    def test_generator_input_is_read_lazily(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        client = bearer_client(server)
        state = {"taken": 0, "done": 0, "ahead": 0}

        def requests() -> Iterator[HttpRequest]:
            for i in range(40):
                state["ahead"] = max(state["ahead"], state["taken"] - state["done"])
                state["taken"] += 1
                yield HttpRequest(HttpMethod.GET, f"/g/{i}")

        def progress(done: int, total: int) -> None:
            state["done"] = done

        results = run(client.arequest_many(requests(), max_concurrency=5, on_progress=progress))
        assert [r.json()["path"] for r in results] == [f"/g/{i}" for i in range(40)]
        assert state["ahead"] <= 5

    def test_failures_hold_their_slot_or_fail_fast(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}/x"
        plain = HttpClient(HttpClientConfigBuilder().build())
        mixed = [
            HttpRequest(HttpMethod.GET, f"{server.url}/a"),
            HttpRequest(HttpMethod.GET, dead),
            HttpRequest(HttpMethod.GET, f"{server.url}/b"),
        ]
        results = run(plain.arequest_many(mixed, max_concurrency=2))
        assert isinstance(results[1], ConnectionException)
        assert results[0].json()["path"] == "/a" and results[2].json()["path"] == "/b"
        with pytest.raises(ConnectionException):
            run(plain.arequest_many(mixed, max_concurrency=1, fail_fast=True))
        assert len(server.requests_to("/b")) == 1  # fail_fast stopped before /b in the second batch


class TestLoops:
    def test_a_fresh_loop_gets_a_working_client(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        client = bearer_client(server)
        assert run(client.aget("/one")).status_code == 200  # that loop is closed now, its session left behind
        assert run(client.aget("/two")).status_code == 200
        assert client.get("/three").status_code == 200  # and the sync path is untouched

    def test_aclose_then_reuse(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        client = bearer_client(server)

        async def main() -> None:
            await client.aget("/one")
            session = client.async_transport.session()
            await client.aclose()
            assert session.closed
            assert (await client.aget("/two")).status_code == 200
            assert client.async_transport.session() is not session
            await client.aclose()

        run(main())

    def test_concurrent_calls_share_one_connection_pool(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        client = bearer_client(server)

        async def main() -> int:
            async with client:
                responses = await asyncio.gather(*(client.aget(f"/c/{i}") for i in range(20)))
                return len({id(r) for r in responses})

        assert run(main()) == 20


@http_client(base_url="http://placeholder.invalid")
class Partner:
    @get("/items/{item_id}")
    async def item(self, item_id: int, expand: str | None = None) -> dict: ...

    @post("/items")
    async def create(self, body: dict) -> HttpResponse: ...

    @get("/items/{item_id}")
    def item_sync(self, item_id: int) -> dict: ...


class TestDeclarative:
    def test_async_methods_use_the_async_path(self, server: PartnerServer) -> None:
        server.route("*", "*", echo)
        partner = Partner(client=bearer_client(server))

        async def main() -> tuple[Any, HttpResponse]:
            pending = partner.item(7, expand="all")
            assert asyncio.iscoroutine(pending)
            return await pending, await partner.create({"n": 1})

        item, created = run(main())
        assert item == {"method": "GET", "path": "/items/7?expand=all", "auth": f"Bearer {TOKEN}", "body": None}
        assert isinstance(created, HttpResponse) and json.loads(created.json()["body"]) == {"n": 1}
        assert partner.item_sync(8)["path"] == "/items/8"
