"""Child processes of the tests: a free port, waiting until a child answers, stopping it, pools of spawned workers.

Every real server the suite starts (redis-server, uvicorn, a Celery worker, the OAuth
and Authlib servers) is a child process that must be waited for without a fixed sleep
and stopped even when it ignores the polite request: the helpers here do both the
same way everywhere, so a server that hangs on shutdown costs a bounded time, never a
hung suite. :class:`SpawnedPool` is the shape of every cross-process test: N fresh
interpreters, set up like deployed processes, whose tasks a shared barrier releases
at the same moment. Only the standard library is used.
"""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["SpawnedPool", "StartStop", "free_port", "stop_process", "wait_until"]

_S = TypeVar("_S", bound="StartStop")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller retries if someone takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(process: subprocess.Popen[Any], ready: Callable[[], bool], timeout: float) -> bool:
    """Poll ``ready()`` until it is true (``True``), ``process`` exits or ``timeout`` seconds pass (``False``).

    The pause between polls is a wait on the process (10 ms, doubling up to 200 ms), so a
    child that dies is noticed at once instead of after the deadline; ``process.poll()``
    tells the caller which of the two ``False`` was.
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        try:
            process.wait(timeout=pause)
        except subprocess.TimeoutExpired:
            pause = min(pause * 2, 0.2)
    return False


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0, *, eof_timeout: float | None = None) -> int:
    """Stop ``process`` and reap it; its exit status.

    With ``eof_timeout``, first close its stdin (the test servers exit on EOF) and give it
    that long; then SIGTERM and ``timeout`` seconds, then SIGKILL and ``timeout`` more.
    """
    if eof_timeout is not None and process.stdin is not None:
        process.stdin.close()
        try:
            return process.wait(timeout=eof_timeout)
        except subprocess.TimeoutExpired:
            pass
    process.terminate()  # a no-op on a process that has already exited
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=timeout)


class StartStop:
    """``with Server() as server:``: :meth:`start` on entry (returning the server), :meth:`stop` on exit."""

    def start(self: _S) -> _S:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class SpawnedPool(ProcessPoolExecutor):
    """``processes`` spawned worker processes, each set up by ``initializer(*initargs, barrier)``.

    The ``multiprocessing`` barrier has one party per process and a task waits on it, so
    the tasks of :meth:`in_every_process` (one per worker) start together. Leaving the
    ``with`` block cancels what has not started and waits for the workers to exit.
    """

    def __init__(self, processes: int, initializer: Callable[..., object], *initargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        super().__init__(processes, mp_context=context, initializer=initializer, initargs=(*initargs, barrier))
        self.processes = processes

    def in_every_process(self, task: Callable[..., dict[str, Any]], *args: Any, timeout: float = 90.0) -> list[dict[str, Any]]:
        """``task(*args)`` once in each worker, all released together; their results (each with the ``"pid"`` it ran in)."""
        futures = [self.submit(task, *args) for _ in range(self.processes)]
        results = [future.result(timeout=timeout) for future in futures]
        assert len({result["pid"] for result in results}) == self.processes, "the tasks did not run in distinct processes"
        return results

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.shutdown(wait=True, cancel_futures=True)
