"""The registry reads database definitions quietly where the database may not be read, and warns on real faults.

Settings clients work without the database. When reading the admin-edited definitions
fails because database access is not allowed here (a test without ``django_db``:
pytest-django's blocker; Django's ``SimpleTestCase``) or because the tables do not exist
yet (before ``migrate``), that is expected: logged at debug level only. Every test
without database access used to log "Could not load database definitions
(RuntimeError: Database access not allowed...)" as a warning. A database that fails
otherwise still warns.
"""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.test import SimpleTestCase, override_settings

from requestforge_django import models
from requestforge_django.registry import get_client, registry
from tests.support.app_tables import without_app_tables

SETTING = {"CLIENTS": {"plain": {"BASE_URL": "https://plain.example.com"}}}
LOGGER = "requestforge_django"


def definition_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "database definitions" in r.getMessage().lower()]


def test_no_warning_when_a_test_without_database_access_builds_a_settings_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with override_settings(REQUESTFORGE=SETTING):
        get_client("plain")
        assert registry.definitions().sources == {"plain": "settings"}
    records = definition_records(caplog)
    assert [r.levelno for r in records if r.levelno >= logging.WARNING] == []
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.DEBUG, "Database definitions not loaded (database access is not allowed here); using settings only")
    ]


class SimpleTestCaseWithoutDatabase(SimpleTestCase):
    """Django's own guard (``DatabaseOperationForbidden``) is as quiet as pytest-django's."""

    def test_no_warning(self) -> None:
        with self.assertLogs(LOGGER, level=logging.DEBUG) as logs, override_settings(REQUESTFORGE=SETTING):
            get_client("plain")
            registry.definitions()  # reads every definition: a settings name alone no longer reads the database
        self.assertEqual(
            [(r.levelno, r.getMessage()) for r in logs.records if "definitions" in r.getMessage()],
            [(logging.DEBUG, "Database definitions not loaded (database access is not allowed in this test); using settings only")],
        )


@pytest.mark.django_db
def test_a_real_database_fault_still_warns(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(models, "database_definitions", broken)
    with override_settings(REQUESTFORGE=SETTING):
        get_client("plain")  # settings clients keep working
        registry.definitions()  # reads every definition: a settings name alone no longer reads the database
    warnings = [r for r in definition_records(caplog) if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Could not load database definitions (OperationalError: server closed the connection unexpectedly); using settings only"
    ]


@pytest.mark.django_db
def test_an_unexpected_error_still_warns(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(models, "database_definitions", broken)
    with override_settings(REQUESTFORGE=SETTING):
        get_client("plain")
        registry.definitions()  # reads every definition: a settings name alone no longer reads the database
    assert [r.levelno for r in definition_records(caplog)] == [logging.WARNING]


@pytest.mark.django_db(transaction=True)
def test_tables_not_migrated_yet_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with without_app_tables(), override_settings(REQUESTFORGE=SETTING):
        get_client("plain")
        registry.definitions()  # reads every definition: a settings name alone no longer reads the database
    records = definition_records(caplog)
    assert [r.levelno for r in records] == [logging.DEBUG], [r.getMessage() for r in records]
    assert "does not exist yet; run migrate" in records[0].getMessage()
