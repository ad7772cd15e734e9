"""The token lifecycle signals, asserted with connected receivers, and the shared status record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from requestforge_django import get_client, get_token_manager
from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.registry import registry
from requestforge_django.shared.status_records import read_status
from requestforge_django.signals import token_invalidated, token_obtained, token_refresh_failed
from requestforge_django.testing import PROTECTED_PATH, StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture
def configured(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> StubTokenEndpoint:
    settings.REQUESTFORGE = requestforge_setting(token_server, redis_cache)
    return token_server


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    def receiver_for(label: str) -> Any:
        def receive(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal")
            events.append((label, kwargs))

        return receive

    receivers = {signal: receiver_for(label) for label, signal in (
        ("obtained", token_obtained), ("invalidated", token_invalidated), ("failed", token_refresh_failed),
    )}  # fmt: skip
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        yield events
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)


def test_obtained_once_per_fetch_with_name_step_and_expiry(configured: StubTokenEndpoint, received: list) -> None:
    client = get_client("billing")
    client.get(PROTECTED_PATH)
    client.get(PROTECTED_PATH)
    assert [label for label, _ in received] == ["obtained"]
    kwargs = received[0][1]
    assert kwargs["name"] == "billing" and kwargs["step"] is None
    assert isinstance(kwargs["expires_at"], datetime) and kwargs["expires_at"].tzinfo is not None
    assert set(kwargs) == {"name", "step", "expires_at"}  # never the token


def test_pipeline_steps_are_signalled_per_step(configured: StubTokenEndpoint, received: list) -> None:
    get_client("partner-api").get(PROTECTED_PATH)
    assert [(label, kw["name"], kw["step"]) for label, kw in received] == [
        ("obtained", "partner", "device"),
        ("obtained", "partner", "app"),
    ]


def test_invalidation_cascades_with_a_reason(configured: StubTokenEndpoint, received: list) -> None:
    get_token_manager("partner").get_token()
    received.clear()
    registry.get_pipeline("partner").invalidate_step("device", reason="manual")
    assert [(label, kw["step"], kw["reason"]) for label, kw in received] == [
        ("invalidated", "device", "manual"),
        ("invalidated", "app", "manual"),
    ]


def test_refresh_failure_is_signalled_with_a_masked_error_and_recorded(configured: StubTokenEndpoint, received: list) -> None:
    configured.fail_with(503)
    with pytest.raises(AuthenticationException):
        get_client("billing").get(PROTECTED_PATH)
    failures = [kw for label, kw in received if label == "failed"]
    assert len(failures) == 1
    assert failures[0]["name"] == "billing" and isinstance(failures[0]["error"], AuthenticationException)
    assert configured.client_secret not in str(failures[0]["error"])
    spec = registry.definitions().settings
    record = read_status(spec.cache, spec.key_prefix, "billing", None)
    assert record.last_error is not None and "503" in record.last_error
    assert record.last_obtained_at is None
    configured.recover()
    get_client("billing").get(PROTECTED_PATH)
    record = read_status(spec.cache, spec.key_prefix, "billing", None)
    assert record.last_obtained_at is not None


def test_a_failing_receiver_does_not_break_the_request(configured: StubTokenEndpoint) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    token_obtained.connect(broken)
    try:
        assert get_client("billing").get(PROTECTED_PATH).status_code == 200
    finally:
        token_obtained.disconnect(broken)
