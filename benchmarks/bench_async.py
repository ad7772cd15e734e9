"""The async transport, chosen by measuring: fan-out throughput, event-loop lag and token rollover.

Fan-out: 2000 authenticated GETs at concurrency 64 on a loopback keep-alive server, sent by

* raw ``aiohttp`` (one ``ClientSession``, a static bearer header),
* raw ``httpx.AsyncClient`` (same), and raw ``niquests.AsyncSession`` where installed (see
  :func:`_optional`),
* this project's ``HttpClient.arequest_many`` (static bearer token; ``--auth redis`` adds
  OAuth2 client-credentials tokens from a ``TokenManager`` on ``DjangoCacheTokenStorage``
  over a real redis-server started here),
* this project's sync ``request_many`` (64 worker threads),

in interleaved rounds (the order rotates each round). Prints each side's median requests/s
and the ratio to raw aiohttp (target: ours >= 0.90x).

Event-loop lag: a 1 ms ticker runs on the loop while calls are in flight (and, with
``--auth redis``, while the first call fetches a token from an endpoint that takes 300 ms);
prints the longest gap between ticks beyond the 1 ms period (target for the token fetch: 10 ms).

Rollover for async callers (the async twin of ``bench_token_rollover.py``, with its design):
64 tasks of one loop call a protected endpoint through ``HttpClient.aget`` for 20 s, with
OAuth2 client-credentials tokens from a ``TokenManager`` on ``DjangoCacheTokenStorage``
(django-redis, real redis-server) that expire every 4 s (``refresh_ahead`` 2 s), from a
token endpoint that takes 300 ms. Targets: 0 calls slower than 150 ms, 0 non-200
answers. Printed: calls, non-200, calls over 150 ms, latency (min/p50/p99/max; also for the
calls made while the token endpoint was answering a renewal), token fetches (counted by the
server), the worst event-loop tick lag during the run and the full garbage collections (a
pause of the whole loop that no library choice avoids: it tells a GC pause from a token wait).

    python -m benchmarks.bench_async [--rounds 7] [--requests 2000] [--concurrency 64] [--auth static|redis|both]
        [--only fan-out|lag|rollover ...] [--duration 20] [--expires-in 4] [--refresh-ahead 2] [--delay 0.3] [--slow-ms 150]

Sections run in the order fan-out, lag, rollover; ``--only`` (repeatable) picks some of
them. The exit status is 1 when the rollover ran and missed its target.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

from benchmarks.loopback_server import start
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.fan_out import send_in_order
from requestforge_django.http.messages import HttpMethod, HttpRequest, HttpResponse

TOKEN = "benchmark-static-bearer-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


async def _fan_out(send: Callable[[], Awaitable[object]], count: int, concurrency: int) -> None:
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            await send()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _optional(module: str) -> Any:
    """``module`` if it is installed, else ``None`` (its line is left out of the figures).

    niquests is one: it installs urllib3-future in place of urllib3, which would put the sync
    path (requests) on another HTTP core, so it is measured in a throwaway virtualenv only.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _static_client(base_url: str, concurrency: int) -> HttpClient:
    return HttpClient(
        HttpClientConfigBuilder().with_base_url(base_url).with_bearer_token(TOKEN).with_pool_size(maxsize=concurrency).build()
    )


