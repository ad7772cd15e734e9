"""The test token endpoint itself: later suites (Celery, example project) rely on its behaviour."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, StubTokenEndpoint

CREDENTIALS = {"grant_type": "client_credentials", "client_id": "test-client", "client_secret": "test-secret"}


@pytest.fixture
def server() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(expires_in=3600) as running:
        yield running


def fetch(server: StubTokenEndpoint, **kwargs: object) -> requests.Response:
    return requests.post(server.token_url, data=kwargs.pop("data", CREDENTIALS), timeout=5, **kwargs)  # type: ignore[arg-type]


def test_issues_tokens_that_open_the_protected_endpoint(server: StubTokenEndpoint) -> None:
    answer = fetch(server)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    ok = requests.get(server.protected_url, headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5)
    bad = requests.get(server.protected_url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (ok.status_code, bad.status_code) == (200, 401)
    stats = server.stats()
    assert (stats.token_requests, stats.protected_ok, stats.protected_unauthorized) == (1, 1, 1)


def test_client_authentication(server: StubTokenEndpoint) -> None:
    assert fetch(server, data={"grant_type": "client_credentials"}, auth=("test-client", "test-secret")).status_code == 200
    assert fetch(server, data={**CREDENTIALS, "client_secret": "wrong"}).json() == {"error": "invalid_client"}
    assert fetch(server, data={**CREDENTIALS, "grant_type": "password"}).status_code == 400


def test_tokens_expire_and_can_be_revoked(server: StubTokenEndpoint) -> None:
    server.configure(expires_in=0.3)
    token = fetch(server).json()["access_token"]
    assert server.is_valid(token)
    deadline = time.monotonic() + 5
    while server.is_valid(token) and time.monotonic() < deadline:  # bounded poll on the condition
        time.sleep(0.02)
    assert not server.is_valid(token)
    server.configure(expires_in=3600)
    token = fetch(server).json()["access_token"]
    server.revoke_all()
    assert requests.get(server.protected_url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 401


def test_failure_injection(server: StubTokenEndpoint) -> None:
    server.fail_with(503, times=2)
    assert [fetch(server).status_code for _ in range(3)] == [503, 503, 200]
    server.fail_with(200, body="<html>not json</html>")
    assert fetch(server).text == "<html>not json</html>"
    server.recover()
    assert fetch(server).status_code == 200


def test_delay_is_applied_and_stop_interrupts_it() -> None:
    server = StubTokenEndpoint(delay=0.2).start()
    started = time.monotonic()
    assert fetch(server).status_code == 200
    assert time.monotonic() - started >= 0.2
    server.configure(delay=30)
    outcome: list[object] = []
    pending = threading.Thread(target=lambda: outcome.append(fetch(server).status_code))
    pending.start()
    deadline = time.monotonic() + 5
    while server.stats().token_requests < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()  # wakes the delayed handler instead of waiting 30 s
    pending.join(timeout=10)
    assert time.monotonic() - started < 5
    assert outcome == [200]


def test_two_step_flow(server: StubTokenEndpoint) -> None:
    device = requests.post(server.url + DEVICE_PATH, headers={"X-Device-ID": "device-123"}, timeout=5)
    assert device.status_code == 200
    app = requests.post(
        server.url + APP_TOKEN_PATH, headers={"X-Device-Token": device.headers["X-Device-Token"]}, data={"client_id": "app-id"}, timeout=5
    )
    assert app.status_code == 200
    assert requests.post(server.url + APP_TOKEN_PATH, data={"client_id": "app-id"}, timeout=5).status_code == 401
    assert server.stats().fetches == 3
