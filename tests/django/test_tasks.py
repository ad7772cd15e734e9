"""The Celery tasks and the beat entry, called in-process (the real worker and beat: test_celery_warmup.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from requestforge_django.celery import BEAT_ENTRY_NAME, REFRESH_TASK, beat_schedule
from requestforge_django.registry import UnknownNameError
from requestforge_django.tasks import refresh_due_tokens, warm_token
from requestforge_django.testing import TOKEN_PATH, StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture
def server(settings: Any, redis_cache: str) -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(expires_in=3600) as server:
        settings.REQUESTFORGE = requestforge_setting(server, redis_cache, WARM_INTERVAL=2)
        yield server


def test_beat_entry_defaults_to_warm_interval_and_expires_with_it(server: StubTokenEndpoint) -> None:
    assert beat_schedule() == {BEAT_ENTRY_NAME: {"task": REFRESH_TASK, "schedule": 2.0, "options": {"expires": 2.0}}}
    entry = beat_schedule(10, name="warm", queue="tokens")["warm"]
    assert entry["options"] == {"expires": 10.0, "queue": "tokens"}
    with pytest.raises(ValueError, match="positive number of seconds"):
        beat_schedule(0)


def test_tasks_are_registered_by_name_and_ignore_results() -> None:
    assert refresh_due_tokens.name == REFRESH_TASK
    assert warm_token.name == "requestforge_django.tasks.warm_token"
    assert refresh_due_tokens.ignore_result and warm_token.ignore_result


def test_refresh_is_idempotent(server: StubTokenEndpoint) -> None:
    assert refresh_due_tokens() == {"billing": "renewed", "partner/device": "renewed", "partner/app": "renewed"}
    assert refresh_due_tokens() == {"billing": "fresh", "partner/device": "fresh", "partner/app": "fresh"}
    assert server.stats().fetches == 3


def test_a_failure_leaves_the_others_and_is_reported(server: StubTokenEndpoint) -> None:
    server.fail_with(503, path=TOKEN_PATH)
    assert refresh_due_tokens() == {"billing": "error", "partner/device": "renewed", "partner/app": "renewed"}


def test_warm_token_for_one_name(server: StubTokenEndpoint) -> None:
    assert warm_token("partner-api") == {"partner/device": "renewed", "partner/app": "renewed"}
    assert server.stats().token_requests == 0
    with pytest.raises(UnknownNameError):
        warm_token("nope")
