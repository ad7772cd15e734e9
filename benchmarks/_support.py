"""Shared plumbing of the token benchmarks: real redis-server, real token endpoint, Django on Redis.

The benchmarks start their own servers (from ``tests/support``) so that
``python benchmarks/bench_token_herd.py`` works on a machine with only
``redis-server`` installed, and so their figures come from real sockets and processes.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from tests.support.django_caches import REDIS_ALIAS, configure_django  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.token_server import TokenServer, TokenServerProcess  # noqa: E402

__all__ = [
    "REDIS_ALIAS",
    "ROOT",
    "RedisServer",
    "TokenServer",
    "TokenServerProcess",
    "configure_django",
    "flush_redis",
    "percentile",
    "summary",
]


def flush_redis(url: str) -> None:
    """Start from a cold cache."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); no interpolation, so p99 is a real sample."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(values_ms: Sequence[float]) -> str:
    """``min/p50/p99/max`` of millisecond samples, for one printed line."""
    if not values_ms:
        return "no samples"
    return (
        f"min {min(values_ms):.1f} ms, p50 {statistics.median(values_ms):.1f} ms, "
        f"p99 {percentile(values_ms, 0.99):.1f} ms, max {max(values_ms):.1f} ms"
    )
