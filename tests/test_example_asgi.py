"""The example project's async view under a real ASGI server: pages wait side by side, not in turn.

``example_project``'s ``/async/`` awaits three partner calls at once through
``aget_client(...)``. Here uvicorn serves the example project (its own settings and embedded
defaults: SQLite in ``tmp_path``, the database cache for tokens) in a child process, with
``DEMO_PARTNER_URL`` pointing at a stand-in partner on 127.0.0.1 whose APIs answer after
:data:`PARTNER_LATENCY` (a threaded server, so slow answers overlap). 50 pages are requested
at once, twice: on a cold token cache, then on a warm one.

If the view or the server handled pages one after the other, 50 pages would take at least
50 x 200 ms = 10 s; if the view blocked the event loop on each partner call (a sync client in
an async view), 150 x 200 ms = 30 s. Concurrent, a batch takes about one partner latency
plus the token fetches of a cold cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support.partner_server import PartnerServer, Received, Reply
from tests.support.processes import free_port, stop_process, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "example_project"

#: How long each partner API call takes (the issue's figure).
PARTNER_LATENCY = 0.2
#: How long each token endpoint takes: long enough that the pages of a batch arrive while the
#: first fetch is in flight, so "one fetch" is the single flight's doing, not luck of timing.
TOKEN_LATENCY = 0.05
PAGES = 50
#: The partner calls of one page (``demo.calls.DASHBOARD_CALLS``), as the partner sees them.
API_PATHS = ("/partner/api/invoices/42", "/partner/api/me", "/partner/legacy/status")
TOKEN_PATHS = ("/partner/oauth/token", "/partner/v1/device/register", "/partner/v1/app/token", "/partner/v1/user/token")
#: The example's static key for ``legacy`` (DEMO ONLY, in example_project/settings.py).
LEGACY_KEY = "demo-legacy-key"

#: Wall-time bounds of a batch of 50 pages. Handling pages one after the other cannot take less
#: than 50 x 200 ms = 10 s, blocking the event loop on each partner call 150 x 200 ms = 30 s.
#: Concurrent, a warm batch took 0.36-0.47 s on the 2-core development machine, up to 0.9 s with
#: other test runs or two to four busy-looping processes competing for its two cores: one partner
#: latency plus the server's per-page work. A cold batch adds the process's first-use work
#: (importing aiohttp, building the clients: about 0.45 s before even the token-less call is sent)
#: and the token fetches (the pipeline's three steps one after the other, 3 x 50 ms): 0.8-1.1 s
#: idle, up to 1.9 s loaded. Each bound leaves the worst measured figure room to grow by 60 % or
#: more and is still 7 (warm) or 2.5 (cold) times below the serial 10 s.
WARM_BATCH_BOUND = 1.5
COLD_BATCH_BOUND = 4.0

#: Quiet (no access log: 100 lines a test), loopback only.
UVICORN_OPTIONS = ("--host", "127.0.0.1", "--no-access-log", "--log-level", "warning")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class InFlight:
    """Counts the partner calls being answered at once, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.now -= 1

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.now


