"""HttpClient against real sockets on 127.0.0.1: threads, timeouts, proxies, redirects."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from requestforge_django.http.client import HttpClient, request_results
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import ConnectionException, TimeoutException
from requestforge_django.http.messages import HttpMethod, HttpRequest
from tests.support.partner_server import PartnerServer, Received, Reply


@pytest.fixture
def server():
    with PartnerServer() as running:
        yield running


def client_for(server: PartnerServer, **pool) -> HttpClient:
    builder = HttpClientConfigBuilder().with_base_url(server.url).with_timeout(5)
    if pool:
        builder.with_pool_size(**pool)
    return HttpClient(builder.build())


def test_one_client_shared_by_100_threads(server):
    server.route("GET", "/echo", lambda r: Reply(body={"thread": r.header("X-Caller")}))
    client = client_for(server)
    barrier = threading.Barrier(100)
    results: dict[int, object] = {}
    sessions: dict[int, object] = {}

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = client.get("/echo", headers={"X-Caller": str(index)}).json()["thread"]
            sessions[index] = client.session
        except Exception as exc:  # collected and asserted below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: str(i) for i in range(100)}
    assert len({id(s) for s in sessions.values()}) == 100  # a session (pool) per thread
    client.close()


def test_request_many_keeps_input_order_while_responses_finish_out_of_order(server):
    release = {i: threading.Event() for i in range(8)}

    def slow(received: Received) -> Reply:
        index = int(received.path.rsplit("/", 1)[1])
        release[index].wait(5)
        return Reply(body={"index": index})

    for i in range(8):
        server.route("GET", f"/item/{i}", slow)

    # Release in reverse order so later requests complete first.
    def releaser() -> None:
        for i in reversed(range(8)):
            while len(server.requests_to(f"/item/{i}")) == 0:
                threading.Event().wait(0.005)
            release[i].set()

    helper = threading.Thread(target=releaser)
    helper.start()
    progress: list[tuple[int, int]] = []
    client = client_for(server)
    results = client.request_many(
        [HttpRequest(HttpMethod.GET, f"/item/{i}") for i in range(8)],
        max_workers=8,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    helper.join()
    assert [r.json()["index"] for r in request_results(results)] == list(range(8))
    assert progress[-1] == (8, 8) and len(progress) == 8
    client.close()


def test_request_many_captures_failures_in_place_or_fails_fast(server):
    server.route("GET", "/ok", Reply())
    client = client_for(server)
    dead = "http://127.0.0.1:9/refused"
    batch = [HttpRequest("GET", "/ok"), HttpRequest("GET", dead), HttpRequest("GET", "/ok")]
    results = client.request_many(batch, max_workers=3)
    assert results[0].status_code == 200 and results[2].status_code == 200
    assert isinstance(results[1], ConnectionException)
    with pytest.raises(ConnectionException):
        client.request_many([HttpRequest("GET", dead)] + [HttpRequest("GET", "/ok")] * 20, max_workers=1, fail_fast=True)
    # fail_fast stopped the batch: only the requests sent before the failure reached the server
    assert len(server.requests_to("/ok")) == 2
    client.close()


def test_read_timeout_is_a_timeout_exception(server):
    never = threading.Event()
    server.route("GET", "/slow", lambda r: (never.wait(2), Reply())[1])
    client = client_for(server)
    with pytest.raises(TimeoutException) as caught:
        client.get("/slow", timeout=0.2)
    assert caught.value.url == f"{server.url}/slow"
    never.set()
    client.close()


def test_environment_proxy_is_honoured_and_no_proxy_bypasses_it(server, monkeypatch):
    with PartnerServer() as proxy:
        proxy.route("*", "*", lambda r: Reply(body={"via": "proxy", "target": r.path}))
        server.route("GET", "/direct", Reply(body={"via": "direct"}))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        via_proxy = HttpClient(HttpClientConfigBuilder().build()).get("http://partner.invalid/v1/x")
        assert via_proxy.json() == {"via": "proxy", "target": "http://partner.invalid/v1/x"}

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = client_for(server).get("/direct")
        assert direct.json() == {"via": "direct"}

        untrusting = HttpClient(HttpClientConfigBuilder().with_trust_env(False).with_base_url(server.url).build())
        assert untrusting.get("/direct").json() == {"via": "direct"}
        assert len(proxy.received) == 1


def test_redirects_are_followed_and_authorization_dropped_across_hosts(server):
    with PartnerServer() as other:
        other.route("GET", "/landing", lambda r: Reply(body={"auth": r.header("Authorization")}))
        server.route("GET", "/same", lambda r: Reply(body={"auth": r.header("Authorization")}))
        server.route("GET", "/hop", Reply(302, b"", {"Location": "/same"}))
        # localhost vs 127.0.0.1: a different host as far as the redirect rules go
        server.route("GET", "/away", Reply(302, b"", {"Location": f"http://localhost:{other.port}/landing"}))
        client = HttpClient(HttpClientConfigBuilder().with_base_url(server.url).with_bearer_token("secret-token-abcdefghijkl").build())
        assert client.get("/hop").json() == {"auth": "Bearer secret-token-abcdefghijkl"}
        assert client.get("/away").json() == {"auth": None}
        no_follow = HttpClient(HttpClientConfigBuilder().with_base_url(server.url).with_redirects(False).build())
        assert no_follow.get("/hop").status_code == 302


def test_close_closes_every_threads_session_and_client_stays_usable(server):
    server.route("GET", "/x", Reply())
    client = client_for(server)
    sessions = []

    def use() -> None:
        client.get("/x")
        sessions.append(client.session)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    closed = []
    for session in sessions:
        original = session.close
        session.close = lambda original=original, s=session: (closed.append(s), original())
    client.close()
    assert sorted(map(id, closed)) == sorted(map(id, sessions))
    assert client.get("/x").status_code == 200  # a new session for this thread


def test_http_package_imports_and_works_without_django_settings(server):
    server.route("GET", "/x", Reply(body={"fine": True}))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys\n"
        "import requestforge_django.http as http_pkg\n"
        "from requestforge_django.http.client import HttpClient\n"
        "from requestforge_django.http.config import HttpClientConfigBuilder\n"
        f"print(HttpClient(HttpClientConfigBuilder().with_base_url({server.url!r}).build()).get('/x').json()['fine'])\n"
        "print(any(name == 'django' or name.startswith('django.') for name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_cookies_are_not_carried_between_calls_or_redirect_hops(server):
    server.route("GET", "/login", Reply(302, b"", {"Set-Cookie": "session=abc; Path=/", "Location": "/whoami"}))
    server.route("GET", "/whoami", lambda r: Reply(body={"cookie": r.header("Cookie")}))
    client = client_for(server)
    assert client.get("/login").json() == {"cookie": None}
    assert client.get("/whoami").json() == {"cookie": None}


def test_token_package_and_top_level_names_import_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys\n"
        "import requestforge_django as rf\n"
        "from requestforge_django.tokens import TokenManager, TokenFetchPipeline\n"
        "assert rf.TokenManager is TokenManager and rf.HttpClient is not None\n"
        "print(any(name == 'django' or name.startswith('django.') for name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert out.stdout.split() == ["False"]
