"""The registry at 100, 1000 and 5000 database-defined clients: cold lookup, wait after an unrelated change, warm-up.

Every client is a ``ClientDefinition`` row (``client_credentials``) with its own
``Credential`` (a SaaS with a credential per tenant), in a SQLite file database; tokens,
the definitions generation and the credential fences live in a real ``redis-server``;
the token endpoint is the stub of ``tests/support/token_server`` on 127.0.0.1. Rows are
added in bulk between sizes, so one process measures every size. Printed per size:

* **cold first lookup**: ``get_client("t7")`` of a registry that has built nothing
  (what a freshly started process pays on its first call); best and median of 5;
* **wait after an unrelated change**: a registry that serves ``t7`` sees another
  tenant's credential saved (through the ORM, so the receivers run as in the admin);
  its first ``get_client("t7")`` after ``GENERATION_CHECK_INTERVAL`` is timed; best and
  median of 5 changes;
* **warm-up**: ``warming.warm()`` of N tokens on a cold token cache, from a registry
  that has built nothing (the Celery beat task), in seconds and tokens per second.
  Above ``--warm-limit`` tokens (default 1000) a subset of that many is warmed and the
  whole is extrapolated: a warm-up is one token request and a few cache writes per
  token, so its time grows linearly with the number of tokens (run with
  ``--warm-limit 0`` to warm them all).

Target (issue 15): under 20 ms for the first two at 5000 clients.

    python -m benchmarks.bench_registry [--sizes 100,1000,5000] [--warm-limit 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._support import REDIS_ALIAS, RedisServer, TokenServer, flush_redis
from tests.support.django_caches import redis_cache_config

ENCRYPTION_KEY = "9lrjcDK1nqbXgNjm3wz7PZ3tNGgtsM2Yq6_tV9m1nPA="  # benchmark-only, not a secret
PROBE = "t7"


def configure(database: Path, redis_url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-only-not-secret",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "requestforge_django"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, REDIS_ALIAS: redis_cache_config(redis_url)},
        REQUESTFORGE={"CACHE": REDIS_ALIAS, "KEY_PREFIX": "bench", "ENCRYPTION_KEYS": [ENCRYPTION_KEY]},
        LOGGING_CONFIG=None,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def add_clients(start: int, stop: int, server: TokenServer) -> None:
    """Tenants ``t<start>`` .. ``t<stop - 1>``: a credential and a client definition each, created in bulk."""
    from django.db import transaction

    from requestforge_django.models import ClientDefinition, Credential

    origin = server.url
    with transaction.atomic():
        credentials = Credential.objects.bulk_create(
            Credential(
                name=f"cred-t{i}",
                client_id=server.client_id,
                client_secret=server.client_secret,
                allowed_origins=[origin],
            )
            for i in range(start, stop)
        )
        ClientDefinition.objects.bulk_create(
            ClientDefinition(
                name=f"t{i}",
                base_url=origin,
                auth_type="client_credentials",
                token_url=server.token_url,
                credential=credential,
            )
            for i, credential in zip(range(start, stop), credentials, strict=True)
        )


def cold_lookup_ms(repeats: int = 5) -> list[float]:
    from requestforge_django.registry import Registry

    samples = []
    for _ in range(repeats):
        fresh = Registry()
        started = time.perf_counter()
        fresh.get_client(PROBE)
        samples.append((time.perf_counter() - started) * 1000)
        reset(fresh)
    return samples


def wait_after_change_ms(size: int, server: TokenServer, repeats: int = 5) -> list[float]:
    """A registry serving ``t7`` ("another process"); another tenant's credential is saved; its next call is timed."""
    from requestforge_django import registry as registry_module
    from requestforge_django.models import Credential
    from requestforge_django.registry import Registry

    serving = Registry()
    serving.get_client(PROBE)
    samples = []
    for attempt in range(repeats):
        other = Credential.objects.get(name=f"cred-t{(size // 2 + attempt) % size}")
        other.client_secret = server.client_secret  # a save raises its version either way
        other.save()  # the receivers publish the change on commit (autocommit: now)
        time.sleep(registry_module.GENERATION_CHECK_INTERVAL)  # the next lookup reads the generation
        started = time.perf_counter()
        serving.get_client(PROBE)
        samples.append((time.perf_counter() - started) * 1000)
    reset(serving)
    return samples


def warm_up(size: int, limit: int) -> tuple[int, float]:
    """Seconds to warm ``min(size, limit)`` tokens on a cold token cache from a registry that built nothing."""
    from django.core.cache import caches

    from requestforge_django.registry import Registry
    from requestforge_django.warming import warm

    count = size if limit <= 0 else min(size, limit)
    names = [f"t{i}" for i in range(count)]
    caches[REDIS_ALIAS].delete_many([f"bench:client:{name}" for name in names])
    fresh = Registry()
    started = time.perf_counter()
    results = warm(names if count < size else None, using=fresh)
    seconds = time.perf_counter() - started
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"  warm-up: {len(failed)} of {len(results)} tokens failed, e.g. {failed[0].label}: {failed[0].error}")
    reset(fresh)
    return count, seconds


def reset(registry: Any) -> None:
    registry.reset()
    from django.db import connections

    connections.close_all()


def figures(samples: list[float]) -> str:
    return f"best {min(samples):7.1f} ms, median {statistics.median(samples):7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="comma-separated numbers of database-defined clients")
    parser.add_argument("--warm-limit", type=int, default=1000, help="warm at most this many tokens per size (0: all)")
    args = parser.parse_args(argv)
    sizes = sorted({int(size) for size in args.sizes.split(",")})

    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis_server, TokenServer(expires_in=3600) as server:
        flush_redis(redis_server.url)
        configure(Path(tmp) / "bench.sqlite3", redis_server.url)
        print(f"registry: SQLite file database, redis-server on {redis_server.url}, stub token endpoint on {server.url}")
        made = 0
        results: dict[int, dict[str, Any]] = {}
        for size in sizes:
            add_clients(made, size, server)
            made = size
            cold = cold_lookup_ms()
            wait = wait_after_change_ms(size, server)
            count, seconds = warm_up(size, args.warm_limit)
            results[size] = {"cold": cold, "wait": wait}
            print(f"{size} database-defined clients")
            print(f"  cold first get_client({PROBE!r}):           {figures(cold)}")
            print(f"  get_client({PROBE!r}) after another tenant's credential changed: {figures(wait)}")
            rate = count / seconds if seconds else float("inf")
            line = f"  warm-up of {count} tokens: {seconds:.2f} s ({rate:.0f} tokens/s)"
            if count < size:
                line += f"; all {size} extrapolated: {size / rate:.1f} s"
            print(line)
        largest = max(sizes)
        met = statistics.median(results[largest]["cold"]) < 20 and statistics.median(results[largest]["wait"]) < 20
        print(f"target at {largest} clients (median cold lookup and wait < 20 ms): {'MET' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
