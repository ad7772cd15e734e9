"""Parallel requests: ``HttpClient.request_many`` vs. a thread pool over raw ``requests``, and rate accuracy.

(a) Throughput. 1000 GETs at concurrency 16 to the keep-alive loopback server (a
    thread per connection, in its own process), side by side in one process:

    * ``HttpClient.request_many(requests, max_workers=16)``;
    * the fair baseline: one long-lived ``ThreadPoolExecutor(16)`` whose threads each
      keep their own ``requests.Session`` (warm connections, like the client's workers),
      driven by ``pool.map``.

    Both parse every JSON body. Rounds interleave and alternate which side goes first;
    prints the median requests/second of each and their ratio (target >= 1.3x).

(b) Rate. ``RateLimiter(rate=50, burst=1)`` on the client, ``request_many`` with 8
    workers for 10 s; prints the observed rate of completed responses against the
    configured one (target: within 5 %).

    python -m benchmarks.bench_parallel [--quick] [--rounds 7] [--requests 1000] [--seconds 10]
    python benchmarks/bench_parallel.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))
# ... for the loopback server's child process too (``python -m benchmarks.loopback_server``), from any directory.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

import requests  # noqa: E402

from benchmarks.loopback_server import start  # noqa: E402
from requestforge_django.http.client import HttpClient, request_results  # noqa: E402
from requestforge_django.http.config import HttpClientConfigBuilder  # noqa: E402
from requestforge_django.http.hooks import ResponseHookInterface  # noqa: E402
from requestforge_django.http.messages import HttpRequest  # noqa: E402
from requestforge_django.http.rate_limit import RateLimiter  # noqa: E402

CONCURRENCY = 16
PATH = "/v1/items"


def throughput(send_batch: Callable[[], int]) -> float:
    started = time.perf_counter()
    count = send_batch()
    return count / (time.perf_counter() - started)


def run_throughput(rounds: int, count: int) -> float:
    with start() as base_url:
        url = f"{base_url}{PATH}"
        local = threading.local()

        def raw_fetch(_index: int) -> object:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            return session.get(url).json()

        pool = ThreadPoolExecutor(max_workers=CONCURRENCY)
        client = HttpClient(HttpClientConfigBuilder().with_base_url(base_url).build())
        batch = [HttpRequest("GET", PATH)] * count

        def raw() -> int:
            return len(list(pool.map(raw_fetch, range(count))))

        def ours() -> int:
            return len([response.json() for response in request_results(client.request_many(batch, max_workers=CONCURRENCY))])

        raw(), ours()  # warm: threads, sessions, connections, caches
        raw_rates: list[float] = []
        our_rates: list[float] = []
        for index in range(rounds):
            pair = [(raw, raw_rates), (ours, our_rates)]
            for send, bucket in pair if index % 2 == 0 else reversed(pair):
                bucket.append(throughput(send))
        client.close()
        pool.shutdown()
    raw_median, our_median = statistics.median(raw_rates), statistics.median(our_rates)
    ratio = our_median / raw_median
    print(f"(a) throughput: {rounds} rounds x {count} requests at concurrency {CONCURRENCY}, interleaved")
    print(f"  ThreadPoolExecutor + requests.Session   median {raw_median:8.0f} req/s   rounds: {' '.join(f'{r:.0f}' for r in raw_rates)}")
    print(f"  HttpClient.request_many                 median {our_median:8.0f} req/s   rounds: {' '.join(f'{r:.0f}' for r in our_rates)}")
    print(f"  ratio request_many / raw                {ratio:.2f}x   (target >= 1.30x)")
    return ratio


class Completions(ResponseHookInterface):
    """Records when each response was handed back (what the partner's rate limit sees, a round trip later)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def after_response(self, response, context):
        now = time.perf_counter()
        with self._lock:
            self.times.append(now)
        return response


def run_rate(seconds: float, rate: float = 50.0, burst: int = 1, workers: int = 8) -> float:
    with start() as base_url:
        limiter = RateLimiter(rate=rate, burst=burst, name="bench")
        completions = Completions()
        client = HttpClient(
            HttpClientConfigBuilder().with_base_url(base_url).with_rate_limiter(limiter).with_response_hook(completions).build()
        )
        count = int(rate * seconds)
        started = time.perf_counter()
        results = client.request_many([HttpRequest("GET", PATH)] * count, max_workers=workers)
        elapsed = time.perf_counter() - started
        client.close()
    request_results(results)
    times = sorted(completions.times)
    # Between the first and the last completion, count - 1 permit intervals went by.
    observed = (len(times) - 1) / (times[-1] - times[0])
    deviation = (observed - rate) / rate * 100
    print(f"(b) rate: RateLimiter(rate={rate:g}, burst={burst}), request_many(max_workers={workers}), {count} requests")
    print(f"  wall time {elapsed:.2f} s (ideal {(count - burst) / rate:.2f} s)")
    print(f"  observed {observed:.2f} req/s vs configured {rate:.2f} req/s: deviation {deviation:+.2f} %   (target within 5 %)")
    return deviation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 300 requests and a 3 s rate run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.quick:
        rounds, count, seconds = 3, 300, 3.0
    else:
        rounds, count, seconds = max(args.rounds, 3), max(args.requests, 100), max(args.seconds, 1.0)
    run_throughput(rounds, count)
    run_rate(seconds)


if __name__ == "__main__":
    main()
