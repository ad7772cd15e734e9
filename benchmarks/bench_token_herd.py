"""Thundering herd: 8 processes x 8 threads ask for a token at once on a cold cache.

Every thread of every process calls ``TokenManager.get_token()`` at the same moment
(released by one event), the cache (Redis, through ``DjangoCacheTokenStorage``) is
empty and the token endpoint takes 200 ms. Target: exactly 1 token fetch. Printed:
the fetch count (counted by the token server, so it is authoritative), how many
threads got the same token, errors, and time-to-first-token statistics.

For contrast the same herd runs on a per-process ``InMemoryTokenStorage`` (what
you get without a shared cache): one fetch per process.

    python benchmarks/bench_token_herd.py [--processes 8] [--threads 8] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._support import RedisServer, TokenServer, flush_redis, summary
from tests.support.workers import herd_process


def run_herd(redis_url: str, server: TokenServer, *, processes: int, threads: int, memory: bool) -> dict[str, Any]:
    """One herd; returns fetch count, outcomes and timings."""
    flush_redis(redis_url)
    server.reset_stats()
    spec: dict[str, Any] = {"kind": "manager", "token_url": server.token_url, "cache_key": f"herd-{uuid.uuid4().hex}"}
    if memory:
        spec["alias"] = "default"  # LocMem: private to each process, like InMemoryTokenStorage
    ctx = multiprocessing.get_context("spawn")
    ready, results, go, go_at = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=herd_process, args=(redis_url, spec, threads, ready, go, go_at, results)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)  # every process imported Django and built its manager
    started = time.perf_counter()
    go_at.value = time.time()
    go.set()
    outcomes: list[dict[str, Any]] = []
    for _ in procs:
        outcomes.extend(results.get(timeout=120))
    wall = time.perf_counter() - started
    for proc in procs:
        proc.join(timeout=30)
    stats = server.stats()
    return {
        "fetches": stats.token_requests,
        "outcomes": outcomes,
        "wall": wall,
        "max_concurrent": stats.max_concurrent_fetches,
        "fetch_ms": [((a - go_at.value) * 1000, (b - go_at.value) * 1000) for a, b in stats.fetch_times],
    }


def report(label: str, result: dict[str, Any]) -> None:
    outcomes = result["outcomes"]
    ok = [o for o in outcomes if "fingerprint" in o]
    errors = [o["error"] for o in outcomes if "error" in o]
    since_go_ms = [o["since_go"] * 1000 for o in ok]
    own_ms = [o["seconds"] * 1000 for o in ok]
    print(f"{label}")
    print(f"  token fetches:          {result['fetches']}  (concurrent at the endpoint: max {result['max_concurrent']})")
    print(f"  threads with a token:   {len(ok)}/{len(outcomes)}, distinct tokens: {len({o['fingerprint'] for o in ok})}")
    print(f"  errors:                 {len(errors)} {sorted(set(errors)) if errors else ''}")
    print(f"  time to token, from go: {summary(since_go_ms)}")
    print(f"  get_token() call time:  {summary(own_ms)}")
    first = min(result["fetch_ms"], default=None)
    if first is not None:
        print(f"  first fetch, from go:   arrived {first[0]:.0f} ms, answered {first[1]:.0f} ms")
    print(f"  herd wall time:         {result['wall'] * 1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.2, help="token endpoint delay in seconds")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the per-process in-memory comparison")
    args = parser.parse_args(argv)

    with RedisServer() as redis_server, TokenServer(delay=args.delay, expires_in=3600) as server:
        print(
            f"herd: {args.processes} processes x {args.threads} threads, cold cache, "
            f"token endpoint delay {args.delay * 1000:.0f} ms, redis-server on {redis_server.url}"
        )
        shared = run_herd(redis_server.url, server, processes=args.processes, threads=args.threads, memory=False)
        report("DjangoCacheTokenStorage on Redis (django-redis):", shared)
        if not args.skip_baseline:
            baseline = run_herd(redis_server.url, server, processes=args.processes, threads=args.threads, memory=True)
            report("for contrast, a per-process cache (LocMem, like InMemoryTokenStorage):", baseline)
    target_met = shared["fetches"] == 1 and all("fingerprint" in o for o in shared["outcomes"])
    print(f"target (exactly 1 fetch, every thread served): {'MET' if target_met else 'MISSED'}")
    return 0 if target_met else 1


if __name__ == "__main__":
    sys.exit(main())
