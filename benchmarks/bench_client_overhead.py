"""HttpClient vs. a default ``requests.Session`` on a loopback keep-alive server.

Both sides send the same GET with a bearer token; rounds interleave (and alternate
which side goes first) so drift on the machine hits both equally. Prints the median
microseconds per request of each side and their ratio (target <= 0.70).

Two set-ups, both run by default (``--auth`` picks one):

* ``static``: HttpClient with a static bearer token;
* ``redis``: HttpClient with OAuth2 client-credentials tokens from a
  ``TokenManager`` on ``DjangoCacheTokenStorage`` over a real redis-server (started
  here), so every call reads the shared token the way a web process does.

    python -m benchmarks.bench_client_overhead [--rounds 9] [--requests 400] [--auth static|redis|both]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import requests

from benchmarks.loopback_server import start
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder

TOKEN = "benchmark-static-bearer-token-0123456789"


def time_per_request(send: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        send()
    return (time.perf_counter() - started) / count * 1e6


def run(rounds: int, count: int, make_client: Callable[[str], HttpClient], label: str) -> float:
    with start() as base_url:
        url = f"{base_url}/v1/items"
        session = requests.Session()
        client = make_client(base_url)
        headers = {"Authorization": f"Bearer {TOKEN}"}

        def raw() -> None:
            response = session.get(url, headers=headers)
            response.json()

        def ours() -> None:
            client.get("/v1/items").json()

        for _ in range(50):  # warm both pools and caches
            raw()
            ours()
        raw_times: list[float] = []
        our_times: list[float] = []
        for index in range(rounds):
            pair = [(raw, raw_times), (ours, our_times)]
            for send, bucket in pair if index % 2 == 0 else reversed(pair):
                bucket.append(time_per_request(send, count))
        client.close()
        session.close()
    raw_median, our_median = statistics.median(raw_times), statistics.median(our_times)
    ratio = our_median / raw_median
    print(f"{label}: {rounds} rounds x {count} requests, interleaved")
    print(f"  requests.Session (raw)        median {raw_median:8.1f} us/request   rounds: {' '.join(f'{t:.0f}' for t in raw_times)}")
    print(f"  HttpClient                    median {our_median:8.1f} us/request   rounds: {' '.join(f'{t:.0f}' for t in our_times)}")
    print(f"  ratio HttpClient / raw        {ratio:.2f}x   (target <= 0.70x)")
    return ratio


def static_bearer_client(base_url: str) -> HttpClient:
    return HttpClient(HttpClientConfigBuilder().with_base_url(base_url).with_bearer_token(TOKEN).build())


def run_with_redis_tokens(rounds: int, count: int) -> float:
    from benchmarks._support import REDIS_ALIAS, RedisServer, TokenServer, configure_django
    from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
    from requestforge_django.tokens import ClientCredentialsTokenProvider, TokenManager
    from tests.support.token_server import TOKEN_PATH

    with RedisServer() as redis_server, TokenServer(expires_in=3600) as token_server:
        configure_django(redis_server.url)
        provider = ClientCredentialsTokenProvider(
            f"{token_server.url}{TOKEN_PATH}", token_server.client_id, token_server.client_secret, service_name="bench"
        )
        manager = TokenManager(provider, DjangoCacheTokenStorage(REDIS_ALIAS, key_prefix="bench"))

        def make_client(base_url: str) -> HttpClient:
            return HttpClient(HttpClientConfigBuilder().with_base_url(base_url).with_token_auth(manager).build())

        ratio = run(rounds, count, make_client, "client-credentials token in DjangoCacheTokenStorage on Redis")
        print(f"  token fetches during the run: {token_server.stats().fetches}")
        return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--auth", choices=["static", "redis", "both"], default="both")
    args = parser.parse_args()
    rounds, count = max(args.rounds, 7), max(args.requests, 300)
    if args.auth in ("static", "both"):
        run(rounds, count, static_bearer_client, "static bearer token")
    if args.auth in ("redis", "both"):
        run_with_redis_tokens(rounds, count)


if __name__ == "__main__":
    main()
