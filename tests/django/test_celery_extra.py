"""The ``celery`` extra runs a worker on a Redis broker: ``celery -A app worker --beat``, for real.

``pip install "requestforge-django[celery]"`` used to install plain ``celery``; a worker
on a Redis broker then died at start with ``ModuleNotFoundError: No module named
'packaging'``, because kombu's Redis transport needs kombu's ``redis`` extra (``redis``
and ``packaging``), which ``celery[redis]`` brings. The test environment happened to
have both, so no process test saw it. Two tests:

* the requirements the ``celery`` extra pulls in (read from ``pyproject.toml``, resolved
  through the installed distributions' metadata) include kombu's ``redis`` extra: what
  a fresh ``pip install ".[celery]"`` installs, without installing anything;
* a real ``celery -A tests.support.celery_app worker --beat`` process on the test
  redis-server boots, its embedded beat schedules ``refresh_due_tokens``, and the worker
  runs it and a ``warm_token`` sent from here (tokens obtained from the test token
  server, the worker's ``token_obtained`` signal counted in Redis).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from requestforge_django.testing import TOKEN_PATH, StubTokenEndpoint
from tests.support.processes import stop_process
from tests.support.registry_worker import ROOT, process_env

BROKER_DB = 2  # the warm-up tests use db 1; db 0 is the token cache
INTERVAL = 0.5


def extra_requirements(extra: str) -> list[Requirement]:
    """The requirements of ``extra`` as ``pyproject.toml`` declares it (not the possibly stale installed metadata).

    Read with a regular expression (``tomllib`` needs Python 3.11): the extras are one
    line each, ``name = ["requirement", ...]``, in ``[project.optional-dependencies]``.
    """
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    found = re.search(rf"^{re.escape(extra)} = (\[.*\])$", section, re.MULTILINE)
    assert found, f"no extra {extra!r} in pyproject.toml"
    return [Requirement(line) for line in ast.literal_eval(found.group(1))]


def closure(requirements: list[Requirement]) -> dict[str, set[str]]:
    """Every distribution those requirements install, with the extras asked of it (markers evaluated here)."""
    wanted: dict[str, set[str]] = {}
    queue = [(req, "") for req in requirements]
    while queue:
        req, via_extra = queue.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": via_extra}):
            continue
        name = canonicalize_name(req.name)
        extras = set(req.extras)
        known = wanted.get(name)
        if known is not None and extras <= known:
            continue
        wanted[name] = (known or set()) | extras
        for line in metadata.requires(req.name) or []:
            for extra in ("", *wanted[name]):
                queue.append((Requirement(line), extra))
    return wanted


def test_the_celery_extra_installs_what_kombus_redis_transport_needs() -> None:
    installs = closure(extra_requirements("celery"))
    assert "redis" in installs.get("kombu", set()), installs.get("kombu")
    transport = [Requirement(line) for line in metadata.requires("kombu") or []]
    needed = {canonicalize_name(r.name) for r in transport if r.marker is not None and r.marker.evaluate({"extra": "redis"})}
    assert {"redis", "packaging"} <= needed  # what the worker failed to import
    assert needed <= installs.keys(), sorted(needed - installs.keys())


# -- a real worker with embedded beat -----------------------------------------------------------


def wait_for(condition: Callable[[], Any], seconds: float, what: str, log: Path) -> Any:
    """Poll ``condition`` (another process's state: its log, Redis) until it is truthy; fail with the log's tail."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = "".join(log.read_text().splitlines(True)[-30:])
            pytest.fail(f"timed out after {seconds:g}s waiting for {what}; worker log (tail):\n{tail}")
        time.sleep(0.05)


@pytest.fixture
def worker_with_beat(redis_server: str, redis_client: Any, tmp_path: Path) -> Iterator[tuple[str, StubTokenEndpoint, Path]]:
    """``celery -A tests.support.celery_app worker --beat`` on a Redis broker; yields (broker URL, token server, log)."""
    import redis

    broker = redis_server.rsplit("/", 1)[0] + f"/{BROKER_DB}"
    broker_client = redis.Redis.from_url(broker)
    broker_client.flushdb()  # no task left behind by another test
    log_path = tmp_path / "worker.log"
    with StubTokenEndpoint(expires_in=3600) as server, log_path.open("w") as log:
        env = process_env(redis_server, server.url, RF_BROKER_URL=broker, RF_WARM_INTERVAL=str(INTERVAL))
        command = [sys.executable, "-m", "celery", "-A", "tests.support.celery_app", "worker", "--beat", "--concurrency=1"]
        command += ["--loglevel=INFO", "--without-gossip", "--without-mingle", f"--schedule={tmp_path / 'beat-schedule'}"]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield broker, server, log_path
        finally:
            stop_process(proc, 20)
            broker_client.flushdb()
            broker_client.close()


@pytest.mark.redis
@pytest.mark.slow
def test_a_worker_with_embedded_beat_boots_on_redis_and_runs_the_requestforge_tasks(
    worker_with_beat: tuple[str, StubTokenEndpoint, Path], redis_client: Any
) -> None:
    from celery import Celery

    broker, server, log = worker_with_beat
    wait_for(lambda: re.search(r"celery@\S+ ready\.", log.read_text()), 15, "the worker to boot", log)
    text = log.read_text()
    assert "beat: Starting..." in text  # --beat: the scheduler runs inside the worker
    assert "ModuleNotFoundError" not in text and "Traceback" not in text

    # The embedded beat schedules the warm-up; the worker runs it and obtains the tokens.
    wait_for(
        lambda: re.search(r"Task requestforge_django\.tasks\.refresh_due_tokens\[\S+\] succeeded", log.read_text()),
        10,
        "beat's refresh_due_tokens to run",
        log,
    )
    assert "Sending due task requestforge-refresh-due-tokens (requestforge_django.tasks.refresh_due_tokens)" in log.read_text()
    assert server.stats().issued.get(TOKEN_PATH, 0) == 1  # once, however many runs followed: the token stays fresh
    assert int(redis_client.get("rf-signals:token_obtained:billing") or 0) == 1  # the worker's signal receiver ran

    # A task sent by another process (here: this test) runs too.
    sender = Celery("rf_sender", broker=broker)
    try:
        sender.send_task("requestforge_django.tasks.warm_token", args=["partner-api"])
    finally:
        sender.close()
    wait_for(
        lambda: re.search(r"Task requestforge_django\.tasks\.warm_token\[\S+\] succeeded in [\d.]+s: \{.*'partner", log.read_text()),
        10,
        "warm_token to run",
        log,
    )
    assert "ERROR" not in log.read_text()
