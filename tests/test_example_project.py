"""The quick start's demo works end to end: ``bash scripts/demo.sh --check``, headless.

It migrates a temporary SQLite database, starts the example project's server on a free
port, creates the entries the admin shows (a credential, a pipeline and two clients
defined in the database), fetches every token, makes two rounds of calls (clients from
settings and from the database) from another process and loads the demo page (whose
calls the server makes to itself), then stops the server. The
repository is left untouched: the database lives in ``tmp_path`` and nothing is
installed (``DEMO_SKIP_INSTALL``; ``scripts/test.sh`` has installed everything).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "example_project"

#: The check takes about 6 s; the limit leaves room for a slow CI machine (migrations on SQLite).
DEMO_TIMEOUT = 180

pytestmark = [pytest.mark.slow, pytest.mark.timeout(DEMO_TIMEOUT + 20)]


def project_files() -> set[Path]:
    return {path for path in EXAMPLE.rglob("*") if "__pycache__" not in path.parts}


def run_demo_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DEMO_PORT")}
    environment.update(
        DEMO_SKIP_INSTALL="1", PYTHON=sys.executable, DEMO_DB_PATH=str(tmp_path / "demo.sqlite3"), PYTHONDONTWRITEBYTECODE="1", **env
    )
    return subprocess.run(
        ["bash", "scripts/demo.sh", "--check"],
        cwd=REPO_ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
    )


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, output
    assert "demo check passed" in result.stdout, output
    assert "10 calls, all succeeded" in result.stdout, output
    assert "user:     demo" in result.stdout and "password: " in result.stdout, output  # the login is printed
    # The entries defined in the database (demo_admin) are called like the settings ones.
    for entry in ("credential 'crm'", "client definition 'crm'", "pipeline definition 'kiosk'", "client definition 'catalog'"):
        assert f"created {entry}" in result.stdout, output
    for client, path in (("crm", "/contacts/7"), ("catalog", "/catalog")):
        assert re.search(rf"^  {client} +GET {path} +200 ", result.stdout, re.MULTILINE), output  # demo_calls and the page
    steps = ("billing", "partner/device_token", "partner/app_token", "partner/user_token", "crm", "kiosk/device_token", "kiosk/app_token")
    for step in steps:
        assert f"{step}: renewed" in result.stdout, output  # requestforge_warm fetched every token


def stored_credential(database: Path) -> tuple[str, str, str]:
    """The demo credential's row as stored: client id, client secret column, allowed origins column."""
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(
            "SELECT client_id, client_secret, allowed_origins FROM requestforge_django_credential WHERE name = 'crm'"
        ).fetchone()


def test_demo_check_on_the_embedded_defaults(tmp_path: Path) -> None:
    """SQLite, the database cache, no broker: what a fresh machine gets."""
    before = project_files()
    result = run_demo_check(tmp_path)
    assert_passed(result)
    # The calls from the second process found the warmed tokens in the shared database cache.
    assert result.stdout.count("tokens the partner issued during this round: none") == 2, result.stdout
    assert (tmp_path / "demo.sqlite3").exists()
    client_id, secret_column, origins = stored_credential(tmp_path / "demo.sqlite3")
    assert client_id == "demo-crm" and secret_column and "demo-crm-secret" not in secret_column  # encrypted at rest
    assert json.loads(origins) == [re.search(r"Starting the server on (http://127\.0\.0\.1:\d+)/", result.stdout).group(1)]
    assert project_files() == before  # nothing written into the repository


def test_demo_check_with_redis(tmp_path: Path, redis_server: str, redis_client: object) -> None:
    """``REDIS_URL`` set: tokens in django-redis (the production layout)."""
    result = run_demo_check(tmp_path, REDIS_URL=redis_server)
    assert_passed(result)
    keys = {key.decode() for key in redis_client.keys("*demo-rf:*")}  # type: ignore[attr-defined]
    assert any(key.endswith("demo-rf:client:billing") for key in keys), keys
    assert any(key.endswith("demo-rf:pipeline:partner:user_token") for key in keys), keys
    assert any(key.endswith("demo-rf:client:crm") for key in keys), keys
    assert any(key.endswith("demo-rf:pipeline:kiosk:app_token") for key in keys), keys
