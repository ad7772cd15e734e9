"""Refresh-ahead for asyncio callers of a pipeline: a due step is renewed once, and the loop does not pay per call.

The pipeline's side of :mod:`.test_async_refresh_ahead`. ``TokenFetchPipeline.aexecute``
(and ``PipelineTokenManager.aget_token``, and the auth hook through
``PipelineTokenManager.token_in_memory``) serve the final token at once only while
every step's token is in the cache's memory, and a step inside its refresh-ahead window
never is. Without the hold, every call made while any step is renewed went to a worker
thread and read the storage (Redis). The final step's window and an earlier step's
window are both covered: either one keeps the fast path closed.

The storage is a subclass of the in-memory one, so it is treated like Redis (never read
on the loop); renewals run on threads the test joins, and the renewing step is held on a
gate so a renewal stays in flight for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from requestforge_django.http.messages import HttpMethod, HttpRequest, RequestContext
from requestforge_django.tokens import PipelineTokenManager, TokenAuthHook, TokenData, TokenFetchPipeline
from requestforge_django.tokens.auth_hook import SENT_TOKEN_KEY

from .fakes import WAIT, FakeClock, FakeStep, ReadCountingStorage, Renewals, auth_error, recording_offloads

LIFETIME = 100.0  # seconds by the fake clock: the lifetime of the step that becomes due
LONG_LIFETIME = 1000.0  # the other step, never due in these tests
REFRESH_AHEAD = 30.0  # due 70 s after it was issued
LOCAL_TTL = 5.0
STEPS = 2  # device -> user


class Steps:
    """``device`` and ``user`` (depending on ``device``); only ``due`` gets a lifetime short enough to become due."""

    def __init__(self, clock: FakeClock, due: str) -> None:
        self.device = FakeStep("device", clock, lifetime=LIFETIME if due == "device" else LONG_LIFETIME)
        self.user = FakeStep("user", clock, depends_on=("device",), lifetime=LIFETIME if due == "user" else LONG_LIFETIME)
        self.due = self.device if due == "device" else self.user

    def pipeline(
        self, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock, *, local_ttl: float = LOCAL_TTL
    ) -> TokenFetchPipeline:
        return TokenFetchPipeline(
            [self.device, self.user],
            storage,
            cache_key_prefix="p",
            refresh_ahead=REFRESH_AHEAD,
            local_ttl=local_ttl,
            clock=clock,
            run_renewal=renewals,
        )


@pytest.fixture(params=["user", "device"], ids=["final-step-due", "earlier-step-due"])
def steps(request: pytest.FixtureRequest, clock: FakeClock) -> Steps:
    return Steps(clock, request.param)


@pytest.fixture
def pipeline(steps: Steps, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock) -> TokenFetchPipeline:
    return steps.pipeline(storage, renewals, clock)


@pytest.fixture
def manager(pipeline: TokenFetchPipeline) -> PipelineTokenManager:
    return PipelineTokenManager(pipeline)


def due_with_renewal_held(pipeline: TokenFetchPipeline, steps: Steps, clock: FakeClock) -> TokenData:
    """``user-1`` cached, the ``due`` step inside its refresh-ahead window; its next renewal will wait on the step's gate."""
    first = pipeline.execute()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    steps.due.gate = threading.Event()
    steps.due.entered.clear()
    return first


async def sent_by_hook(hook: TokenAuthHook) -> TokenData:
    context = RequestContext(HttpRequest(HttpMethod.GET, "/things"))
    await hook.abefore_request(context.request, context)
    token = context.metadata[SENT_TOKEN_KEY]
    assert isinstance(token, TokenData)
    return token


def test_calls_during_a_renewal_keep_the_final_token_without_a_thread_or_a_read_each(
    pipeline: TokenFetchPipeline,
    manager: PipelineTokenManager,
    steps: Steps,
    storage: ReadCountingStorage,
    renewals: Renewals,
    clock: FakeClock,
) -> None:
    first = due_with_renewal_held(pipeline, steps, clock)
    hook = TokenAuthHook(manager)

    async def main() -> tuple[TokenData, list[TokenData], int, list[Any], TokenData]:
        noticed = await manager.aget_token()  # one worker thread: reads the storage, starts the step's renewal
        assert await asyncio.to_thread(steps.due.entered.wait, WAIT)  # the renewal is at the step's endpoint
        reads = storage.reads
        offloaded = recording_offloads(asyncio.get_running_loop())
        during: list[TokenData] = []
        for _ in range(5):  # 64 tasks calling again and again, through each way in
            during += await asyncio.gather(
                *(manager.aget_token() for _ in range(22)),
                *(pipeline.aexecute() for _ in range(21)),
                *(sent_by_hook(hook) for _ in range(21)),
            )
        reads_during = storage.reads - reads
        steps.due.gate.set()  # type: ignore[union-attr]
        renewals.join()
        after = await manager.aget_token()  # from memory once the renewal is in
        return noticed, during, reads_during, offloaded, after

    noticed, during, reads_during, offloaded, after = asyncio.run(main())
    assert noticed == first and set(during) == {first} and len(during) == 320
    assert offloaded == [], f"{len(offloaded)} calls went to a worker thread while a step was being renewed"
    assert reads_during == 0
    assert steps.due.calls == 2  # one renewal for 321 calls
    # A renewed final token is served; a renewed earlier step leaves the final token (derived from it) in place.
    assert after.access_token == ("user-2" if steps.due is steps.user else "user-1")