class SlowPartner:
    """The example's partner protocol (``partner_api``), on a real threaded server, answering slowly.

    Tokens are random per test; a protected endpoint answers 401 to anything else, so a 200
    proves the view's client sent the token the token endpoint issued.
    """

    def __init__(self, server: PartnerServer) -> None:
        self.server = server
        self.in_flight = InFlight()
        self.tokens = {kind: f"{kind}-{secrets.token_urlsafe(12)}" for kind in ("oauth", "device", "app", "user")}
        token_reply = self._token_reply
        server.route("POST", "/partner/oauth/token", lambda r: token_reply(r, "oauth", None, None))
        server.route("POST", "/partner/v1/device/register", lambda r: token_reply(r, "device", None, None))
        server.route("POST", "/partner/v1/app/token", lambda r: token_reply(r, "app", "X-Device-Token", "device"))
        server.route("POST", "/partner/v1/user/token", lambda r: token_reply(r, "user", "X-App-Token", "app"))
        server.route("GET", "/partner/api/invoices/42", self._api("oauth", {"invoice": 42, "customer": "ACME Corp"}))
        server.route("GET", "/partner/api/me", self._api("user", {"user": "demo-user", "plan": "gold"}))
        server.route("GET", "/partner/legacy/status", self._api(None, {"status": "ok", "version": "1.9.3"}))

    def _token_reply(self, received: Received, kind: str, needs_header: str | None, needs_kind: str | None) -> Reply:
        time.sleep(TOKEN_LATENCY)  # the partner's own work: what concurrent pages must not multiply
        if needs_header is not None and needs_kind is not None and received.header(needs_header) != self.tokens[needs_kind]:
            return Reply(401, {"error": "invalid_grant"})
        if kind == "oauth" and parse_qs(received.body.decode()).get("grant_type") != ["client_credentials"]:
            return Reply(400, {"error": "unsupported_grant_type"})
        if kind == "device":  # step 1 answers in a response header, as partner_api does
            return Reply(200, {"registered": True}, headers={"X-Device-Token": self.tokens[kind]})
        return Reply(200, {"access_token": self.tokens[kind], "token_type": "Bearer", "expires_in": 3600})

    def _api(self, kind: str | None, body: dict[str, Any]) -> Any:
        def handler(received: Received) -> Reply:
            with self.in_flight:
                time.sleep(PARTNER_LATENCY)  # the partner's latency, on this request's own thread
            if kind is None:
                authorized = received.header("X-API-Key") == LEGACY_KEY
            else:
                authorized = received.header("Authorization") == f"Bearer {self.tokens[kind]}"
            return Reply(200, body) if authorized else Reply(401, {"error": "invalid_token"})

        return handler

    def calls_to(self, path: str) -> int:
        return len(self.server.requests_to(path))


@dataclass(frozen=True)
class Batch:
    seconds: float
    pages: list[tuple[int, str, dict[str, Any] | None]]


def example_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """The environment of the example project's processes: its settings, a database in ``tmp_path``."""
    dropped = ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DEMO_PORT", "DEMO_PARTNER_URL", "DEMO_WARM_THREAD")
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    environment.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DEMO_DB_PATH=str(tmp_path / "demo.sqlite3"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        **env,
    )
    return environment


@contextmanager
def uvicorn_serving(tmp_path: Path, **env: str) -> Iterator[str]:
    """The example project migrated into ``tmp_path`` and served by uvicorn; yields its URL.

    Ready means Django answers ``/partner/stats`` (a view that reads the database), polled until
    then; the server is stopped (SIGTERM, then SIGKILL) whatever happens.
    """
    port = free_port()
    environment = example_env(tmp_path, DEMO_PORT=str(port), **env)
    for command in (["migrate", "--noinput", "-v", "0"], ["createcachetable"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=EXAMPLE, env=environment, check=True, capture_output=True, timeout=120)
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "example_project.asgi:application", *UVICORN_OPTIONS, "--port", str(port)],
            cwd=EXAMPLE,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(server, url + "/partner/stats", log_path)
        yield url
    finally:
        stop_process(server, 15)


def answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until_ready(server: subprocess.Popen[bytes], health_url: str, log_path: Path, timeout: float = 60.0) -> None:
    if wait_until(server, lambda: answers_ok(health_url), timeout):
        return
    if server.poll() is not None:
        pytest.fail(f"uvicorn exited with {server.returncode}:\n{log_path.read_text()}")
    pytest.fail(f"uvicorn did not answer {health_url} within {timeout} s:\n{log_path.read_text()}")


async def _fetch(pages: int, url: str) -> Batch:
    import aiohttp

    async def one(session: aiohttp.ClientSession) -> tuple[int, str, dict[str, Any] | None]:
        async with session.get(url) as response:
            text = await response.text()
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, text, body

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=pages)) as session:
        started = time.perf_counter()
        results = await asyncio.gather(*(one(session) for _ in range(pages)))
        return Batch(time.perf_counter() - started, list(results))


