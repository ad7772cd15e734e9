"""The token layer's ``a``-methods: one flight per token for any number of tasks, and a loop that never waits.

Plain functions calling ``asyncio.run`` (no pytest-asyncio). Providers are the fakes of
:mod:`.fakes`; a provider held on a ``threading.Event`` keeps every task in flight.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.http.messages import HttpMethod, HttpRequest, RequestContext
from requestforge_django.tokens import (
    InMemoryTokenStorage,
    PipelineTokenManager,
    TokenAuthHook,
    TokenData,
    TokenFetchPipeline,
    TokenManager,
    TokenSource,
)
from requestforge_django.tokens.auth_hook import SENT_TOKEN_KEY

from .fakes import WAIT, FakeClock, FakeProvider, FakeStep, auth_error, run_now


@pytest.fixture
def provider(clock: FakeClock) -> FakeProvider:
    return FakeProvider(clock)


@pytest.fixture
def manager(provider: FakeProvider, clock: FakeClock) -> TokenManager:
    return TokenManager(provider, refresh_ahead=60, clock=clock, run_renewal=run_now)


class ThreadRecordingStorage(InMemoryTokenStorage):
    """An in-memory table that stands in for Redis: records the thread of every call (a subclass is not served inline)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def get(self, key: str) -> TokenData | None:
        self.threads.append(threading.get_ident())
        return super().get(key)

    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        self.threads.append(threading.get_ident())
        super().set(key, token, ttl)

    def delete(self, key: str) -> None:
        self.threads.append(threading.get_ident())
        super().delete(key)


async def in_flight(gate_entered: threading.Event) -> None:
    """Wait (off the loop) until the provider has been entered, then let every created task reach its first await."""
    assert await asyncio.to_thread(gate_entered.wait, WAIT)
    for _ in range(3):
        await asyncio.sleep(0)


def test_100_tasks_on_a_cold_cache_make_one_fetch(manager: TokenManager, provider: FakeProvider) -> None:
    provider.gate = threading.Event()

    async def main() -> list[TokenData]:
        tasks = [asyncio.create_task(manager.aget_token()) for _ in range(100)]
        await in_flight(provider.entered)
        provider.gate.set()  # type: ignore[union-attr]
        return await asyncio.gather(*tasks)

    tokens = asyncio.run(main())
    assert provider.fetch_calls == 1
    assert {t.access_token for t in tokens} == {"tok-1"}


def test_a_sync_token_is_used_by_async_callers_and_back(clock: FakeClock) -> None:
    provider = FakeProvider(clock)
    sync_first = TokenManager(provider, clock=clock, local_ttl=0)
    fetched = sync_first.get_token()
    assert asyncio.run(sync_first.aget_token()) == fetched

    other = FakeProvider(clock)
    async_first = TokenManager(other, clock=clock, local_ttl=0)
    fetched = asyncio.run(async_first.aget_token())
    assert async_first.get_token() == fetched
    assert provider.fetch_calls == 1 and other.fetch_calls == 1


def test_a_shared_storage_is_never_called_on_the_loop(clock: FakeClock, provider: FakeProvider) -> None:
    storage = ThreadRecordingStorage()
    manager = TokenManager(provider, storage, clock=clock)

    async def main() -> int:
        for _ in range(3):
            await manager.aget_token()
        await manager.aforce_refresh()
        await manager.ainvalidate_token()
        await manager.aget_token()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert storage.threads, "the storage was used"
    assert loop_thread not in storage.threads
    assert provider.fetch_calls == 3  # cold, forced, after the invalidation


def test_a_token_in_memory_is_served_without_a_thread(manager: TokenManager, provider: FakeProvider) -> None:
    token = manager.get_token()
    offloaded: list[Any] = []

    async def main() -> TokenData:
        loop = asyncio.get_running_loop()
        run_in_executor = loop.run_in_executor

        def recording(*args: Any) -> Any:
            offloaded.append(args)
            return run_in_executor(*args)

        loop.run_in_executor = recording  # type: ignore[method-assign,assignment]  # asyncio.to_thread goes through it too
        return await manager.aget_token()

    assert asyncio.run(main()) == token
    assert offloaded == []
    assert provider.fetch_calls == 1


