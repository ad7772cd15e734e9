"""The async path with real parts: tokens from a loopback token endpoint, stored in django-redis, sent to a loopback partner.

What the fake-provider tests of ``tests/tokens/test_async_tokens.py`` cannot show: that
the event loop's single flight, the sync path's flight and the Redis lease together make
one request to a real token endpoint, that the token in Redis serves both paths, that a
cancelled leader leaves neither a lease nor a partial entry in Redis, and that a client
outlives the event loop it was first used on. Token requests are held on an event
(:class:`~tests.support.async_real.GatedTokenEndpoint`) where a test needs a fetch in
flight. Each test drives its own loop with ``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.http.messages import HttpResponse
from requestforge_django.registry import aget_client, get_client, get_token_manager, registry
from requestforge_django.tokens import TokenManager
from tests.support.async_real import WAIT, GatedTokenEndpoint, async_setting, held_reply, masked, redis_key
from tests.support.partner_server import PartnerServer, Received, Reply

if TYPE_CHECKING:
    import redis

pytestmark = [pytest.mark.redis, pytest.mark.django_db(databases=[])]

TASKS = 100


@pytest.fixture
def stub() -> Iterator[GatedTokenEndpoint]:
    server = GatedTokenEndpoint(expires_in=3600)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def partner() -> Iterator[PartnerServer]:
    with PartnerServer(quiet=True) as server:
        server.route("*", "*", Reply(200, {"ok": True}))
        yield server


@pytest.fixture
def configured(settings: Any, stub: GatedTokenEndpoint, partner: PartnerServer, redis_cache: str) -> GatedTokenEndpoint:
    """``billing`` on ``partner`` with tokens from ``stub`` in django-redis (flushed: a cold cache)."""
    settings.REQUESTFORGE = async_setting(stub, partner.url, redis_cache)
    return stub


class InRedis:
    """What Redis itself holds for ``billing``'s token: the entry and the fetch lease."""

    def __init__(self, client: redis.Redis, alias: str) -> None:
        manager = cast(TokenManager, get_token_manager("billing"))
        storage: Any = manager.storage
        self.client = client
        self.token_key = redis_key(alias, storage.make_key(manager.cache_key))
        self.lease_key = redis_key(alias, storage.make_lock_key(manager.cache_key))

    def has_token(self) -> bool:
        return bool(self.client.exists(self.token_key))

    def has_lease(self) -> bool:
        return bool(self.client.exists(self.lease_key))


def stored_token() -> str:
    """The access token in the cache (read through the manager, as another process would)."""
    token = get_token_manager("billing").peek_token()
    assert token is not None, "no token in the cache"
    return token.access_token


def assert_sent_with(received: list[Received], token: str, count: int) -> None:
    """Every request the partner received carried ``Bearer <token>``."""
    headers = [r.header("Authorization") for r in received]
    right = sum(header == f"Bearer {token}" for header in headers)
    assert (len(headers), right) == (count, count), f"expected Bearer {masked(token)}, got {sorted({masked(h) for h in headers})}"


async def acall(path: str) -> HttpResponse:
    client = await aget_client("billing")
    return await client.aget(path)


# -- one fetch for many tasks -------------------------------------------------------------------------------------------


def test_100_concurrent_agets_on_a_cold_cache_make_one_fetch(
    configured: GatedTokenEndpoint, partner: PartnerServer, redis_client: redis.Redis, redis_cache: str
) -> None:
    stub = configured
    stub.hold()

    async def main() -> tuple[tuple[int, int, int], list[HttpResponse]]:
        have_client = 0
        everyone_has_a_client = asyncio.Event()

        async def call(n: int) -> HttpResponse:
            nonlocal have_client
            client = await aget_client("billing")
            have_client += 1
            if have_client == TASKS:
                everyone_has_a_client.set()
            await everyone_has_a_client.wait()  # all 100 ask for the token in the same loop iteration
            return await client.aget(f"/orders/{n}")

        tasks = [asyncio.create_task(call(n)) for n in range(TASKS)]
        assert await asyncio.to_thread(stub.entered.wait, WAIT), "no token request arrived"
        during = (stub.stats().token_requests, len(partner.received), sum(task.done() for task in tasks))
        stub.release()
        return during, await asyncio.gather(*tasks)

    (fetches_during, partner_during, done_during), responses = asyncio.run(main())
    assert (fetches_during, partner_during, done_during) == (1, 0, 0)  # all 100 were waiting for the one fetch
    assert [r.status_code for r in responses] == [200] * TASKS
    assert stub.stats().token_requests == 1
    token = stored_token()
    assert stub.is_valid(token)
    assert_sent_with(partner.received, token, TASKS)
    redis_state = InRedis(redis_client, redis_cache)
    assert redis_state.has_token() and not redis_state.has_lease()


