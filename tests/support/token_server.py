"""The shipped :class:`~requestforge_django.testing.StubTokenEndpoint`, run in a child process, for benchmarks.

The stub itself (endpoints, counters, ``fail_with`` / ``recover`` / ``revoke_all``) is
:mod:`requestforge_django.testing`; tests import it from there. What stays here is
:class:`TokenServerProcess`: the same stub in a child process, for benchmarks that time
calls from many threads and must not share an interpreter lock with the server. It is
driven like the in-thread stub, through a pipe. ``TokenServer`` and ``TokenServerStats``
are the names the benchmarks import.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from typing import Any

from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, PROTECTED_PATH, TOKEN_PATH, StubStats, StubTokenEndpoint

__all__ = ["APP_TOKEN_PATH", "DEVICE_PATH", "PROTECTED_PATH", "TOKEN_PATH", "TokenServer", "TokenServerProcess", "TokenServerStats"]

TokenServerStats = StubStats


class TokenServer(StubTokenEndpoint):
    """The shipped stub under the name the benchmarks use (``reset_stats`` is :meth:`reset_counters`)."""

    def reset_stats(self) -> None:
        self.reset_counters()


class TokenServerProcess:
    """A :class:`StubTokenEndpoint` in a child process; methods are forwarded over a pipe."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.url = ""
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None
        self._lock = threading.Lock()

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def protected_url(self) -> str:
        return self.url + PROTECTED_PATH

    def start(self, timeout: float = 30.0) -> TokenServerProcess:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_in_child, args=(self.options, child), name="token-server", daemon=True)
        self._process.start()
        if not self._conn.poll(timeout):
            self.stop()
            raise RuntimeError(f"token server process did not start within {timeout} s")
        self.url = self._conn.recv()
        return self

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError, EOFError):
                self._call("stop")
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=10)
            self._process = None

    def __enter__(self) -> TokenServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send((method, args, kwargs))
            ok, value = self._conn.recv()
        if not ok:
            raise value
        return value

    def configure(self, **changes: Any) -> None:
        self._call("configure", **changes)

    def fail_with(self, status: int = 500, *, times: int | None = None, body: Any = None, path: str | None = None) -> None:
        self._call("fail_with", status, times=times, body=body, path=path)

    def recover(self) -> None:
        self._call("recover")

    def revoke_all(self) -> None:
        self._call("revoke_all")

    def reset_stats(self) -> None:
        self._call("reset_counters")

    def stats(self) -> StubStats:
        return self._call("stats")


def _serve_in_child(options: dict[str, Any], conn: Any) -> None:
    with StubTokenEndpoint(**options) as stub:
        conn.send(stub.url)
        while True:
            method, args, kwargs = conn.recv()
            if method == "stop":
                conn.send((True, None))
                return
            try:
                conn.send((True, getattr(stub, method)(*args, **kwargs)))
            except Exception as exc:
                conn.send((False, exc))