def test_force_refresh_of_a_rejected_token_from_50_tasks_is_one_fetch(manager: TokenManager, provider: FakeProvider) -> None:
    rejected = manager.get_token()
    provider.gate = threading.Event()
    provider.entered.clear()

    async def main() -> list[TokenData]:
        tasks = [asyncio.create_task(manager.aforce_refresh(rejected=rejected)) for _ in range(50)]
        await in_flight(provider.entered)
        provider.gate.set()  # type: ignore[union-attr]
        return await asyncio.gather(*tasks)

    tokens = asyncio.run(main())
    assert provider.fetch_calls == 2  # the first token, then one replacement
    assert {t.access_token for t in tokens} == {"tok-2"}
    assert asyncio.run(manager.aforce_refresh(rejected=rejected)).access_token == "tok-2"  # already replaced: reused
    assert provider.fetch_calls == 2


def test_a_failing_provider_gives_every_task_the_same_typed_error(manager: TokenManager, provider: FakeProvider) -> None:
    provider.gate = threading.Event()
    provider.fail_with = auth_error("endpoint down")

    async def main() -> list[Any]:
        tasks = [asyncio.create_task(manager.aget_token()) for _ in range(20)]
        await in_flight(provider.entered)
        provider.gate.set()  # type: ignore[union-attr]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert provider.fetch_calls == 1
    assert all(isinstance(r, AuthenticationException) for r in results)
    assert len({id(r) for r in results}) == 1
    assert results[0].service_name == "fake"
    assert manager.peek_token() is None  # nothing cached
    provider.fail_with = None
    assert asyncio.run(manager.aget_token()).access_token == "tok-1"  # the next call fetches again
    assert provider.fetch_calls == 2


def test_cancelling_the_leader_leaves_the_others_their_token(manager: TokenManager, provider: FakeProvider) -> None:
    provider.gate = threading.Event()

    async def main() -> tuple[list[TokenData], bool]:
        leader = asyncio.create_task(manager.aget_token())
        await in_flight(provider.entered)
        followers = [asyncio.create_task(manager.aget_token()) for _ in range(10)]
        for _ in range(3):
            await asyncio.sleep(0)
        leader.cancel()
        try:
            await leader
        except asyncio.CancelledError:
            cancelled = True
        else:  # pragma: no cover
            cancelled = False
        provider.gate.set()  # type: ignore[union-attr]
        return await asyncio.gather(*followers), cancelled

    tokens, cancelled = asyncio.run(main())
    assert cancelled
    assert {t.access_token for t in tokens} == {"tok-1"}
    assert provider.fetch_calls == 1
    assert manager.peek_token() is not None and manager.peek_token().access_token == "tok-1"  # type: ignore[union-attr]


def test_cancelling_every_task_still_stores_the_token_once(manager: TokenManager, provider: FakeProvider) -> None:
    provider.gate = threading.Event()

    async def main() -> None:
        tasks = [asyncio.create_task(manager.aget_token()) for _ in range(5)]
        await in_flight(provider.entered)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        provider.gate.set()  # type: ignore[union-attr]

    asyncio.run(main())  # asyncio.run waits for the worker thread before closing the loop
    assert manager.peek_token() is not None
    assert asyncio.run(manager.aget_token()).access_token == "tok-1"
    assert provider.fetch_calls == 1


class SlowProvider(FakeProvider):
    """A token endpoint that answers after ``delay`` seconds (its latency, in the worker thread)."""

    def __init__(self, clock: FakeClock, delay: float) -> None:
        super().__init__(clock)
        self.delay = delay

    def fetch_token(self) -> TokenData:
        time.sleep(self.delay)
        return super().fetch_token()