@pytest.mark.parametrize("first", ["sync", "async"])
def test_a_token_fetched_on_one_path_serves_the_other(
    configured: GatedTokenEndpoint, partner: PartnerServer, redis_client: redis.Redis, redis_cache: str, first: str
) -> None:
    stub = configured

    def sync_call(path: str) -> int:
        return get_client("billing").get(path).status_code

    def async_call(path: str) -> int:
        response: HttpResponse = asyncio.run(acall(path))
        return response.status_code

    fetching, other = (sync_call, async_call) if first == "sync" else (async_call, sync_call)
    client = get_client("billing")
    assert fetching("/first") == 200
    assert stub.stats().token_requests == 1
    assert InRedis(redis_client, redis_cache).has_token()
    assert other("/same-client") == 200
    assert get_client("billing") is client
    registry.reset()  # a fresh client and manager, as in another process: the token can only come from Redis
    assert get_client("billing") is not client
    assert other("/fresh-client") == 200
    assert stub.stats().token_requests == 1
    assert_sent_with(partner.received, stored_token(), 3)


# -- a task cancelled while it leads a token fetch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "waiters"),
    [("token", 9), ("500", 9), ("token", 0)],
    ids=["others-get-the-token", "others-get-the-error", "nobody-left-waiting"],
)
def test_cancelling_the_task_that_leads_a_fetch(
    configured: GatedTokenEndpoint,
    partner: PartnerServer,
    redis_client: redis.Redis,
    redis_cache: str,
    answer: str,
    waiters: int,
) -> None:
    stub = configured
    in_redis = InRedis(redis_client, redis_cache)
    stub.hold()
    if answer == "500":
        stub.fail_with(500, times=1)

    async def main() -> tuple[bool, list[Any]]:
        client = await aget_client("billing")
        leader = asyncio.create_task(client.aget("/leader"))
        assert await asyncio.to_thread(stub.entered.wait, WAIT), "the leader's token request never arrived"
        others = [asyncio.create_task(client.aget(f"/waiter/{n}")) for n in range(waiters)]
        await asyncio.sleep(0)  # one loop iteration: each waiter runs up to its wait for the leader's fetch
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        lease_while_fetching = in_redis.has_lease()  # the fetch goes on in its worker thread, under the lease
        stub.release()
        return lease_while_fetching, await asyncio.gather(*others, return_exceptions=True)

    lease_while_fetching, results = asyncio.run(main())  # returns once the fetch's worker thread has finished
    assert lease_while_fetching
    assert stub.stats().token_requests == 1  # the waiters shared the cancelled leader's fetch
    assert not in_redis.has_lease()
    assert partner.requests_to("/leader") == []
    if answer == "token":
        assert all(isinstance(r, HttpResponse) and r.status_code == 200 for r in results), results
        token = stored_token()  # a whole token, the one the endpoint issued
        assert stub.is_valid(token)
        assert_sent_with(partner.received, token, waiters)
        assert asyncio.run(acall("/next")).status_code == 200  # served from Redis: no second fetch
        assert stub.stats().token_requests == 1
    else:
        assert len(results) == waiters and all(isinstance(r, AuthenticationException) for r in results), results
        assert all(r.service_name == "billing" and r.status_code == 500 for r in results)
        assert not in_redis.has_token() and partner.received == []
        assert asyncio.run(acall("/next")).status_code == 200  # the next call fetches again
        assert stub.stats().token_requests == 2


# -- an event loop closed under a client --------------------------------------------------------------------------------------


def test_a_fresh_loop_gets_a_working_client_after_one_was_closed_under_it(configured: GatedTokenEndpoint, partner: PartnerServer) -> None:
    stub = configured
    arrived, answer = threading.Event(), threading.Event()
    partner.route("GET", "/slow", held_reply(arrived, answer))
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(aget_client("billing"))
        assert loop.run_until_complete(client.aget("/warm")).status_code == 200  # token fetched, a pooled connection
        pending = loop.create_task(client.aget("/slow"))
        assert loop.run_until_complete(asyncio.to_thread(arrived.wait, WAIT))
    finally:
        loop.close()  # not stopped cleanly: the session is open and a request is in flight
        answer.set()
    assert not pending.done()
    with contextlib.suppress(RuntimeError):  # what collecting the dead task does; aiohttp cannot tidy up on a closed loop
        pending.get_coro().close()
    del pending
    gc.collect()  # the dead task's "destroyed but pending" log goes to this test's captured output, not to the session's end

    async def fresh() -> tuple[object, list[HttpResponse]]:
        same = await aget_client("billing")
        return same, list(await asyncio.gather(*(same.aget(f"/after/{n}") for n in range(5))))

    same, responses = asyncio.run(fresh())
    assert same is client
    assert [r.status_code for r in responses] == [200] * 5
    assert stub.stats().token_requests == 1  # the token in Redis outlived the loop
    assert_sent_with(partner.requests_to("/warm") + [r for r in partner.received if r.path.startswith("/after/")], stored_token(), 6)
    assert asyncio.run(acall("/again")).status_code == 200  # and the loop after that
