"""A throw-away ``redis-server`` on a free local port, for tests and benchmarks.

It runs without persistence (``--save "" --appendonly no``) in its own temporary
directory and is gone when :meth:`RedisServer.stop` returns. A missing binary raises
:class:`RedisServerError`; the test fixture turns that into a failure, never a skip,
because a suite that silently skips its cross-process tests proves nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .processes import StartStop, free_port, stop_process, wait_until

__all__ = ["RedisServer", "RedisServerError", "free_port", "find_redis_server"]


class RedisServerError(RuntimeError):
    """redis-server is missing or did not come up."""


def find_redis_server() -> str:
    """Path of the redis-server binary (``$REDIS_SERVER``, ``PATH``, then ``/usr/bin``)."""
    candidates = [os.environ.get("REDIS_SERVER"), shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/local/bin/redis-server"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RedisServerError("redis-server not found: install it (apt-get install redis-server; scripts/test.sh does) or set $REDIS_SERVER")


class RedisServer(StartStop):
    """Start with :meth:`start` (or ``with RedisServer() as server``); ``url`` is ``redis://127.0.0.1:PORT/0``."""

    def __init__(self, *, host: str = "127.0.0.1", startup_timeout: float = 10.0, attempts: int = 3) -> None:
        self.host = host
        self.startup_timeout = startup_timeout
        self.attempts = attempts
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return self.url_for_db(0)

    def url_for_db(self, db: int) -> str:
        if self.port is None:
            raise RedisServerError("redis-server is not running")
        return f"redis://{self.host}:{self.port}/{db}"

    def start(self) -> RedisServer:
        binary = find_redis_server()
        self._tmpdir = tempfile.TemporaryDirectory(prefix="requestforge-redis-")
        last_error = ""
        for _ in range(self.attempts):
            port = free_port(self.host)
            log = Path(self._tmpdir.name) / f"redis-{port}.log"
            args = [binary, "--port", str(port), "--bind", self.host, "--save", "", "--appendonly", "no"]
            args += ["--dir", self._tmpdir.name, "--logfile", str(log), "--daemonize", "no"]
            process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_until_ready(process, port):
                self._process, self.port = process, port
                return self
            stop_process(process)
            last_error = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        self._cleanup_dir()
        raise RedisServerError(f"redis-server did not answer PING within {self.startup_timeout} s; last log:\n{last_error}")

    def _wait_until_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        """PING answered within ``startup_timeout`` (redis-server usually answers within ~20 ms); ``False`` if it exited."""
        return wait_until(process, lambda: _ping(self.host, port), self.startup_timeout)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self._process is not None})"


def _ping(host: str, port: int) -> bool:
    """A raw RESP PING, so starting the server does not depend on redis-py."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