def test_the_event_loop_is_never_blocked_by_a_300ms_fetch(clock: FakeClock) -> None:
    provider = SlowProvider(clock, 0.3)
    manager = TokenManager(provider, ThreadRecordingStorage(), clock=clock)

    async def main() -> tuple[float, int, TokenData]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        max_lag = 0.0
        ticks = 0

        async def ticker() -> None:
            nonlocal max_lag, ticks
            while not stop.is_set():
                before = loop.time()
                await asyncio.sleep(0.005)
                max_lag = max(max_lag, loop.time() - before - 0.005)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        tokens = await asyncio.gather(*(manager.aget_token() for _ in range(64)))
        stop.set()
        await tick_task
        assert len(set(tokens)) == 1
        return max_lag, ticks, tokens[0]

    max_lag, ticks, token = asyncio.run(main())
    assert provider.fetch_calls == 1
    # A fetch on the loop would stop it for the whole 300 ms (lag >= 0.3 s, a tick or two);
    # the bounds leave room for a loaded CI machine's scheduling and still tell the two apart.
    assert ticks >= 10  # the loop kept ticking through the 300 ms fetch
    assert max_lag < 0.1, f"loop blocked for {max_lag * 1000:.1f} ms"
    assert token.access_token == "tok-1"


def test_a_fresh_event_loop_works_with_the_same_manager(clock: FakeClock, provider: FakeProvider) -> None:
    manager = TokenManager(provider, clock=clock, local_ttl=0)
    first = asyncio.run(manager.aget_token())
    asyncio.run(manager.ainvalidate_token())
    second = asyncio.run(manager.aget_token())
    assert (first.access_token, second.access_token) == ("tok-1", "tok-2")
    assert manager.peek_token() == second


def test_two_loops_in_two_threads_share_one_fetch(manager: TokenManager, provider: FakeProvider) -> None:
    provider.gate = threading.Event()
    results: list[list[TokenData]] = []
    both_entered = threading.Barrier(3)

    def run_loop() -> None:
        async def main() -> list[TokenData]:
            tasks = [asyncio.create_task(manager.aget_token()) for _ in range(30)]
            for _ in range(3):
                await asyncio.sleep(0)
            await asyncio.to_thread(both_entered.wait, WAIT)
            return await asyncio.gather(*tasks)

        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=run_loop) for _ in range(2)]
    for t in threads:
        t.start()
    both_entered.wait(WAIT)  # both loops have their tasks waiting on a flight
    provider.gate.set()
    for t in threads:
        t.join(WAIT)
    assert provider.fetch_calls == 1
    assert {t.access_token for batch in results for t in batch} == {"tok-1"}
    assert len(results) == 2


def test_pipeline_aexecute_and_pipeline_manager(clock: FakeClock) -> None:
    device = FakeStep("device", clock)
    user = FakeStep("user", clock, depends_on=("device",))
    pipeline = TokenFetchPipeline([device, user], cache_key_prefix="p", clock=clock, run_renewal=run_now)
    manager = PipelineTokenManager(pipeline, refresh_from_step="user")
    user.gate = threading.Event()

    async def main() -> tuple[list[TokenData], TokenData, TokenData]:
        tasks = [asyncio.create_task(pipeline.aexecute()) for _ in range(40)]
        await in_flight(user.entered)
        user.gate.set()  # type: ignore[union-attr]
        first = await asyncio.gather(*tasks)
        again = await manager.aget_token()  # every step in memory: served inline
        replaced = await asyncio.gather(*(manager.aforce_refresh(rejected=first[0]) for _ in range(10)))
        return first, again, replaced[0]

    first, again, replaced = asyncio.run(main())
    assert {t.access_token for t in first} == {"user-1"} and again.access_token == "user-1"
    assert replaced.access_token == "user-2"
    assert (device.calls, user.calls) == (1, 2)
    forced = asyncio.run(pipeline.aexecute(force_refresh=True))
    assert forced.access_token == "user-3" and device.calls == 2
    asyncio.run(manager.ainvalidate_token())
    assert pipeline.peek_step("user") is None and pipeline.peek_step("device") is not None


def test_token_sources_declare_the_async_methods() -> None:
    for name in ("aget_token", "aforce_refresh", "ainvalidate_token"):
        assert inspect.iscoroutinefunction(getattr(TokenSource, name))
        assert inspect.iscoroutinefunction(getattr(TokenManager, name))
        assert inspect.iscoroutinefunction(getattr(PipelineTokenManager, name))


