"""A settable wall clock for tests of state shared across processes."""

from __future__ import annotations


class WallClock:
    """A settable stand-in for ``time.time`` (shared breakers and buckets compare wall-clock readings)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now