def test_the_held_token_is_read_again_after_local_ttl(
    pipeline: TokenFetchPipeline,
    manager: PipelineTokenManager,
    steps: Steps,
    storage: ReadCountingStorage,
    renewals: Renewals,
    clock: FakeClock,
) -> None:
    first = due_with_renewal_held(pipeline, steps, clock)

    async def main() -> tuple[TokenData, int, int]:
        await manager.aget_token()
        assert await asyncio.to_thread(steps.due.entered.wait, WAIT)
        reads = storage.reads
        await manager.aget_token()
        held_reads = storage.reads - reads
        clock.advance(LOCAL_TTL + 1)  # still valid (and still being renewed), but held long enough
        again = await manager.aget_token()
        return again, held_reads, storage.reads - reads

    try:
        again, held_reads, reads = asyncio.run(main())
    finally:
        steps.due.gate.set()  # type: ignore[union-attr]
        renewals.join()
    assert held_reads == 0
    assert reads == STEPS  # every step's storage entry is read again, as by any memory hit after local_ttl
    assert again == first  # a renewal is in flight: the still-valid token is served
    assert steps.due.calls == 2


def test_a_rejected_final_token_is_not_served_from_the_hold(storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock) -> None:
    steps = Steps(clock, "user")
    here = PipelineTokenManager(steps.pipeline(storage, renewals, clock), refresh_from_step="user")
    other_process = PipelineTokenManager(steps.pipeline(storage, renewals, clock), refresh_from_step="user")
    first = here.get_token()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    steps.user.fail_with = auth_error("endpoint down")

    async def main() -> tuple[TokenData | None, TokenData, TokenData | None, TokenData]:
        assert await here.aget_token() == first  # due: the renewal fails in the background, the valid token is held
        await asyncio.to_thread(renewals.join)
        held = here.token_in_memory()
        steps.user.fail_with = None
        await asyncio.to_thread(other_process.force_refresh)  # another process replaces it meanwhile
        replacement = await here.aforce_refresh(rejected=first)  # the partner refused it; the replacement is in the storage
        return held, replacement, here.token_in_memory(), await here.aget_token()

    held, replacement, in_memory, after = asyncio.run(main())
    assert held == first
    assert replacement.access_token == "user-3" and steps.user.calls == 3  # 2: the failed renewal; 3: the other process's
    assert in_memory != first
    assert after == replacement  # never the refused token again


def test_an_invalidated_final_token_is_not_served_from_the_hold(
    manager: PipelineTokenManager, steps: Steps, renewals: Renewals, clock: FakeClock
) -> None:
    first = manager.get_token()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    steps.due.fail_with = auth_error("endpoint down")

    async def main() -> tuple[TokenData | None, TokenData]:
        assert await manager.aget_token() == first  # held after the failed renewal
        await asyncio.to_thread(renewals.join)
        held = manager.token_in_memory()
        await manager.ainvalidate_token()
        steps.due.fail_with = None
        return held, await manager.aget_token()

    held, after = asyncio.run(main())
    assert held == first
    assert after != first and after.access_token == f"user-{steps.user.calls}"  # fetched after the invalidation


def test_invalidating_an_earlier_step_drops_the_held_final_token(
    pipeline: TokenFetchPipeline, steps: Steps, renewals: Renewals, clock: FakeClock
) -> None:
    first = pipeline.execute()
    clock.advance(LIFETIME - REFRESH_AHEAD + 5)
    steps.due.fail_with = auth_error("endpoint down")

    async def main() -> tuple[TokenData | None, TokenData | None, TokenData]:
        assert await pipeline.aexecute() == first
        await asyncio.to_thread(renewals.join)
        held = pipeline.token_in_memory()
        await asyncio.to_thread(pipeline.invalidate_step, "device")  # cascades to user
        dropped = pipeline.token_in_memory()
        steps.due.fail_with = None
        return held, dropped, await pipeline.aexecute()

    held, dropped, after = asyncio.run(main())
    assert held == first
    assert dropped is None
    assert after != first and after.access_token == f"user-{steps.user.calls}"  # fetched after the invalidation
    assert steps.user.seen[-1] == {"device": f"device-{steps.device.calls}"}  # ... from a device token fetched after it too


def test_local_ttl_zero_holds_nothing(steps: Steps, storage: ReadCountingStorage, renewals: Renewals, clock: FakeClock) -> None:
    pipeline = steps.pipeline(storage, renewals, clock, local_ttl=0)
    manager = PipelineTokenManager(pipeline)
    due_with_renewal_held(pipeline, steps, clock)

    async def main() -> tuple[int, TokenData | None]:
        await manager.aget_token()
        assert await asyncio.to_thread(steps.due.entered.wait, WAIT)
        reads = storage.reads
        for _ in range(3):
            await manager.aget_token()
        return storage.reads - reads, manager.token_in_memory()

    try:
        reads, in_memory = asyncio.run(main())
    finally:
        steps.due.gate.set()  # type: ignore[union-attr]
        renewals.join()
    assert reads == 3 * STEPS  # memory turned off: every call reads every step, as the sync path does
    assert in_memory is None
