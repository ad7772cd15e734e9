"""Where a circuit breaker or a rate limiter keeps its state: the seam between the algorithm and the storage.

:class:`~.circuit_breaker.CircuitBreaker` and :class:`~.rate_limit.RateLimiter` keep all
their state in one immutable value and change it only through pure transitions. The
value lives in a :class:`StateStore`: :class:`MemoryStateStore` (the default) keeps it in
this process under a thread lock; the Django layer's cache stores
(``requestforge_django.shared``) keep it in a cache every process reads, under a
cross-process lease. The algorithm is the same either way; only the store differs.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

S = TypeVar("S")
R = TypeVar("R")


class StateStore(ABC, Generic[S]):
    """Holds one state value and applies steps to it atomically.

    A step reads the stored value (``None``: nothing stored yet) and returns the value to
    store (``None``: store nothing, it did not change) and its result.
    """

    @abstractmethod
    def read(self) -> S | None:
        """The stored value, ``None`` when nothing is stored yet."""

    @abstractmethod
    def update(self, step: Callable[[S | None], tuple[S | None, R]]) -> R:
        """Apply ``step`` to the stored value atomically, store what it returns (unless ``None``), return its result.

        ``step`` may be called more than once (a shared store re-applies it after taking
        its lock), so it must be a function of the value and the clock only.
        """

    @abstractmethod
    def write(self, value: S) -> None:
        """Replace the stored value unconditionally (a reset)."""


class MemoryStateStore(StateStore[S]):
    """The value in this process, guarded by a thread lock (the default store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: S | None = None

    def read(self) -> S | None:
        with self._lock:
            return self._value

    def update(self, step: Callable[[S | None], tuple[S | None, R]]) -> R:
        with self._lock:
            new, result = step(self._value)
            if new is not None:
                self._value = new
            return result

    def write(self, value: S) -> None:
        with self._lock:
            self._value = value

    def __repr__(self) -> str:
        return f"MemoryStateStore({self._value!r})"


async def call_store(store: StateStore[Any], func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``func(*args, **kwargs)``, a call on ``store``, made without blocking the event loop.

    A :class:`MemoryStateStore` only takes a thread lock briefly, so it is called inline;
    any other store (a cache, Redis) is called in a worker thread.
    """
    if isinstance(store, MemoryStateStore):
        return func(*args, **kwargs)
    return await asyncio.to_thread(func, *args, **kwargs)
