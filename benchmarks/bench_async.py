"""The async transport, chosen by measuring: fan-out throughput and event-loop lag.

Fan-out: 2000 authenticated GETs at concurrency 64 on a loopback keep-alive server, sent by

* raw ``aiohttp`` (one ``ClientSession``, a static bearer header),
* raw ``httpx.AsyncClient`` (same),
* this project's ``HttpClient.arequest_many`` (static bearer token; ``--auth redis`` adds
  OAuth2 client-credentials tokens from a ``TokenManager`` on ``DjangoCacheTokenStorage``
  over a real redis-server started here),
* this project's sync ``request_many`` (64 worker threads),

in interleaved rounds (the order rotates each round). Prints each side's median requests/s
and the ratio to raw aiohttp (target: ours >= 0.90x).

Event-loop lag: a 1 ms ticker runs on the loop while calls are in flight (and, with
``--auth redis``, while the first call fetches a token from an endpoint that takes 300 ms);
prints the longest gap between ticks beyond the 1 ms period (target for the token fetch: 10 ms).

    python -m benchmarks.bench_async [--rounds 7] [--requests 2000] [--concurrency 64] [--auth static|redis|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from benchmarks.loopback_server import start
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.messages import HttpMethod, HttpRequest

TOKEN = "benchmark-static-bearer-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


async def _fan_out(send: Callable[[], Awaitable[object]], count: int, concurrency: int) -> None:
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            await send()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _static_client(base_url: str, concurrency: int) -> HttpClient:
    return HttpClient(
        HttpClientConfigBuilder().with_base_url(base_url).with_bearer_token(TOKEN).with_pool_size(maxsize=concurrency).build()
    )


def run_fan_out(rounds: int, count: int, concurrency: int, make_client: Callable[[str, int], HttpClient], label: str) -> float:
    import aiohttp
    import httpx

    with start() as base_url:
        url = f"{base_url}/v1/items"
        ours = make_client(base_url, concurrency)
        batch = [HttpRequest(HttpMethod.GET, "/v1/items") for _ in range(count)]
        times: dict[str, list[float]] = {"raw aiohttp": [], "raw httpx": [], "HttpClient async": [], "HttpClient sync": []}

        async def measure_async() -> None:
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)) as hx,
            ):

                async def aiohttp_get() -> None:
                    async with session.get(url, headers=HEADERS) as response:
                        await response.json()

                async def httpx_get() -> None:
                    (await hx.get(url, headers=HEADERS)).json()

                async def run_ours() -> None:
                    for result in await ours.arequest_many(batch, max_concurrency=concurrency):
                        result.json()  # type: ignore[union-attr]

                async def run_aiohttp() -> None:
                    await _fan_out(aiohttp_get, count, concurrency)

                async def run_httpx() -> None:
                    await _fan_out(httpx_get, count, concurrency)

                async def run_sync() -> None:
                    await asyncio.to_thread(lambda: [r.json() for r in ours.request_many(batch, max_workers=concurrency)])  # type: ignore[union-attr]

                sides: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                    ("raw aiohttp", run_aiohttp),
                    ("raw httpx", run_httpx),
                    ("HttpClient async", run_ours),
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


def run_token_lag() -> float:
    """The first call on a cold cache fetches a token from an endpoint that takes 300 ms: does the loop keep ticking?

    Runs on the Redis cache that :func:`_redis_client_factory` configured (Django's settings are
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


def _redis_client_factory() -> tuple[Callable[[str, int], HttpClient], Callable[[], None]]:
    from contextlib import ExitStack

    from benchmarks._support import REDIS_ALIAS, RedisServer, TokenServer, configure_django
    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
    from requestforge_django.tokens import ClientCredentialsTokenProvider, TokenManager
    from tests.support.token_server import TOKEN_PATH

    stack = ExitStack()
    redis_server = stack.enter_context(RedisServer())
    token_server = stack.enter_context(TokenServer(expires_in=3600))
    configure_django(redis_server.url)
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
        stack.close()

    return make, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--auth", choices=["static", "redis", "both"], default="static")
    args = parser.parse_args()
    if args.auth in ("static", "both"):
        run_fan_out(args.rounds, args.requests, args.concurrency, _static_client, "static bearer token")
    if args.auth in ("redis", "both"):
        make, done = _redis_client_factory()
        try:
            run_fan_out(args.rounds, args.requests, args.concurrency, make, "client-credentials tokens in django-redis")
            run_token_lag()
        finally:
            done()
    run_lag(args.requests, args.concurrency)


if __name__ == "__main__":
    main()