def test_token_auth_hook_async_path_replaces_exactly_the_token_it_sent(manager: TokenManager, provider: FakeProvider) -> None:
    hook = TokenAuthHook(manager)

    async def main() -> tuple[list[str], list[str]]:
        contexts = [RequestContext(HttpRequest(HttpMethod.GET, "/things")) for _ in range(30)]
        sent = await asyncio.gather(*(hook.abefore_request(c.request, c) for c in contexts))
        assert all(c.metadata[SENT_TOKEN_KEY].access_token == "tok-1" for c in contexts)
        assert all(await asyncio.gather(*(hook.arefresh_auth(c) for c in contexts)))
        resent = await asyncio.gather(*(hook.abefore_request(c.request, c) for c in contexts))
        return [r.headers["Authorization"] for r in sent], [r.headers["Authorization"] for r in resent]

    before, after = asyncio.run(main())
    assert set(before) == {"Bearer tok-1"} and set(after) == {"Bearer tok-2"}
    assert provider.fetch_calls == 2  # 30 rejections of tok-1: one replacement


def test_token_auth_hook_async_failure_is_typed(manager: TokenManager, provider: FakeProvider) -> None:
    provider.fail_with = auth_error("token endpoint down")
    hook = TokenAuthHook(manager)
    context = RequestContext(HttpRequest(HttpMethod.GET, "/things"))
    with pytest.raises(AuthenticationException, match="token endpoint down"):
        asyncio.run(hook.abefore_request(context.request, context))
    assert SENT_TOKEN_KEY not in context.metadata


class SyncOnlySource:
    """A custom token source written before the async methods existed."""

    def __init__(self) -> None:
        self.service_name = "legacy"
        self.refreshed: list[TokenData | None] = []
        self.thread: int | None = None

    def get_token(self) -> TokenData:
        self.thread = threading.get_ident()
        return TokenData("legacy-1")

    def force_refresh(self, rejected: TokenData | None = None) -> TokenData:
        self.refreshed.append(rejected)
        return TokenData("legacy-2")

    def invalidate_token(self, reason: str = "manual") -> None:
        return None


def test_token_auth_hook_runs_a_sync_only_source_off_the_loop() -> None:
    source = SyncOnlySource()
    hook = TokenAuthHook(source)  # type: ignore[arg-type]
    context = RequestContext(HttpRequest(HttpMethod.GET, "/things"))

    async def main() -> tuple[str, int]:
        request = await hook.abefore_request(context.request, context)
        assert await hook.arefresh_auth(context)
        return request.headers["Authorization"], threading.get_ident()

    header, loop_thread = asyncio.run(main())
    assert header == "Bearer legacy-1"
    assert source.thread is not None and source.thread != loop_thread
    assert [t.access_token if t else None for t in source.refreshed] == ["legacy-1"]


@pytest.mark.redis
def test_two_managers_on_redis_with_64_tasks_each_make_one_fetch(redis_cache: str) -> None:
    """Two managers (two "processes": separate in-process caches) on one django-redis storage, each on its own loop."""
    from datetime import datetime, timezone

    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage

    provider = FakeProvider(FakeClock(datetime.now(timezone.utc)))
    provider.gate = threading.Event()
    managers = [TokenManager(provider, DjangoCacheTokenStorage(redis_cache, key_prefix="async-test")) for _ in range(2)]
    ready = threading.Barrier(3)
    results: list[list[TokenData]] = []

    def run_loop(manager: TokenManager) -> None:
        async def main() -> list[TokenData]:
            tasks = [asyncio.create_task(manager.aget_token()) for _ in range(64)]
            for _ in range(3):
                await asyncio.sleep(0)
            await asyncio.to_thread(ready.wait, WAIT)
            return await asyncio.gather(*tasks)

        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=run_loop, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    ready.wait(WAIT)
    assert provider.entered.wait(WAIT)
    provider.gate.set()
    for t in threads:
        t.join(WAIT)
    assert len(results) == 2
    assert provider.fetch_calls == 1
    assert {t.access_token for batch in results for t in batch} == {"tok-1"}
    assert managers[0].get_token() == managers[1].get_token() == results[0][0]
