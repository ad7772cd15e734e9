"""Bad input on the async path, against real servers: the same outcome as the sync path, in async form.

Each fault is provoked for real (a token endpoint answering 500 or garbage, a partner that
does not answer, a port nobody listens on, a Redis nobody listens on, a task cancelled in
the middle of a send) and the async call is compared with the sync call of the same
client: the same exception type with the same context, nothing left in Redis that should
not be there, and the next call behaving as documented (docs/deployment.md, "When Redis
is down"). The cancelled send is checked on a breaker shared through Redis: its probe slot
is freed without a blocking Redis call on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest
from django.core.cache import caches

from requestforge_django.http.circuit_breaker import CircuitSnapshot, CircuitState
from requestforge_django.http.exceptions import AuthenticationException, ConnectionException, HttpClientException, TimeoutException
from requestforge_django.http.messages import HttpResponse
from requestforge_django.registry import aget_client, get_client
from requestforge_django.shared.breaker import CacheCircuitBreaker, CacheCircuitStore
from requestforge_django.shared.errors import TokenStorageError
from requestforge_django.testing import StubTokenEndpoint
from tests.support.async_real import WAIT, async_setting, held_reply, redis_key
from tests.support.django_caches import redis_cache_config
from tests.support.partner_server import PartnerServer, Reply
from tests.support.redis_server import free_port

if TYPE_CHECKING:
    import redis

pytestmark = [pytest.mark.redis, pytest.mark.django_db(databases=[])]

E = TypeVar("E", bound=BaseException)
RECOVERY = 30.0


@pytest.fixture
def partner() -> Iterator[PartnerServer]:
    with PartnerServer(quiet=True) as server:
        server.route("*", "*", Reply(200, {"ok": True}))
        yield server


def acall(name: str, path: str = "/orders") -> HttpResponse:
    async def call() -> HttpResponse:
        client = await aget_client(name)
        return await client.aget(path)

    response: HttpResponse = asyncio.run(call())
    return response


def both_raise(expected: type[E], name: str, path: str = "/orders") -> tuple[E, E]:
    """The exception of the sync call and that of the async call of client ``name``; both must be ``expected``."""
    with pytest.raises(expected) as sync_info:
        get_client(name).get(path)
    with pytest.raises(expected) as async_info:
        acall(name, path)
    assert type(async_info.value) is type(sync_info.value), (type(async_info.value), type(sync_info.value))
    return sync_info.value, async_info.value


async def _outcome(call: Awaitable[HttpResponse]) -> BaseException | HttpResponse:
    try:
        return await call
    except HttpClientException as exc:
        return exc


def in_redis(client: redis.Redis, alias: str, *keys: str) -> list[bool]:
    """Whether Redis itself holds each of ``keys`` (storage keys under the tests' ``KEY_PREFIX``)."""
    return [bool(client.exists(redis_key(alias, f"rf-test:{key}"))) for key in keys]


# -- the token endpoint fails ---------------------------------------------------------------------------------------------


FAULTS = ["http-500", "garbage", "no-access-token", "refused"]


def arrange(fault: str, stub: StubTokenEndpoint) -> dict[str, Any]:
    """Make the token endpoint fail the way ``fault`` says; the ``billing`` settings that go with it."""
    if fault == "http-500":
        stub.fail_with(500)
    elif fault == "garbage":
        stub.fail_with(200, body="<html>not a token</html>")
    elif fault == "no-access-token":
        stub.fail_with(200, body={"token_type": "Bearer", "expires_in": 3600})
    else:  # a port nobody listens on
        dead = f"http://127.0.0.1:{free_port()}/oauth/token"
        return {"AUTH": {"TYPE": "client_credentials", "TOKEN_URL": dead, "CLIENT_ID": stub.client_id, "CLIENT_SECRET": stub.client_secret}}
    return {}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_token_endpoint(
    settings: Any, token_server: StubTokenEndpoint, partner: PartnerServer, redis_cache: str, redis_client: redis.Redis, fault: str
) -> None:
    billing = arrange(fault, token_server)
    settings.REQUESTFORGE = async_setting(token_server, partner.url, redis_cache, **billing)
    tried = 0 if fault == "refused" else 1  # requests reaching the stub per call

    sync_error, async_error = both_raise(AuthenticationException, "billing")
    assert str(async_error) == str(sync_error)  # message, service, status, OAuth error, masked URL
    assert (async_error.service_name, async_error.status_code, async_error.url) == (
        sync_error.service_name,
        sync_error.status_code,
        sync_error.url,
    )
    assert async_error.service_name == "billing" and async_error.url
    assert token_server.stats().token_requests == 2 * tried  # the sync failure cached nothing: the async call tried again
    assert in_redis(redis_client, redis_cache, "client:billing", "lock:client:billing") == [False, False]

    async def twice_on_one_loop() -> list[BaseException | HttpResponse]:
        client = await aget_client("billing")
        return [await _outcome(client.aget("/orders")) for _ in range(2)]

    outcomes = asyncio.run(twice_on_one_loop())
    assert all(isinstance(o, AuthenticationException) for o in outcomes), outcomes
    assert token_server.stats().token_requests == 4 * tried  # nor did the async failure, on the same loop either
    assert partner.received == []

    if fault == "refused":
        return
    token_server.recover()
    assert acall("billing").status_code == 200
    assert token_server.stats().token_requests == 5
    assert in_redis(redis_client, redis_cache, "client:billing", "lock:client:billing") == [True, False]


# -- the partner fails ----------------------------------------------------------------------------------------------------


def test_a_partner_that_does_not_answer_in_time(
    settings: Any, token_server: StubTokenEndpoint, partner: PartnerServer, redis_cache: str
) -> None:
    stop = threading.Event()
    partner.route("GET", "/slow", held_reply(threading.Event(), stop))
    settings.REQUESTFORGE = async_setting(token_server, partner.url, redis_cache, TIMEOUT=(2, 0.2))
    try:
        sync_error, async_error = both_raise(TimeoutException, "billing", "/slow")
    finally:
        stop.set()
    assert (async_error.method, async_error.url) == (sync_error.method, sync_error.url) == ("GET", f"{partner.url}/slow")
    assert len(partner.requests_to("/slow")) == 2 and token_server.stats().token_requests == 1
    assert acall("billing", "/fast").status_code == 200  # the client is fine afterwards


def test_a_partner_that_refuses_connections(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings.REQUESTFORGE = async_setting(token_server, dead, redis_cache)
    sync_error, async_error = both_raise(ConnectionException, "billing")
    assert (async_error.method, async_error.url) == (sync_error.method, sync_error.url) == ("GET", f"{dead}/orders")
    assert token_server.stats().token_requests == 1  # the token was fetched once and kept


# -- the token cache is down -----------------------------------------------------------------------------------------------------


def test_a_cache_that_is_down(settings: Any, token_server: StubTokenEndpoint, partner: PartnerServer) -> None:
    settings.CACHES = {**settings.CACHES, "redis-down": redis_cache_config(f"redis://127.0.0.1:{free_port()}/0")}
    settings.REQUESTFORGE = async_setting(token_server, partner.url, "redis-down")
    settings.REQUESTFORGE["CLIENTS"]["guarded"] = {
        "BASE_URL": partner.url,
        "RETRY": {"STRATEGY": "none"},
        "CIRCUIT_BREAKER": {"SHARED": True},
    }

    sync_error, async_error = both_raise(TokenStorageError, "billing")
    assert str(async_error) == str(sync_error)
    assert (async_error.cache_alias, async_error.key) == ("redis-down", "rf-test:client:billing")
    # Documented: no token endpoint, no API call, instead of treating the cache as empty.
    assert token_server.stats().token_requests == 0 and partner.received == []
    # Clients that do not need the token cache keep working; the shared breaker counts in this process.
    for name in ("public", "keyed", "guarded"):
        assert get_client(name).get(f"/{name}").status_code == 200
        assert acall(name, f"/{name}").status_code == 200
    assert len(partner.received) == 6


# -- a send cancelled on a breaker shared through Redis --------------------------------------------------------------------------


@pytest.fixture
def guarded(settings: Any, token_server: StubTokenEndpoint, partner: PartnerServer, redis_cache: str) -> CacheCircuitBreaker:
    """``guarded``: a client on ``partner`` with a breaker kept in django-redis, half-open (the next call is the probe)."""
    settings.REQUESTFORGE = async_setting(token_server, partner.url, redis_cache)
    settings.REQUESTFORGE["CLIENTS"]["guarded"] = {
        "BASE_URL": partner.url,
        "RETRY": {"STRATEGY": "none"},
        "CIRCUIT_BREAKER": {"SHARED": True, "FAILURE_THRESHOLD": 1, "RECOVERY_TIMEOUT": RECOVERY},
    }
    breaker = cast(CacheCircuitBreaker, get_client("guarded").config.circuit_breaker)
    assert isinstance(breaker, CacheCircuitBreaker)
    breaker.store.write(CircuitSnapshot(CircuitState.OPEN, failures=1, opened_at=time.time() - RECOVERY - 1))
    assert breaker.state is CircuitState.HALF_OPEN
    return breaker


def shared_snapshot(breaker: CacheCircuitBreaker) -> CircuitSnapshot:
    """The breaker's state as another process reads it from Redis."""
    raw = caches[breaker.cache_alias].get(breaker.key)
    assert isinstance(raw, dict), "no breaker state in Redis"
    return CircuitSnapshot(CircuitState(raw["state"]), raw["failures"], raw["opened_at"], raw["probe"])


@pytest.mark.parametrize("how", ["cancel", "wait_for"])
def test_a_probe_cancelled_mid_send_frees_the_shared_slot_off_the_loop(
    guarded: CacheCircuitBreaker, partner: PartnerServer, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    arrived, answer = threading.Event(), threading.Event()
    partner.route("GET", "/slow", held_reply(arrived, answer))
    store_threads: list[int] = []
    real_update = CacheCircuitStore.update

    def spy(self: CacheCircuitStore, step: Any) -> Any:
        store_threads.append(threading.get_ident())
        return real_update(self, step)

    monkeypatch.setattr(CacheCircuitStore, "update", spy)

    async def main() -> tuple[int, bool]:
        client = await aget_client("guarded")
        if how == "wait_for":
            call = asyncio.create_task(asyncio.wait_for(client.aget("/slow"), timeout=WAIT))
        else:
            call = asyncio.create_task(client.aget("/slow"))
        assert await asyncio.to_thread(arrived.wait, WAIT), "the probe never reached the partner"
        probe_taken = shared_snapshot(guarded).probe_in_flight  # admitted as the probe: the slot is taken in Redis
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return threading.get_ident(), probe_taken

    try:
        loop_thread, probe_taken = asyncio.run(main())  # returns once the loop's worker threads are done
    finally:
        answer.set()
    assert probe_taken
    assert store_threads and loop_thread not in store_threads, "a Redis call of the breaker ran on the event loop"
    snapshot = shared_snapshot(guarded)
    assert (snapshot.state, snapshot.failures, snapshot.probe_in_flight) == (CircuitState.HALF_OPEN, 1, False)
    other_process = CacheCircuitBreaker(guarded.cache_alias, guarded.key, failure_threshold=1, recovery_timeout=RECOVERY)
    assert other_process.allow_request()  # the next caller anywhere may probe now


def test_cancellation_is_not_held_up_by_the_breaker_store(guarded: CacheCircuitBreaker, partner: PartnerServer) -> None:
    """The cancelled task ends before the slot is freed in Redis: the release never runs inside it."""
    arrived, answer, store_entered, store_go = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    partner.route("GET", "/slow", held_reply(arrived, answer))
    real_update = guarded.store.update
    calls = 0

    def slow_store(step: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first call admitted the probe; the second frees it: hold it like a slow Redis
            store_entered.set()
            store_go.wait(WAIT)
        return real_update(step)

    guarded.store.update = slow_store  # type: ignore[method-assign]

    async def main() -> bool:
        client = await aget_client("guarded")
        call = asyncio.create_task(client.aget("/slow"))
        assert await asyncio.to_thread(arrived.wait, WAIT)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        freed_before_the_task_ended = not shared_snapshot(guarded).probe_in_flight
        assert await asyncio.to_thread(store_entered.wait, WAIT), "the probe slot was never released"
        store_go.set()
        return freed_before_the_task_ended

    try:
        freed_early = asyncio.run(main())
    finally:
        answer.set()
        store_go.set()
    assert not freed_early
    assert not shared_snapshot(guarded).probe_in_flight


def test_a_probe_whose_loop_is_closed_under_it_frees_the_shared_slot(guarded: CacheCircuitBreaker, partner: PartnerServer) -> None:
    """The coroutine of a send is closed (``GeneratorExit``, as when a dead loop's task is collected): nothing can be awaited."""
    arrived, answer = threading.Event(), threading.Event()
    partner.route("GET", "/slow", held_reply(arrived, answer))
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(aget_client("guarded"))
        task = loop.create_task(client.aget("/slow"))
        assert loop.run_until_complete(asyncio.to_thread(arrived.wait, WAIT))
        assert shared_snapshot(guarded).probe_in_flight
    finally:
        loop.close()
        answer.set()
    coro = task.get_coro()
    with contextlib.suppress(RuntimeError):  # aiohttp cannot tidy up on a closed loop, and says so
        coro.close()
    del task, coro
    gc.collect()  # the dead task's "destroyed but pending" log goes to this test's captured output, not to the session's end
    assert not shared_snapshot(guarded).probe_in_flight
    assert acall("guarded", "/next").status_code == 200  # the next loop probes, and the probe closes the circuit
    assert shared_snapshot(guarded).state is CircuitState.CLOSED


def test_cancelled_sends_on_a_closed_shared_breaker_count_nothing(guarded: CacheCircuitBreaker, partner: PartnerServer) -> None:
    guarded.reset()
    arrived, answer = threading.Event(), threading.Event()
    partner.route("GET", "/slow", held_reply(arrived, answer))

    async def main() -> None:
        client = await aget_client("guarded")
        calls = [asyncio.create_task(client.aget("/slow")) for _ in range(3)]
        assert await asyncio.to_thread(arrived.wait, WAIT)
        for call in calls:
            call.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results  # cancelled, not turned into errors

    try:
        asyncio.run(main())
    finally:
        answer.set()
    snapshot = shared_snapshot(guarded)
    assert (snapshot.state, snapshot.failures) == (CircuitState.CLOSED, 0)


@pytest.mark.parametrize("end", ["cancelled", "loop-closed"])
def test_breaker_acall_on_redis_frees_the_probe_slot_when_its_task_ends_early(redis_cache: str, end: str) -> None:
    """``CacheCircuitBreaker.acall`` around any coroutine: a probe cancelled, or closed with its loop, frees the slot."""
    breaker = CacheCircuitBreaker(redis_cache, "rf-test:breaker:acall", failure_threshold=1, recovery_timeout=RECOVERY)
    breaker.store.write(CircuitSnapshot(CircuitState.OPEN, failures=1, opened_at=time.time() - RECOVERY - 1))
    started = threading.Event()

    async def probe() -> None:
        started.set()
        await asyncio.Event().wait()  # never answers

    async def cancelled() -> None:
        task = asyncio.create_task(breaker.acall(probe))
        assert await asyncio.to_thread(started.wait, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    if end == "cancelled":
        asyncio.run(cancelled())
    else:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(breaker.acall(probe))
            assert loop.run_until_complete(asyncio.to_thread(started.wait, WAIT))
            assert shared_snapshot(breaker).probe_in_flight
        finally:
            loop.close()
        task.get_coro().close()  # what collecting the dead task does: GeneratorExit, nothing can be awaited any more
        del task
        gc.collect()
    snapshot = shared_snapshot(breaker)
    assert (snapshot.state, snapshot.failures, snapshot.probe_in_flight) == (CircuitState.HALF_OPEN, 1, False)
