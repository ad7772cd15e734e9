"""What the test authorization servers (``oauth_server``, ``authlib_server``) share: both sides of a child HTTP server.

The test side, :class:`ChildServer`, runs ``python -m <package> --host H --port 0`` in a
temporary directory, waits for the one line with its port (an event on the pipe,
bounded by ``startup_timeout``: no sleeps), talks to its ``/_control/`` endpoints over
HTTP and stops it by closing its stdin (then SIGTERM, then SIGKILL). The child side,
:func:`child_arguments` and :func:`serve_until_stdin_closes`, is the other half of that
protocol; :class:`RecordLists` and :func:`fingerprint` are the base of each server's
ledger (what it saw, with tokens and secrets only as fingerprints). A package keeps
only what is its own: its environment, its readiness check, its control API.

Only the standard library is used, so importing this module touches neither the test
process's Django nor the child's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol, TypeVar

from .processes import StartStop, stop_process

__all__ = ["ChildServer", "RecordLists", "child_arguments", "fingerprint", "serve_until_stdin_closes"]

ROOT = Path(__file__).resolve().parents[2]

_C = TypeVar("_C", bound="ChildServer")


def fingerprint(value: str) -> str:
    """A short, one-way name for a token, secret or assertion: enough to compare, useless to an attacker.

    The same function as :func:`tests.support.workers.fingerprint`, so what a server
    records compares with what worker processes report.
    """
    return hashlib.sha256(value.encode()).hexdigest()[:12]


# -- the test side ------------------------------------------------------------------------------


class ChildServer(StartStop):
    """A test server in a child process on ``host:<port>``; subclasses name it and add their control API."""

    #: The package run with ``python -m``.
    module: ClassVar[str]
    #: How failure messages name the server ("the OAuth server").
    label: ClassVar[str]
    #: What a failed start or control request raises.
    error: ClassVar[type[Exception]] = RuntimeError
    #: Prefix of the temporary directory (its log file, and whatever the child keeps there).
    tmp_prefix: ClassVar[str] = "requestforge-server-"
    #: Path of the token endpoint.
    token_path: ClassVar[str]

    def __init__(self, *, host: str = "127.0.0.1", startup_timeout: float = 60.0) -> None:
        self.host = host
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.pid: int | None = None
        #: Seconds from spawning the process to its being ready (its port line, then :meth:`_check_ready`).
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[str] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        """The origin, ``http://127.0.0.1:<port>``."""
        if self.port is None:
            raise self.error(f"{self.label} is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + self.token_path

    # -- what a subclass adds --------------------------------------------------------------------

    def _child_env(self, directory: Path) -> dict[str, str]:
        """Environment variables of the child beyond the test process's own (``directory`` is its temporary one)."""
        return {}

    def _check_ready(self) -> None:
        """Called once the child has announced its port; raising stops it and fails :meth:`start`."""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self: _C) -> _C:
        self._tmpdir = tempfile.TemporaryDirectory(prefix=self.tmp_prefix)
        directory = Path(self._tmpdir.name)
        env = {**os.environ, **self._child_env(directory), "PYTHONPATH": str(ROOT)}
        self._log = open(directory / "server.log", "w+")  # noqa: SIM115 (closed in stop())
        started = time.monotonic()
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--host", self.host, "--port", "0"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        try:
            ready = self._wait_ready()
            self.port, self.pid = int(ready["port"]), int(ready["pid"])
            self._check_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self) -> dict[str, Any]:
        """The child's first stdout line, waited for with a deadline (select on the pipe)."""
        assert self._process is not None and self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=self.startup_timeout):
                raise self.error(f"{self.label} did not start within {self.startup_timeout} s\n{self.log_tail()}")
        line = self._process.stdout.readline()
        if not line:
            raise self.error(f"{self.label} exited with {self._process.wait()}\n{self.log_tail()}")
        return dict(json.loads(line))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, 5, eof_timeout=10)  # the child exits on EOF
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        self.port = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's stderr (tracebacks, warnings), for failure messages."""
        if self._log is None:
            return "(no log)"
        self._log.flush()
        self._log.seek(0)
        text = self._log.read()
        self._log.seek(0, os.SEEK_END)
        return text[-chars:]

    # -- control --------------------------------------------------------------------------------

    def _control(self, path: str, data: dict[str, Any] | None = None) -> Any:
        """``GET`` (or, with ``data``, ``POST`` as JSON) ``/_control/<path>``; the JSON answer."""
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(self.url + "/_control/" + path, data=body, method="GET" if data is None else "POST")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise self.error(f"control request {path!r} failed: {exc.code} {exc.read()[:500]!r}\n{self.log_tail()}") from exc
        except OSError as exc:
            raise self.error(f"control request {path!r} failed: {exc}\n{self.log_tail()}") from exc


# -- the child side ------------------------------------------------------------------------------


class _Serving(Protocol):
    server_address: Any

    def serve_forever(self, poll_interval: float = ...) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


def child_arguments(description: str | None) -> argparse.Namespace:
    """``--host`` and ``--port`` (0: the OS picks) from the command line; warnings and errors logged to stderr."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args


def serve_until_stdin_closes(server: _Serving) -> None:
    """Serve ``server`` (already bound) until stdin reaches EOF or SIGTERM arrives.

    Once it is serving, one line ``{"port": N, "pid": P}`` goes to stdout: the event
    :class:`ChildServer` waits for. Everything after goes to stderr (the harness's log
    file). EOF comes when the harness closes the pipe, or when the test process dies: no
    child outlives its parent.
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        for _ in sys.stdin:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="serve", daemon=True)
    serving.start()

    sys.stdout.write(json.dumps({"port": server.server_address[1], "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing more on the pipe the harness stopped reading

    stop.wait()
    server.shutdown()
    server.server_close()
    serving.join(timeout=10)


class RecordLists:
    """Thread-safe lists of what a server saw (one per kind of event), for the test process to read back.

    The lock is re-entrant, so a subclass keeping more state (an index, secrets) can
    update it and the lists in one step.
    """

    def __init__(self, *kinds: str) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}

    def record(self, kind: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._records[kind].append(entry)

    def snapshot(self) -> dict[str, Any]:
        """A copy of every list, by kind."""
        with self._lock:
            return {kind: [dict(e) for e in entries] for kind, entries in self._records.items()}

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            for entries in self._records.values():
                entries.clear()