def run_fan_out(rounds: int, count: int, concurrency: int, make_client: Callable[[str, int], HttpClient], label: str) -> float:
    import aiohttp
    import httpx

    niquests = _optional("niquests")
    with start() as base_url:
        url = f"{base_url}/v1/items"
        ours = make_client(base_url, concurrency)
        batch = [HttpRequest(HttpMethod.GET, "/v1/items") for _ in range(count)]
        times: dict[str, list[float]] = {
            "raw aiohttp": [],
            "raw httpx": [],
            **({"raw niquests": []} if niquests else {}),
            "HttpClient async": [],
            "  transport only": [],
            "HttpClient sync": [],
        }
        # The breakdown line: a pre-authenticated request straight into the async transport and
        # the same fan-out, without the lifecycle (hooks, auth, retry decision) or the token.
        authenticated = HttpRequest(HttpMethod.GET, "/v1/items", HEADERS)

        async def measure_async() -> None:
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)) as hx,
                niquests.AsyncSession(pool_connections=1, pool_maxsize=concurrency) if niquests else nullcontext() as nq,
            ):

                async def aiohttp_get() -> None:
                    async with session.get(url, headers=HEADERS) as response:
                        await response.json()

                async def httpx_get() -> None:
                    (await hx.get(url, headers=HEADERS)).json()

                async def niquests_get() -> None:
                    (await nq.get(url, headers=HEADERS)).json()

                async def run_ours() -> None:
                    for result in await ours.arequest_many(batch, max_concurrency=concurrency):
                        result.json()  # type: ignore[union-attr]

                async def run_transport_only() -> None:
                    transport = ours.async_transport

                    async def send(_request: HttpRequest) -> HttpResponse:
                        return await transport.send(authenticated, 0.0)

                    for result in await send_in_order(send, batch, concurrency, False, None):
                        result.json()  # type: ignore[union-attr]

                async def run_aiohttp() -> None:
                    await _fan_out(aiohttp_get, count, concurrency)

                async def run_httpx() -> None:
                    await _fan_out(httpx_get, count, concurrency)

                async def run_niquests() -> None:
                    await _fan_out(niquests_get, count, concurrency)

                async def run_sync() -> None:
                    await asyncio.to_thread(lambda: [r.json() for r in ours.request_many(batch, max_workers=concurrency)])  # type: ignore[union-attr]

                sides: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                    ("raw aiohttp", run_aiohttp),
                    ("raw httpx", run_httpx),
                    *([("raw niquests", run_niquests)] if niquests else []),
                    ("HttpClient async", run_ours),
                    ("  transport only", run_transport_only),
                    ("HttpClient sync", run_sync),
                ]
                for _, side in sides:  # warm pools, caches and tokens
                    await side()
                for index in range(rounds):
                    shift = index % len(sides)
                    for name, side in sides[shift:] + sides[:shift]:
                        started = time.perf_counter()
                        await side()
                        times[name].append(count / (time.perf_counter() - started))
                await ours.aclose()

        asyncio.run(measure_async())
        ours.close()
    base = statistics.median(times["raw aiohttp"])
    print(f"fan-out, {label}: {rounds} rounds x {count} GETs at concurrency {concurrency}, interleaved")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<18} median {median:8.0f} req/s  {median / base:5.2f}x aiohttp   rounds: {' '.join(f'{v:.0f}' for v in values)}")
    ratio = statistics.median(times["HttpClient async"]) / base
    print(f"  ratio HttpClient async / raw aiohttp  {ratio:.2f}x   (target >= 0.90x)")
    return ratio


def run_lag(count: int, concurrency: int) -> float:
    """The longest ticker gap (ms) beyond its 1 ms period while ``count`` calls run."""
    with start() as base_url:
        client = _static_client(base_url, concurrency)

        async def main() -> float:
            async def fan_out() -> None:
                await client.aget("/v1/items")  # the first call opens the session
                await client.arequest_many([HttpRequest(HttpMethod.GET, "/v1/items") for _ in range(count)], max_concurrency=concurrency)

            worst = await _worst_tick_gap(fan_out)
            await client.aclose()
            return worst

        worst = asyncio.run(main())
        client.close()
    print(f"event-loop lag: 1 ms ticker while {count} calls run at concurrency {concurrency}: worst extra delay {worst:.1f} ms")
    return worst


