"""HttpClient.request_many against a real loopback server: order, concurrency limit, fail_fast,
progress and rate limits.

Nothing here sleeps to let things happen: the server's handlers and the client's hooks
coordinate through events and conditions (their timeouts only turn a bug into a failure
instead of a hang).
"""

from __future__ import annotations

import threading

import pytest

from requestforge_django.http.client import HttpClient, request_results
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import ConfigurationError, ConnectionException, RateLimitExceeded
from requestforge_django.http.hooks import RequestHookInterface, ResponseHookInterface
from requestforge_django.http.messages import HttpRequest
from requestforge_django.http.rate_limit import RateLimiter
from tests.support.partner_server import PartnerServer, Received, Reply

GUARD = 10.0  # seconds; only reached when something is broken
DEAD = "http://127.0.0.1:9/refused"  # nothing listens on the discard port: connection refused


@pytest.fixture
def server():
    with PartnerServer() as running:
        yield running


def client_for(server: PartnerServer, builder: HttpClientConfigBuilder | None = None) -> HttpClient:
    builder = builder or HttpClientConfigBuilder()
    return HttpClient(builder.with_base_url(server.url).with_timeout(GUARD).with_pool_size(maxsize=32).build())


def gets(path: str, count: int) -> list[HttpRequest]:
    return [HttpRequest("GET", f"{path}/{i}") for i in range(count)]


def index_of(received: Received) -> int:
    return int(received.path.rsplit("/", 1)[1])


class InFlight:
    """Server-side gauge: each handler waits until ``limit`` requests are inside at once
    (or every request has arrived), so the highest reading is the client's real concurrency."""

    def __init__(self, limit: int, total: int) -> None:
        self.limit, self.total = limit, total
        self.current = self.highest = self.arrived = 0
        self.condition = threading.Condition()

    def __call__(self, received: Received) -> Reply:
        with self.condition:
            self.arrived += 1
            self.current += 1
            self.highest = max(self.highest, self.current)
            self.condition.notify_all()
            full = self.condition.wait_for(lambda: self.current >= self.limit or self.arrived >= self.total, GUARD)
            self.current -= 1
        assert full, "the client never reached its concurrency limit"
        return Reply(body={"index": index_of(received)})


# -- order -----------------------------------------------------------------------------------
class ReleasePrevious(ResponseHookInterface):
    """When the response to request i arrives, let the server answer request i - 1."""

    def __init__(self, release: list[threading.Event], finished: list[int]) -> None:
        self.release, self.finished = release, finished

    def after_response(self, response, context):
        index = int(context.request.url.rsplit("/", 1)[1])
        self.finished.append(index)
        if index:
            self.release[index - 1].set()
        return response


def test_results_are_in_input_order_when_responses_finish_in_reverse(server):
    count = 6
    release = [threading.Event() for _ in range(count)]
    release[-1].set()
    finished: list[int] = []

    def answer(received: Received) -> Reply:
        index = index_of(received)
        assert release[index].wait(GUARD)
        return Reply(body={"index": index})

    for i in range(count):
        server.route("GET", f"/item/{i}", answer)
    client = client_for(server, HttpClientConfigBuilder().with_response_hook(ReleasePrevious(release, finished)))
    results = client.request_many(gets("/item", count), max_workers=count)
    assert finished == list(reversed(range(count)))
    assert [r.json()["index"] for r in request_results(results)] == list(range(count))
    client.close()


# -- the concurrency limit --------------------------------------------------------------------
@pytest.mark.parametrize(("max_workers", "total"), [(4, 20), (1, 5), (3, 3), (8, 5)])
def test_at_most_max_workers_requests_are_in_flight_and_the_limit_is_used(server, max_workers, total):
    limit = min(max_workers, total)
    gauge = InFlight(limit, total)
    for i in range(total):
        server.route("GET", f"/n/{i}", gauge)
    client = client_for(server)
    results = client.request_many(gets("/n", total), max_workers=max_workers)
    assert [r.json()["index"] for r in request_results(results)] == list(range(total))
    assert gauge.highest == limit
    client.close()


def test_a_busy_worker_pool_does_not_stall_another_batch(server):
    # Batch A holds every thread of the client's pool; batch B must still finish, run by its caller.
    blocked, unblock = threading.Event(), threading.Event()
    arrivals = []
    lock = threading.Lock()

    def hold(received: Received) -> Reply:
        with lock:
            arrivals.append(received.path)
            if len(arrivals) == 5:
                blocked.set()
        assert unblock.wait(GUARD)
        return Reply()

    for i in range(5):
        server.route("GET", f"/hold/{i}", hold)
    for i in range(6):
        server.route("GET", f"/fast/{i}", Reply(body={"index": i}))
    client = client_for(server)
    outcome: list = []
    batch_a = threading.Thread(target=lambda: outcome.append(client.request_many(gets("/hold", 5), max_workers=5)))
    batch_a.start()
    try:
        assert blocked.wait(GUARD)  # A's caller and its four helpers are all inside the server
        results = client.request_many(gets("/fast", 6), max_workers=3)
        assert [r.json()["index"] for r in request_results(results)] == list(range(6))
    finally:
        unblock.set()
        batch_a.join(GUARD)
    assert len(request_results(outcome[0])) == 5
    client.close()


