"""An overall deadline for one send, enforced by cutting the connection when time is up.

A socket timeout bounds each ``recv``, not a request: a server that sends its headers
and then one byte a second never trips it, and holds the calling thread (and a token
fetch's lease) for as long as it likes. ``HttpClientConfig.total_timeout`` asks for a
real deadline; this module provides it:

* :class:`Deadline` is one send's deadline. The transport makes it current for the
  thread while it sends (:func:`current`), and the connection pools of
  :class:`DeadlineAdapter` attach every connection they hand out to the current deadline,
  so the connection of each redirect hop, while its headers and body are read, is known.
* one shared daemon thread (:class:`_Watchdog`) keeps the deadlines in a heap; when one
  expires it shuts the attached socket down, which wakes the blocked read at once. The
  transport sees ``deadline.expired`` and raises ``TimeoutException``.

Nothing here runs unless ``total_timeout`` is set: clients without it use the plain
``HTTPAdapter`` and pay nothing.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Deadline", "DeadlineAdapter", "current"]

_local = threading.local()


class Deadline:
    """One send's deadline: ``remaining()`` seconds left; ``expired`` once the watchdog cut the connection."""

    __slots__ = ("_conn", "_done", "_lock", "at", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._conn: Any = None
        self._done = False
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def attach(self, conn: Any) -> None:
        """Make ``conn`` (an urllib3 connection) the one cut when the deadline passes."""
        if conn is None:
            return
        with self._lock:
            self._conn = conn
            cut = self.expired
        if cut:
            _cut(conn)

    def __enter__(self) -> Deadline:
        _local.deadline = self
        _watchdog.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _local.deadline = None
        with self._lock:
            self._done = True
            self._conn = None

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            conn = self._conn
        _cut(conn)


def current() -> Deadline | None:
    """The deadline of the send running on this thread, if any."""
    return getattr(_local, "deadline", None)


def _cut(conn: Any) -> None:
    """Shut the connection's socket down: a read blocked on it returns at once (close alone may not wake it)."""
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        # socket.socket's own shutdown, not SSLSocket's (which drops its TLS state first).
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One daemon thread for every deadline of the process: a heap and a condition variable."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._condition:
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="requestforge-deadline", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline._fire()


_watchdog = _Watchdog()


class _AttachesDeadline:
    """Pool mixin: every connection handed out is watched by the calling thread's deadline."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        deadline = current()
        if deadline is not None:
            deadline.attach(conn)
        return conn


class _DeadlineHTTPConnectionPool(_AttachesDeadline, HTTPConnectionPool):
    pass


class _DeadlineHTTPSConnectionPool(_AttachesDeadline, HTTPSConnectionPool):
    pass


_POOL_CLASSES = {"http": _DeadlineHTTPConnectionPool, "https": _DeadlineHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose pools attach each connection they hand out to the thread's current deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # SOCKS managers bring their own pool classes; the transport attaches their
        # response's connection after the headers instead.
        if manager.pool_classes_by_scheme.get("http") is HTTPConnectionPool:
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