async def _worst_tick_gap(work: Callable[[], Awaitable[object]]) -> float:
    """Run ``work`` with a 1 ms ticker on the loop; the longest gap (ms) beyond the 1 ms period."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append((now - last) * 1000.0 - 1.0)
            last = now

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.005)
    try:
        await work()
    finally:
        stop.set()
        await tick
    return max(gaps)


@contextmanager
def _gc_pauses() -> Iterator[list[tuple[int, float]]]:
    """Record ``(generation, ms)`` of every garbage collection while the block runs."""
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started[0]) * 1000.0))

    gc.callbacks.append(callback)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(callback)


def run_token_lag() -> float:
    """The first call on a cold cache fetches a token from an endpoint that takes 300 ms: does the loop keep ticking?

    Runs on the Redis cache that :func:`_redis` configured (Django's settings are
    configured once per process, so a second Redis server could not be swapped in).
    """
    from benchmarks._support import REDIS_ALIAS, TokenServerProcess
    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
    from requestforge_django.tokens import ClientCredentialsTokenProvider, TokenManager
    from tests.support.workers import CLIENT_ID, CLIENT_SECRET

    # The token endpoint runs in its own process, so its work does not compete for this one's GIL.
    with TokenServerProcess(expires_in=3600, delay=0.3) as token_server, start() as base_url:
        provider = ClientCredentialsTokenProvider(token_server.token_url, CLIENT_ID, CLIENT_SECRET, service_name="bench-async-lag")
        manager = TokenManager(provider, DjangoCacheTokenStorage(REDIS_ALIAS, key_prefix="bench-async-lag"))
        client = HttpClient(HttpClientConfigBuilder().with_base_url(base_url).with_token_auth(manager).build())

        async def main() -> tuple[float, float]:
            started = time.perf_counter()
            worst = await _worst_tick_gap(lambda: client.aget("/v1/items"))
            elapsed = (time.perf_counter() - started) * 1000.0
            await client.aclose()
            return worst, elapsed

        worst, elapsed = asyncio.run(main())
        client.close()
        fetches = token_server.stats().fetches
    print(
        f"event-loop lag during a token fetch (endpoint delay 300 ms, cold cache): worst extra delay {worst:.1f} ms "
        f"(target <= 10 ms); call took {elapsed:.0f} ms; token fetches: {fetches}"
    )
    return worst


def run_rollover(duration: float, tasks: int, expires_in: float, refresh_ahead: float, delay: float, slow_ms: float) -> bool:
    """``tasks`` tasks call a protected endpoint for ``duration`` s while tokens expire; whether the target was met.

    The async twin of ``bench_token_rollover.py``, on the Redis :func:`_redis` configured. As
    there, the token is warmed before the clock starts (as ``requestforge_warm`` or the Celery
    task would), so the run measures rollovers, not the cold start, and the token endpoint (with
    the protected API) runs in its own process so it does not compete with the loop for the GIL.
    """
    from benchmarks._support import REDIS_ALIAS, TokenServerProcess, summary
    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
    from requestforge_django.tokens import ClientCredentialsTokenProvider, TokenManager
    from tests.support.token_server import PROTECTED_PATH
    from tests.support.workers import CLIENT_ID, CLIENT_SECRET

    with TokenServerProcess(delay=delay, expires_in=expires_in) as server:
        # 4 s tokens are below the library's default minimum lifetime (5 s, TOKEN_MIN_LIFETIME in
        # the Django settings): lowered on purpose, so a rollover happens every few seconds of the run.
        provider = ClientCredentialsTokenProvider(
            server.token_url, CLIENT_ID, CLIENT_SECRET, timeout=10.0, min_lifetime=min(expires_in, 1.0), service_name="bench-rollover"
        )
        manager = TokenManager(
            provider,
            DjangoCacheTokenStorage(REDIS_ALIAS, key_prefix="bench-async-rollover"),
            refresh_ahead=refresh_ahead,
            cache_key=f"rollover-{uuid.uuid4().hex}",
        )
        client = HttpClient(
            HttpClientConfigBuilder()
            .with_base_url(server.url)
            .with_timeout(5.0)
            .with_token_auth(manager)
            .with_pool_size(maxsize=tasks)
            .build()
        )
        calls: list[tuple[float, float, int]] = []  # (wall-clock start, ms, status): the wall clock is the token server's too
        errors: list[str] = []

        async def call_until(stop_at: float) -> None:
            while time.perf_counter() < stop_at:
                began, wall = time.perf_counter(), time.time()
                try:
                    status = (await client.aget(PROTECTED_PATH)).status_code
                except Exception as exc:  # counted, not raised
                    status = 0
                    errors.append(type(exc).__name__)
                calls.append((wall, (time.perf_counter() - began) * 1000.0, status))

        async def main() -> float:
            await manager.aget_token()  # warm: the run measures rollovers, not the cold start
            await asyncio.gather(*(client.aget(PROTECTED_PATH) for _ in range(tasks)))  # open the pool's connections
            await asyncio.to_thread(server.reset_stats)

            async def load() -> None:
                stop_at = time.perf_counter() + duration
                await asyncio.gather(*(call_until(stop_at) for _ in range(tasks)))

            with _gc_pauses() as pauses:
                worst = await _worst_tick_gap(load)
            gc_pauses.extend(pauses)
            await client.aclose()
            return worst

        gc_pauses: list[tuple[int, float]] = []
        worst_tick = asyncio.run(main())
        client.close()
        stats = server.stats()

    latencies = [ms for _, ms, _ in calls]
    non_200 = sum(1 for _, _, code in calls if code != 200)
    slow = sorted(ms for ms in latencies if ms > slow_ms)
    # Calls that started while the token endpoint was answering a renewal (by the server's own clock).
    renewing = [ms for wall, ms, _ in calls if any(arrived <= wall <= answered for arrived, answered in stats.fetch_times)]
    full_gcs = [ms for generation, ms in gc_pauses if generation == 2]
    print(
        f"rollover for async callers: {tasks} tasks for {duration:.0f} s, token expires_in {expires_in:g} s, "
        f"refresh_ahead {refresh_ahead:g} s, token endpoint delay {delay * 1000:.0f} ms, tokens in django-redis"
    )
    print(f"  calls:                  {len(latencies)}")
    print(f"  non-200 answers:        {non_200}{f' (exceptions: {sorted(set(errors))})' if errors else ''}")
    print(f"  calls > {slow_ms:.0f} ms:         {len(slow)}{f' (slowest: {[round(ms, 1) for ms in slow[-5:]]})' if slow else ''}")
    if latencies:
        print(f"  latency:                {summary(latencies)}")
    if renewing:
        print(f"  during token fetches:   {len(renewing)} calls, {summary(renewing)}")
    print(f"  token fetches:          {stats.token_requests}")
    print(f"  401s seen by the API:   {stats.protected_unauthorized}")
    print(f"  event-loop lag:         worst extra delay of a 1 ms ticker {worst_tick:.1f} ms")
    print(
        f"  garbage collection:     {len(full_gcs)} full collections"
        f"{f', longest {max(full_gcs):.1f} ms' if full_gcs else ''} (a pause of the loop, whatever the library does)"
    )
    met = non_200 == 0 and not slow
    print(f"  target (0 calls > {slow_ms:.0f} ms, 0 non-200): {'MET' if met else 'MISSED'}")
    return met


def _redis_client_factory(stack: ExitStack) -> tuple[Callable[[str, int], HttpClient], Callable[[], None]]:
    """A client factory with client-credentials tokens in django-redis (on the Redis :func:`_redis` started)."""
    from benchmarks._support import REDIS_ALIAS, TokenServer
    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
    from requestforge_django.tokens import ClientCredentialsTokenProvider, TokenManager
    from tests.support.token_server import TOKEN_PATH

    _redis(stack)
    token_server = stack.enter_context(TokenServer(expires_in=3600))
    provider = ClientCredentialsTokenProvider(
        f"{token_server.url}{TOKEN_PATH}", token_server.client_id, token_server.client_secret, service_name="bench-async"
    )
    manager = TokenManager(provider, DjangoCacheTokenStorage(REDIS_ALIAS, key_prefix="bench-async"))

    def make(base_url: str, concurrency: int) -> HttpClient:
        return HttpClient(
            HttpClientConfigBuilder().with_base_url(base_url).with_token_auth(manager).with_pool_size(maxsize=concurrency).build()
        )

    def done() -> None:
        print(f"  token fetches during the run: {token_server.stats().fetches}")

    return make, done


_REDIS_URL: list[str] = []


def _redis(stack: ExitStack) -> str:
    """Start one redis-server for the whole run (stopped with ``stack``) and configure Django's cache on it.

    Django's settings are configured once per process, so every section that needs Redis shares this one.
    """
    from benchmarks._support import RedisServer, configure_django

    if not _REDIS_URL:
        server = stack.enter_context(RedisServer())
        configure_django(server.url)
        _REDIS_URL.append(server.url)
    return _REDIS_URL[0]


SECTIONS = ("fan-out", "lag", "rollover")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64, help="fan-out concurrency, and the rollover's number of tasks")
    parser.add_argument("--auth", choices=["static", "redis", "both"], default="static", help="fan-out and lag sections")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable; default: all)")
    rollover = parser.add_argument_group("rollover")
    rollover.add_argument("--duration", type=float, default=20.0, help="seconds of load (default 20)")
    rollover.add_argument("--expires-in", type=float, default=4.0)
    rollover.add_argument("--refresh-ahead", type=float, default=2.0)
    rollover.add_argument("--delay", type=float, default=0.3, help="token endpoint delay in seconds")
    rollover.add_argument("--slow-ms", type=float, default=150.0, help="a call slower than this counts as slow")
    args = parser.parse_args(argv)
    sections = set(args.only or SECTIONS)
    met = True
    with ExitStack() as stack:
        if "fan-out" in sections and args.auth in ("static", "both"):
            run_fan_out(args.rounds, args.requests, args.concurrency, _static_client, "static bearer token")
        if args.auth in ("redis", "both") and sections & {"fan-out", "lag"}:
            if "fan-out" in sections:
                make, done = _redis_client_factory(stack)
                run_fan_out(args.rounds, args.requests, args.concurrency, make, "client-credentials tokens in django-redis")
                done()
            if "lag" in sections:
                _redis(stack)
                run_token_lag()
        if "lag" in sections:
            run_lag(args.requests, args.concurrency)
        if "rollover" in sections:
            _redis(stack)
            met = run_rollover(args.duration, args.concurrency, args.expires_in, args.refresh_ahead, args.delay, args.slow_ms)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