def fetch_at_once(pages: int, url: str) -> Batch:
    """``pages`` GETs of ``url`` sent at the same time; the wall time of the whole batch."""
    return asyncio.run(_fetch(pages, url))


def assert_pages_ok(batch: Batch, partner: SlowPartner) -> None:
    for status, text, body in batch.pages:
        assert status == 200, text[:2000]
        assert body is not None and body["ok"] is True, text[:2000]
        calls = {call["client"]: call for call in body["calls"]}
        assert sorted(calls) == ["billing", "legacy", "profiles"], body
        assert calls["billing"]["body"] == {"invoice": 42, "customer": "ACME Corp"}, body
        assert calls["profiles"]["body"] == {"user": "demo-user", "plan": "gold"}, body
        assert calls["legacy"]["body"] == {"status": "ok", "version": "1.9.3"}, body
        for token in partner.tokens.values():
            assert token not in text, "a token is shown on the page"


@pytest.fixture
def slow_partner() -> Iterator[SlowPartner]:
    with PartnerServer(quiet=True) as server:
        yield SlowPartner(server)


def test_fifty_async_pages_take_about_one_partner_latency(tmp_path: Path, slow_partner: SlowPartner) -> None:
    with uvicorn_serving(tmp_path, DEMO_PARTNER_URL=slow_partner.server.url) as url:
        cold = fetch_at_once(PAGES, url + "/async/")
        assert_pages_ok(cold, slow_partner)
        cold_peak = slow_partner.in_flight.peak
        slow_partner.in_flight.reset_peak()
        warm = fetch_at_once(PAGES, url + "/async/")
        assert_pages_ok(warm, slow_partner)
        warm_peak = slow_partner.in_flight.peak

    figures = f"cold batch {cold.seconds:.3f} s (peak {cold_peak} calls in flight), warm batch {warm.seconds:.3f} s (peak {warm_peak})"
    print(f"\n{PAGES} pages x 3 partner calls of {PARTNER_LATENCY * 1000:.0f} ms under uvicorn: {figures}")
    for path in API_PATHS:  # one call per page and path: 150 a batch, no retries, no 401s
        assert slow_partner.calls_to(path) == 2 * PAGES, (path, slow_partner.calls_to(path))
    for path in TOKEN_PATHS:  # a single fetch per token for the 100 token-using calls of the cold batch, none after
        assert slow_partner.calls_to(path) == 1, (path, slow_partner.calls_to(path))
    assert cold.seconds < COLD_BATCH_BOUND, figures
    assert warm.seconds < WARM_BATCH_BOUND, figures
    # Each page's three calls overlap too (a view awaiting them one after the other would keep at most
    # one call per page, 50, in flight).
    assert warm_peak > PAGES, figures


def test_async_view_on_the_embedded_defaults(tmp_path: Path) -> None:
    """No ``DEMO_PARTNER_URL``: the partner is the example's own ``partner_api``, served by the same uvicorn."""
    with uvicorn_serving(tmp_path) as url:
        batch = fetch_at_once(3, url + "/async/")
        with urllib.request.urlopen(url + "/partner/stats", timeout=10) as response:
            counts = json.load(response)["counts"]
    for status, text, body in batch.pages:
        assert status == 200 and body is not None and body["ok"] is True, text[:2000]
        assert [call["status"] for call in body["calls"]] == [200, 200, 200], body
        assert "access_token" not in text and "oauth-" not in text, "a token is shown on the page"
    # One token of each kind for the 3 pages' 6 token-using calls, and each page's 3 calls answered.
    assert {kind: counts.get(kind) for kind in ("oauth", "device", "app", "user", "invoices", "profile", "legacy")} == {
        "oauth": 1,
        "device": 1,
        "app": 1,
        "user": 1,
        "invoices": 3,
        "profile": 3,
        "legacy": 3,
    }, counts