# -- failures ------------------------------------------------------------------------------------
def test_failures_are_captured_in_place(server):
    server.route("GET", "/ok", Reply())
    client = client_for(server)
    batch = [HttpRequest("GET", "/ok"), HttpRequest("GET", DEAD), HttpRequest("GET", "/ok"), HttpRequest("GET", DEAD)]
    results = client.request_many(batch, max_workers=2)
    assert results[0].status_code == 200 and results[2].status_code == 200
    assert isinstance(results[1], ConnectionException) and isinstance(results[3], ConnectionException)
    with pytest.raises(ConnectionException):
        request_results(results)
    client.close()


class HoldDeadUntil(RequestHookInterface):
    """Keeps the request to DEAD from failing until ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def before_request(self, request, context):
        if request.url == DEAD:
            assert self.event.wait(GUARD)
        return request


def test_fail_fast_stops_new_sends_and_returns_only_after_sends_in_flight(server):
    ok_arrived, failure_seen = threading.Event(), threading.Event()
    progress: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total))
        failure_seen.set()  # the first report is the failure: /ok/0 is held until then

    def ok(received: Received) -> Reply:
        ok_arrived.set()
        assert failure_seen.wait(GUARD)
        return Reply()

    for i in range(20):
        server.route("GET", f"/ok/{i}", ok)
    client = client_for(server, HttpClientConfigBuilder().with_request_hook(HoldDeadUntil(ok_arrived)))
    batch = [HttpRequest("GET", DEAD), *gets("/ok", 20)]
    with pytest.raises(ConnectionException):
        client.request_many(batch, max_workers=2, fail_fast=True, on_progress=on_progress)
    # /ok/0 was in flight when the batch stopped: it finished (and reported) before the raise; nothing else was sent.
    assert progress == [(1, 21), (2, 21)]
    assert [r.path for r in server.received] == ["/ok/0"]
    client.close()


# -- progress ------------------------------------------------------------------------------------
def test_progress_counts_up_in_order_and_a_failing_observer_is_ignored(server, caplog):
    for i in range(12):
        server.route("GET", f"/p/{i}", Reply())
    client = client_for(server)
    seen: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            raise RuntimeError("observer bug")

    results = client.request_many(gets("/p", 12), max_workers=4, on_progress=on_progress)
    assert len(request_results(results)) == 12
    assert seen == [(i, 12) for i in range(1, 13)]
    assert "progress callback failed" in caplog.text
    client.close()


# -- rate limits ---------------------------------------------------------------------------------
class FrozenTime:
    """A clock that never moves and a sleep that only records: every permit past the burst is a reservation."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return 50.0

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)


def test_the_clients_rate_limiter_is_honoured_by_every_request_of_the_batch(server):
    for i in range(10):
        server.route("GET", f"/r/{i}", Reply())
    time = FrozenTime()
    limiter = RateLimiter(rate=4, burst=2, clock=time.clock, sleep=time.sleep)
    client = client_for(server, HttpClientConfigBuilder().with_rate_limiter(limiter))
    results = client.request_many(gets("/r", 10), max_workers=4)
    assert len(request_results(results)) == 10
    # 2 free permits, then 8 reservations at 0.25 s intervals, each handed out exactly once.
    assert sorted(time.sleeps) == [n / 4 for n in range(1, 9)]
    client.close()


def test_a_per_batch_limiter_adds_to_the_clients(server):
    for i in range(6):
        server.route("GET", f"/b/{i}", Reply())
    client_time, batch_time = FrozenTime(), FrozenTime()
    client_limiter = RateLimiter(rate=10, burst=1, clock=client_time.clock, sleep=client_time.sleep)
    batch_limiter = RateLimiter(rate=2, burst=1, clock=batch_time.clock, sleep=batch_time.sleep)
    client = client_for(server, HttpClientConfigBuilder().with_rate_limiter(client_limiter))
    results = client.request_many(gets("/b", 6), max_workers=3, rate_limiter=batch_limiter)
    assert len(request_results(results)) == 6
    assert sorted(batch_time.sleeps) == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert sorted(client_time.sleeps) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    client.close()


def test_a_refusing_per_batch_limiter_fills_the_slot_and_sends_nothing_for_it(server):
    for i in range(3):
        server.route("GET", f"/x/{i}", Reply())
    time = FrozenTime()
    limiter = RateLimiter(rate=1, burst=2, block=False, clock=time.clock, sleep=time.sleep)
    client = client_for(server)
    results = client.request_many(gets("/x", 3), max_workers=1, rate_limiter=limiter)
    assert [type(r).__name__ for r in results] == ["HttpResponse", "HttpResponse", "RateLimitExceeded"]
    assert isinstance(results[2], RateLimitExceeded) and results[2].retry_after == pytest.approx(1.0)
    assert len(server.received) == 2
    client.close()


# -- arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": True}, "max_workers"),
        ({"max_workers": "4"}, "max_workers"),
        ({"rate_limiter": object()}, "rate_limiter"),
        ({"on_progress": "print"}, "on_progress"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs, field):
    client = HttpClient()
    with pytest.raises(ConfigurationError) as caught:
        client.request_many([HttpRequest("GET", DEAD)], **kwargs)
    assert caught.value.field == field


def test_an_empty_batch_starts_no_worker():
    client = HttpClient()
    assert client.request_many([]) == []
    assert client._executor is None
