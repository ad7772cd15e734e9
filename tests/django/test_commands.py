"""The ``requestforge_*`` management commands: output, masking and exit status."""

from __future__ import annotations

import io
import json
import re
from datetime import timezone
from typing import Any

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.status import token_statuses
from requestforge_django.testing import PROTECTED_PATH, TOKEN_PATH, StubTokenEndpoint
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture
def configured(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> StubTokenEndpoint:
    setting = requestforge_setting(token_server, redis_cache)
    setting["CLIENTS"]["legacy"] = {"BASE_URL": token_server.url, "AUTH": {"TYPE": "api_key", "KEY": "legacy-api-key-0123456789"}}
    settings.REQUESTFORGE = setting
    return token_server


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def access_tokens() -> list[str]:
    tokens = [get_token_manager("billing").peek_token(), *(get_pipeline("partner").peek_step(s) for s in ("device", "app"))]
    return [t.access_token for t in tokens if t is not None]


class TestStatus:
    def test_table_before_and_after_tokens_exist(self, configured: StubTokenEndpoint) -> None:
        before = run("requestforge_status")
        assert "billing" in before and "not cached" in before
        assert "partner/device" in before and "partner/app" in before
        assert "legacy" in before and "static credentials" in before
        get_client("billing").get(PROTECTED_PATH)
        get_client("partner-api").get(PROTECTED_PATH)
        after = run("requestforge_status")
        billing_line = next(line for line in after.splitlines() if line.startswith("billing "))
        assert "****" in billing_line and ("expires in 59 min" in billing_line or "expires in 1 h 00 min" in billing_line)
        for token in access_tokens():
            assert token not in after  # masked
        assert "legacy-api-key-0123456789" not in after and configured.client_secret not in after

    def test_json_output(self, configured: StubTokenEndpoint) -> None:
        get_client("billing").get(PROTECTED_PATH)
        rows = json.loads(run("requestforge_status", "--json", "billing", "partner"))
        assert [(r["name"], r["step"]) for r in rows] == [("billing", None), ("partner", "device"), ("partner", "app")]
        billing = rows[0]
        assert billing["cached"] is True and 3500 < billing["expires_in"] <= 3600
        assert billing["token"].endswith("****") and billing["last_obtained_at"]
        assert rows[1]["cached"] is False
        assert get_token_manager("billing").peek_token().access_token not in json.dumps(rows)

    def test_times_are_utc_and_say_so(self, configured: StubTokenEndpoint, settings: Any) -> None:
        settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9 all year: a local time would read nine hours off
        get_client("billing").get(PROTECTED_PATH)
        run("requestforge_invalidate", "billing")
        configured.fail_with(503, path=TOKEN_PATH)
        with pytest.raises(CommandError):
            run("requestforge_warm", "billing")
        (status,) = token_statuses(["billing"])
        assert status.last_obtained_at is not None and status.last_error_at is not None
        line = next(line for line in run("requestforge_status", "billing").splitlines() if line.startswith("billing "))
        obtained = status.last_obtained_at.astimezone(timezone.utc)
        failed = status.last_error_at.astimezone(timezone.utc)
        assert f"  {obtained:%Y-%m-%d %H:%M:%S} UTC  " in line
        assert f"  {failed:%Y-%m-%d %H:%M:%S} UTC: " in line and "503" in line
        assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\b", line)) == 2

    def test_unknown_name_exits_non_zero(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(CommandError, match=r"No client or pipeline named 'biling'.*'billing'"):
            run("requestforge_status", "biling")


class TestWarm:
    def test_fetches_what_is_missing_then_nothing(self, configured: StubTokenEndpoint) -> None:
        first = run("requestforge_warm")
        assert "billing: renewed" in first and "partner/device: renewed" in first and "partner/app: renewed" in first
        assert configured.stats().fetches == 3
        second = run("requestforge_warm", "billing", "partner-api")
        assert "billing: fresh" in second and "partner/app: fresh" in second
        assert configured.stats().fetches == 3

    def test_a_failure_exits_non_zero_and_other_tokens_still_warm(self, configured: StubTokenEndpoint) -> None:
        configured.fail_with(503, path=TOKEN_PATH)
        with pytest.raises(CommandError, match=r"1 of 3 tokens could not be renewed: billing"):
            run("requestforge_warm")
        assert get_pipeline("partner").peek_step("app") is not None  # the pipeline was still warmed

    def test_unknown_name(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(CommandError, match="No client or pipeline named 'nope'"):
            run("requestforge_warm", "nope")


class TestInvalidate:
    def test_client_token(self, configured: StubTokenEndpoint) -> None:
        get_client("billing").get(PROTECTED_PATH)
        assert "Invalidated billing" in run("requestforge_invalidate", "billing")
        assert get_token_manager("billing").peek_token() is None

    def test_pipeline_step_cascades(self, configured: StubTokenEndpoint) -> None:
        get_client("partner-api").get(PROTECTED_PATH)
        out = run("requestforge_invalidate", "partner", "--step", "device")
        assert out.split() == ["Invalidated", "partner/device", "Invalidated", "partner/app"]
        pipeline = get_pipeline("partner")
        assert pipeline.peek_step("device") is None and pipeline.peek_step("app") is None

    def test_only_a_later_step(self, configured: StubTokenEndpoint) -> None:
        get_client("partner-api").get(PROTECTED_PATH)
        run("requestforge_invalidate", "partner", "--step", "app")
        pipeline = get_pipeline("partner")
        assert pipeline.peek_step("device") is not None and pipeline.peek_step("app") is None

    def test_all(self, configured: StubTokenEndpoint) -> None:
        get_client("billing").get(PROTECTED_PATH)
        get_client("partner-api").get(PROTECTED_PATH)
        out = run("requestforge_invalidate", "--all")
        assert "Invalidated billing" in out and "Invalidated partner/app" in out
        assert access_tokens() == []

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((), "Give one or more NAMEs, or --all"),
            (("billing", "--all"), "Give one or more NAMEs, or --all"),
            (("nope",), "No token-backed client or pipeline named 'nope'"),
            (("legacy",), "client 'legacy' has AUTH TYPE \"api_key\""),
            (("partner", "--step", "nope"), "No step of pipeline 'partner' named 'nope'.*'app', 'device'"),
            (("billing", "--step", "x"), "--step applies to pipelines"),
        ],
    )
    def test_mistakes_exit_non_zero(self, configured: StubTokenEndpoint, args: tuple[str, ...], message: str) -> None:
        with pytest.raises(CommandError, match=message):
            run("requestforge_invalidate", *args)


class TestCall:
    def test_successful_call_with_masked_curl(self, configured: StubTokenEndpoint) -> None:
        out = run("requestforge_call", "billing", "get", PROTECTED_PATH, "--curl")
        assert "HTTP 200" in out and '"ok": true' in out
        assert f"curl -X GET {configured.url}{PROTECTED_PATH}" in out and "Authorization: Bearer" in out
        token = get_token_manager("billing").peek_token().access_token
        assert token not in out

    def test_json_body_is_sent(self, configured: StubTokenEndpoint) -> None:
        out = run("requestforge_call", "billing", "POST", PROTECTED_PATH, "--data", '{"a": 1}')
        assert "HTTP 200" in out

    @responses.activate
    def test_secret_fields_of_the_response_are_masked(self, settings: Any) -> None:
        settings.REQUESTFORGE = {"CLIENTS": {"idp": {"BASE_URL": "https://idp.example"}}}
        secret = "very-secret-access-token-0123456789"
        responses.post("https://idp.example/token", json={"access_token": secret, "expires_in": 60}, headers={"Set-Cookie": "s=abc"})
        out = run("requestforge_call", "idp", "POST", "/token")
        assert secret not in out and "very****" in out
        assert '"expires_in": 60' in out

    def test_error_status_exits_non_zero(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(CommandError, match="public answered HTTP 401"):
            run("requestforge_call", "public", "GET", PROTECTED_PATH)

    def test_bad_json_and_unknown_client(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(CommandError, match="--data is not valid JSON"):
            run("requestforge_call", "billing", "POST", "/x", "--data", "{nope")
        with pytest.raises(CommandError, match="No client named 'nope'"):
            run("requestforge_call", "nope", "GET", "/")

    def test_connection_error_is_one_line(self, settings: Any) -> None:
        settings.REQUESTFORGE = {"CLIENTS": {"down": {"BASE_URL": "http://127.0.0.1:1", "TIMEOUT": 1}}}
        with pytest.raises(CommandError, match="ConnectionException"):
            run("requestforge_call", "down", "GET", "/")
