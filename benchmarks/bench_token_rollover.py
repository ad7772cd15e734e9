"""Token rollover under load: do API calls ever wait for the token endpoint?

4 threads call a protected endpoint through ``HttpClient`` + ``TokenAuthHook`` +
``TokenManager`` on ``DjangoCacheTokenStorage`` (Redis) for 16 s while the token
expires every 4 s (``refresh_ahead`` 2 s) and the token endpoint takes 300 ms.
Targets: 0 calls slower than 150 ms and 0 non-200 answers. Printed: calls, non-200,
calls over 150 ms, p50/p99/max latency, token fetches (counted by the server).

The token is warmed before the clock starts (as ``requestforge_warm`` or the Celery
task would), so the run measures rollovers, not the cold start. The servers run in
their own process so they do not compete with the measuring threads for the GIL.

    python benchmarks/bench_token_rollover.py [duration_seconds] [--threads 4]
        [--expires-in 4] [--refresh-ahead 2] [--delay 0.3] [--slow-ms 150]
"""

from __future__ import annotations

import argparse
import faulthandler
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._support import REDIS_ALIAS, RedisServer, TokenServerProcess, configure_django, flush_redis, percentile
from tests.support.workers import CLIENT_ID, CLIENT_SECRET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("duration", nargs="?", type=float, default=16.0, help="seconds of load (default 16)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--expires-in", type=float, default=4.0)
    parser.add_argument("--refresh-ahead", type=float, default=2.0)
    parser.add_argument("--delay", type=float, default=0.3, help="token endpoint delay in seconds")
    parser.add_argument("--slow-ms", type=float, default=150.0, help="a call slower than this counts as slow")
    args = parser.parse_args(argv)

    with RedisServer() as redis_server, TokenServerProcess(delay=args.delay, expires_in=args.expires_in) as server:
        configure_django(redis_server.url)
        flush_redis(redis_server.url)

        from requestforge_django.http.client import HttpClient
        from requestforge_django.http.config import HttpClientConfigBuilder
        from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
        from requestforge_django.tokens.auth_hook import TokenAuthHook
        from requestforge_django.tokens.manager import TokenManager
        from requestforge_django.tokens.providers import ClientCredentialsTokenProvider

        # 4 s tokens are below the library's default minimum lifetime (5 s): lowered on purpose,
        # so a rollover happens every few seconds of the run.
        provider = ClientCredentialsTokenProvider(
            server.token_url, CLIENT_ID, CLIENT_SECRET, timeout=10.0, min_lifetime=min(args.expires_in, 1.0)
        )
        manager = TokenManager(
            provider,
            DjangoCacheTokenStorage(REDIS_ALIAS),
            refresh_ahead=args.refresh_ahead,
            cache_key=f"rollover-{uuid.uuid4().hex}",
        )
        config = HttpClientConfigBuilder().with_base_url(server.url).with_timeout(5.0).with_auth_hook(TokenAuthHook(manager)).build()
        client = HttpClient(config)

        manager.get_token()  # warm: the run measures rollovers, not the cold start
        for _ in range(20):  # warm every thread-independent path (connections, imports)
            client.get("/api/protected")
        server.reset_stats()

        latencies: list[float] = []
        statuses: list[int] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + args.duration
        start = threading.Barrier(args.threads)

        def caller() -> None:
            start.wait()
            mine: list[tuple[float, int]] = []
            failures: list[str] = []
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                try:
                    status = client.get("/api/protected").status_code
                except Exception as exc:  # counted, not raised
                    status = 0
                    failures.append(type(exc).__name__)
                mine.append(((time.perf_counter() - began) * 1000, status))
            with lock:
                latencies.extend(ms for ms, _ in mine)
                statuses.extend(code for _, code in mine)
                errors.extend(failures)

        threads = [threading.Thread(target=caller, name=f"caller-{i}", daemon=True) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        give_up = time.monotonic() + args.duration + 60
        for thread in threads:
            thread.join(timeout=max(0.0, give_up - time.monotonic()))
        hung = [thread.name for thread in threads if thread.is_alive()]
        if hung:  # a stuck call is a finding, not a reason for the benchmark to hang forever
            faulthandler.dump_traceback(all_threads=True)
            print(f"HUNG: {hung} still inside a call {args.duration + 60:.0f} s after the start", file=sys.stderr)
            return 2
        client.close()
        stats = server.stats()

    non_200 = sum(1 for code in statuses if code != 200)
    slow = [ms for ms in latencies if ms > args.slow_ms]
    print(
        f"rollover: {args.threads} threads for {args.duration:.0f} s, token expires_in {args.expires_in:g} s, "
        f"refresh_ahead {args.refresh_ahead:g} s, token endpoint delay {args.delay * 1000:.0f} ms"
    )
    print(f"  calls:                  {len(latencies)}")
    print(f"  non-200 answers:        {non_200}{f' (exceptions: {sorted(set(errors))})' if errors else ''}")
    print(f"  calls > {args.slow_ms:.0f} ms:         {len(slow)}{f' (slowest: {sorted(slow)[-5:]})' if slow else ''}")
    if latencies:
        print(
            f"  latency:                p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms"
        )
    print(f"  token fetches:          {stats.token_requests}")
    print(f"  401s seen by the API:   {stats.protected_unauthorized}")
    met = non_200 == 0 and not slow
    print(f"target (0 calls > {args.slow_ms:.0f} ms, 0 non-200): {'MET' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
