"""One in-flight call per key for the tasks of an event loop: how the token layer's ``a``-methods stay single-flight.

The sync token path already makes one fetch per token across threads and processes
(:mod:`.single_flight`: the in-process flight plus the storage lease). The async path
reuses it instead of duplicating it: for each key, the first task on a loop (the
*leader*) runs the sync method in a worker thread, and every other task of that loop
awaits the same future. So a hundred tasks cost one worker thread, and that thread
joins the threads and processes of the sync path like any other caller.

* **Cancellation.** The shared future is shielded: cancelling the leader (or any
  waiter) cancels only that task's wait. The thread keeps running, the other tasks get
  its token or its exception, and the sync path guarantees nothing is half-written.
* **One loop per future.** Futures are kept per running loop (weakly, so a closed and
  discarded loop takes its entries with it); a future created on one loop is never
  awaited from another, and a fresh loop (a second ``asyncio.run``) starts clean.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_Flights = dict[Hashable, "asyncio.Future[T]"]


class AsyncFlights(Generic[T]):
    """Per-loop, per-key shared futures of sync calls run off the loop (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flights[T]] = weakref.WeakKeyDictionary()
        # A loop that cannot be weakly referenced keeps an entry here only while it has flights.
        self._unweakable: dict[asyncio.AbstractEventLoop, _Flights[T]] = {}

    async def run(self, key: Hashable, func: Callable[[], T]) -> T:
        """The result of ``func()`` run in a worker thread, shared by every task of this loop asking for ``key`` meanwhile."""
        loop = asyncio.get_running_loop()
        with self._lock:
            flights = self._flights_of(loop, create=True)
            assert flights is not None
            future = flights.get(key)
            if future is None:
                future = flights[key] = _start(loop, func)
                future.add_done_callback(functools.partial(self._finished, loop, flights, key))
        return await asyncio.shield(future)

    def in_flight(self) -> int:
        """How many calls the running loop has in flight (for tests and status pages)."""
        with self._lock:
            flights = self._flights_of(asyncio.get_running_loop(), create=False)
            return 0 if flights is None else len(flights)

    def _flights_of(self, loop: asyncio.AbstractEventLoop, *, create: bool) -> _Flights[T] | None:
        try:
            flights = self._by_loop.get(loop)
            if flights is None and create:
                flights = self._by_loop[loop] = {}
            return flights
        except TypeError:  # not weakly referenceable
            flights = self._unweakable.get(loop)
            if flights is None and create:
                flights = self._unweakable[loop] = {}
            return flights

    def _finished(self, loop: asyncio.AbstractEventLoop, flights: _Flights[T], key: Hashable, future: asyncio.Future[T]) -> None:
        with self._lock:
            if flights.get(key) is future:
                del flights[key]
            if not flights and self._unweakable.get(loop) is flights:
                del self._unweakable[loop]
        if not future.cancelled():
            future.exception()  # retrieved: every waiter may have been cancelled, which is not an unhandled error

    def __getstate__(self) -> dict[str, Any]:
        return {}  # futures belong to a loop of this process; a copy starts with none

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._by_loop = weakref.WeakKeyDictionary()
        self._unweakable = {}


def _start(loop: asyncio.AbstractEventLoop, func: Callable[[], T]) -> asyncio.Future[T]:
    # ``asyncio.to_thread`` minus the coroutine: a bare future that no task owns, so no cancellation reaches it.
    context = contextvars.copy_context()
    return loop.run_in_executor(None, functools.partial(context.run, func))
