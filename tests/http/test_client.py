"""The request lifecycle of HttpClient, with ``responses`` standing in for the network."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from requestforge_django.http.circuit_breaker import CircuitBreaker, CircuitState
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import (
    CircuitBreakerException,
    ConnectionException,
    HttpClientException,
    MaxRetryException,
    SSLException,
    TimeoutException,
)
from requestforge_django.http.hooks import AuthHookInterface, ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from requestforge_django.http.messages import HttpMethod, HttpRequest
from requestforge_django.http.retry import SimpleRetryStrategy

BASE = "https://partner.test"


class Recorder(RequestHookInterface, ResponseHookInterface, ErrorHookInterface):
    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    def before_request(self, request, context):
        self.events.append(f"{self.name}.request#{context.attempt}")
        return request.with_headers({f"X-{self.name}": "1"})

    def after_response(self, response, context):
        self.events.append(f"{self.name}.response:{response.status_code}")
        return response

    def on_error(self, error, context):
        self.events.append(f"{self.name}.error:{type(error).__name__}")


class RefreshingAuth(AuthHookInterface):
    """Token "v1" until refreshed, then "v2"; counts refreshes."""

    def __init__(self, events: list[str] | None = None, can_refresh: bool = True) -> None:
        self.version, self.refreshes, self.events, self.can_refresh = 1, 0, events, can_refresh

    def before_request(self, request, context):
        if self.events is not None:
            self.events.append("auth")
        return request.with_headers({"Authorization": f"Bearer token-v{self.version}"})

    def refresh_auth(self) -> bool:
        self.refreshes += 1
        if self.can_refresh:
            self.version += 1
        return self.can_refresh


def make_client(builder: HttpClientConfigBuilder | None = None, sleeps: list[float] | None = None) -> HttpClient:
    builder = builder or HttpClientConfigBuilder()
    recorded = sleeps if sleeps is not None else []
    return HttpClient(builder.with_base_url(BASE).build(), sleep=recorded.append)


@responses.activate
def test_hooks_run_in_lifecycle_order_and_headers_reach_the_wire():
    events: list[str] = []
    responses.get(f"{BASE}/users", json={"users": []})
    builder = HttpClientConfigBuilder().with_hooks(Recorder("a", events), Recorder("b", events)).with_auth_hook(RefreshingAuth(events))
    response = make_client(builder).get("/users")
    assert response.json() == {"users": []}
    assert events == ["a.request#0", "b.request#0", "auth", "a.response:200", "b.response:200"]
    sent = responses.calls[0].request
    assert sent.headers["X-a"] == "1" and sent.headers["X-b"] == "1"
    assert sent.headers["Authorization"] == "Bearer token-v1"


@responses.activate
def test_401_refreshes_once_and_retries_once():
    auth = RefreshingAuth()
    responses.get(f"{BASE}/me", status=401)
    responses.get(f"{BASE}/me", json={"id": 1})
    response = make_client(HttpClientConfigBuilder().with_auth_hook(auth)).get("/me")
    assert response.status_code == 200
    assert auth.refreshes == 1
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer token-v1", "Bearer token-v2"]


@responses.activate
def test_second_401_is_returned_not_looped():
    auth = RefreshingAuth()
    responses.get(f"{BASE}/me", status=401)
    response = make_client(HttpClientConfigBuilder().with_auth_hook(auth)).get("/me")
    assert response.status_code == 401
    assert auth.refreshes == 1
    assert len(responses.calls) == 2


@responses.activate
def test_401_without_refreshable_credentials_is_not_resent():
    auth = RefreshingAuth(can_refresh=False)
    responses.get(f"{BASE}/me", status=401)
    assert make_client(HttpClientConfigBuilder().with_auth_hook(auth)).get("/me").status_code == 401
    assert len(responses.calls) == 1


@responses.activate
def test_excluded_paths_skip_auth_and_401_handling():
    class Excluding(RefreshingAuth):
        excluded_paths = ("/health",)

    auth = Excluding()
    responses.get(f"{BASE}/health", status=401)
    make_client(HttpClientConfigBuilder().with_auth_hook(auth)).get("/health")
    assert "Authorization" not in responses.calls[0].request.headers
    assert auth.refreshes == 0


@responses.activate
def test_retryable_status_is_retried_with_the_strategy_delay():
    sleeps: list[float] = []
    responses.get(f"{BASE}/items", status=503)
    responses.get(f"{BASE}/items", status=502)
    responses.get(f"{BASE}/items", json=[1])
    builder = HttpClientConfigBuilder().with_retry_strategy(SimpleRetryStrategy(max_retries=3, delay=0.25))
    response = make_client(builder, sleeps).get("/items")
    assert response.json() == [1]
    assert sleeps == [0.25, 0.25]


@responses.activate
def test_exhausted_retries_raise_max_retry_with_last_response():
    events: list[str] = []
    responses.get(f"{BASE}/items", status=503)
    builder = HttpClientConfigBuilder().with_retry_strategy(SimpleRetryStrategy(max_retries=2, delay=0)).with_hooks(Recorder("h", events))
    with pytest.raises(MaxRetryException) as caught:
        make_client(builder).get("/items")
    assert caught.value.attempts == 3
    assert caught.value.last_response.status_code == 503
    assert caught.value.method == "GET" and caught.value.url == f"{BASE}/items"
    assert len(responses.calls) == 3
    assert events[-1] == "h.error:MaxRetryException"


@responses.activate
def test_retry_after_header_sets_the_delay():
    sleeps: list[float] = []
    responses.get(f"{BASE}/items", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/items", json=[])
    builder = HttpClientConfigBuilder().with_retry_strategy(SimpleRetryStrategy(max_retries=1, delay=0.1))
    make_client(builder, sleeps).get("/items")
    assert sleeps == [7.0]


@responses.activate
def test_connection_errors_are_retried_then_reported_with_the_original():
    responses.get(f"{BASE}/items", body=requests.exceptions.ConnectionError("refused"))
    builder = HttpClientConfigBuilder().with_retry_strategy(SimpleRetryStrategy(max_retries=2, delay=0))
    with pytest.raises(MaxRetryException) as caught:
        make_client(builder).get("/items")
    assert isinstance(caught.value.last_exception, ConnectionException)
    assert issubclass(caught.value.last_exception.original.exc_type, requests.exceptions.ConnectionError)
    assert len(responses.calls) == 3


@responses.activate
def test_post_is_not_retried_unless_idempotency_key_is_sent():
    responses.post(f"{BASE}/orders", status=503)
    client = make_client(HttpClientConfigBuilder().with_retry_strategy(SimpleRetryStrategy(max_retries=2, delay=0)))
    assert client.post("/orders", json_data={"n": 1}).status_code == 503
    assert len(responses.calls) == 1
    with pytest.raises(MaxRetryException):
        client.post("/orders", json_data={"n": 1}, headers={"Idempotency-Key": "k-1"})
    assert len(responses.calls) == 4


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (requests.exceptions.ConnectTimeout("slow"), TimeoutException),
        (requests.exceptions.ReadTimeout("slow"), TimeoutException),
        (requests.exceptions.SSLError("bad cert"), SSLException),
        (requests.exceptions.ConnectionError("refused"), ConnectionException),
        (requests.exceptions.ChunkedEncodingError("broken"), HttpClientException),
    ],
)
@responses.activate
def test_transport_errors_become_typed_exceptions_with_context(raised, expected):
    responses.get(f"{BASE}/x", body=raised)
    with pytest.raises(expected) as caught:
        make_client().get("/x", params={"api_key": "abcdefghijklmnopqrstuvwxyz"})
    error = caught.value
    assert error.method == "GET"
    assert error.url.startswith(f"{BASE}/x?api_key=")
    assert "abcdefghijklmnopqrstuvwxyz" not in str(error)
    assert error.original.exc_type is type(raised) and error.__cause__ is error.original  # a masked stand-in


@responses.activate
def test_circuit_breaker_opens_and_rejects_without_network():
    clock = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30, clock=lambda: clock[0])
    responses.get(f"{BASE}/x", status=500)
    client = make_client(HttpClientConfigBuilder().with_circuit_breaker(breaker))
    client.get("/x")
    client.get("/x")
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerException) as caught:
        client.get("/x")
    assert caught.value.retry_after == pytest.approx(30)
    assert len(responses.calls) == 2
    clock[0] = 31.0
    responses.replace(responses.GET, f"{BASE}/x", json={})
    assert client.get("/x").status_code == 200
    assert breaker.state is CircuitState.CLOSED


@responses.activate
def test_failing_observer_hooks_are_logged_and_skipped(caplog):
    class Broken(RequestHookInterface, ResponseHookInterface):
        def before_request(self, request, context):
            raise RuntimeError("boom")

        def after_response(self, response, context):
            raise RuntimeError("boom")

    responses.get(f"{BASE}/x", json={})
    with caplog.at_level(logging.ERROR, logger="requestforge_django.http"):
        assert make_client(HttpClientConfigBuilder().with_hooks(Broken())).get("/x").status_code == 200
    assert caplog.text.count("Broken failed") == 2


@responses.activate
def test_failing_auth_hook_propagates_to_error_hooks_and_caller():
    class Failing(AuthHookInterface):
        def before_request(self, request, context):
            raise HttpClientException("no credentials")

    events: list[str] = []
    with pytest.raises(HttpClientException, match="no credentials"):
        make_client(HttpClientConfigBuilder().with_auth_hook(Failing()).with_hooks(Recorder("h", events))).get("/x")
    assert events == ["h.request#0", "h.error:HttpClientException"]
    assert len(responses.calls) == 0


@responses.activate
def test_bodies_params_and_urls_are_encoded_like_requests():
    responses.add(responses.PATCH, f"{BASE}/v1/items/7", json={})
    responses.post(f"{BASE}/v1/form", json={})
    client = HttpClient(HttpClientConfigBuilder().with_base_url(f"{BASE}/v1/").with_header("User-Agent", "shop/1.0").build())
    client.patch("items/7", json_data={"name": "é"}, params={"a": [1, 2], "skip": None})
    client.post("/form", data={"grant_type": "client_credentials"})
    first, second = (c.request for c in responses.calls)
    assert first.url == f"{BASE}/v1/items/7?a=1&a=2"
    assert first.headers["Content-Type"] == "application/json"
    assert first.body == b'{"name": "\\u00e9"}'
    assert first.headers["User-Agent"] == "shop/1.0"
    assert second.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert second.body == b"grant_type=client_credentials"


@responses.activate
def test_request_accepts_value_objects_and_per_request_timeout():
    responses.get(f"{BASE}/x", json={})
    response = make_client().request(HttpRequest(HttpMethod.GET, "/x", timeout=1.5))
    assert responses.calls[0].request.req_kwargs["timeout"] == 1.5
    assert response.request.url == "/x"
    assert response.elapsed_ms >= 0


@responses.activate
def test_unencodable_json_body_is_a_typed_error_that_frees_the_half_open_probe():
    clock = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, clock=lambda: clock[0])
    responses.post(f"{BASE}/x", status=500)
    client = make_client(HttpClientConfigBuilder().with_circuit_breaker(breaker))
    client.post("/x", json_data={})
    clock[0] = 11.0
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(HttpClientException, match="cannot be encoded as JSON") as caught:
        client.post("/x", json_data={"when": object()})
    assert caught.value.method == "POST"
    assert breaker.allow_request()  # the probe slot was released, not leaked
