"""A long-lived Django process that calls clients from the registry on command (stdin/stdout, JSON lines).

Run as ``python -m tests.support.registry_worker`` with
``DJANGO_SETTINGS_MODULE=tests.support.process_settings``. Commands, one per line:

``call NAME``
    ``GET /api/protected`` through ``get_client(NAME)``; answers
    ``{"status": ..., "token": <fingerprint of the token now cached>}``.
``describe NAME``
    ``{"base_url": ..., "headers": {...}}`` of ``get_client(NAME)``'s configuration.
``load SECONDS THREADS NAME [NAME ...]``
    Call the clients in a loop from THREADS threads for SECONDS; answers the number of
    calls, the non-200 answers, the slowest call in ms and how many tokens *this*
    process fetched (``token_obtained`` signals) and, per token, the least time to expiry
    seen in the shared cache right after a call (``min_left``; never expired means > 0).

Only fingerprints of tokens ever leave the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]


def process_env(redis_url: str, token_server_url: str, **extra: str) -> dict[str, str]:
    """Environment of a Django process on :mod:`tests.support.process_settings` (``extra``: more ``RF_*`` knobs)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.support.process_settings",
        "RF_REDIS_URL": redis_url,
        "RF_TOKEN_SERVER": token_server_url,
        "PYTHONPATH": str(ROOT),
        **extra,
    }


class RegistryWorkerProcess:
    """The test side: starts ``python -m tests.support.registry_worker`` and talks to it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.registry_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._ask(None) == {"ready": True}

    def _ask(self, command: str | None) -> dict[str, Any]:
        stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        stdout: IO[str] = self.proc.stdout  # type: ignore[assignment]
        if command is not None:
            stdin.write(command + "\n")
            stdin.flush()
        line = stdout.readline()
        if not line:
            raise AssertionError(f"registry worker exited with {self.proc.wait()}")
        return json.loads(line)

    def call(self, name: str) -> dict[str, Any]:
        return self._ask(f"call {name}")

    def describe(self, name: str) -> dict[str, Any]:
        return self._ask(f"describe {name}")

    def load(self, seconds: float, threads: int, *names: str) -> dict[str, Any]:
        return self._ask(f"load {seconds} {threads} {' '.join(names)}")

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def token_lefts(name: str) -> dict[str, float | None]:
    """Seconds to expiry of every cached token behind client ``name`` (``None``: not cached)."""
    from requestforge_django.registry import registry

    auth = registry.definitions().clients[name].auth
    if auth is not None and auth.type == "pipeline" and auth.pipeline:
        pipeline = registry.get_pipeline(auth.pipeline)
        tokens = {f"{auth.pipeline}/{step}": pipeline.peek_step(step) for step in pipeline.step_names}
    else:
        tokens = {name: registry.get_token_manager(name).peek_token()}
    return {label: None if token is None else token.seconds_left() for label, token in tokens.items()}


def load(names: list[str], seconds: float, threads: int) -> dict[str, Any]:
    from requestforge_django import get_client
    from requestforge_django.signals import token_obtained
    from requestforge_django.testing import PROTECTED_PATH

    obtained: list[str] = []

    def on_obtained(sender: Any, name: str, step: str | None, **kwargs: Any) -> None:
        obtained.append(f"{name}/{step}" if step else name)

    token_obtained.connect(on_obtained)
    lock = threading.Lock()
    stats: dict[str, Any] = {"calls": 0, "non_200": 0, "max_ms": 0.0, "errors": [], "min_left": {}}
    deadline = time.monotonic() + seconds

    def run() -> None:
        clients = [(name, get_client(name)) for name in names]
        while time.monotonic() < deadline:
            for name, client in clients:
                started = time.perf_counter()
                try:
                    status = client.get(PROTECTED_PATH).status_code
                except Exception as exc:  # reported, not raised: the test asserts on it
                    status = -1
                    with lock:
                        stats["errors"].append(f"{type(exc).__name__}: {exc}")
                elapsed = (time.perf_counter() - started) * 1000
                lefts = token_lefts(name)
                with lock:
                    for label, left in lefts.items():
                        known = stats["min_left"].get(label, float("inf"))
                        stats["min_left"][label] = -1.0 if left is None else min(known, left)
                    stats["calls"] += 1
                    stats["non_200"] += status != 200
                    stats["max_ms"] = max(stats["max_ms"], elapsed)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    token_obtained.disconnect(on_obtained)
    return {**stats, "obtained_here": obtained}


def main() -> None:
    import django

    django.setup()
    from requestforge_django import get_client, get_token_manager
    from requestforge_django.testing import PROTECTED_PATH
    from tests.support.workers import fingerprint

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, *args = line.split() or [""]
        if command == "call":
            response = get_client(args[0]).get(PROTECTED_PATH)
            token = get_token_manager(args[0]).get_token().access_token
            answer: dict[str, Any] = {"status": response.status_code, "token": fingerprint(token)}
        elif command == "describe":
            config = get_client(args[0]).config
            answer = {"base_url": config.base_url, "headers": dict(config.default_headers)}
        elif command == "load":
            answer = load(args[2:], float(args[0]), int(args[1]))
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
