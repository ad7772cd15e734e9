"""Built-in observer hooks, called directly with a RequestContext (no HttpClient involved)."""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
import requests
import responses

from requestforge_django.http import builtin_hooks
from requestforge_django.http.builtin_hooks import (
    CORRELATION_ID_KEY,
    DEFAULT_LOGGER_NAME,
    RATE_LIMIT_KEY,
    SENSITIVE_HEADERS_KEY,
    AuthorizationHook,
    CorrelationIdHook,
    LoggingErrorHook,
    LoggingRequestHook,
    LoggingResponseHook,
    RateLimitInfo,
    RateLimitResponseHook,
    parse_rate_limit_headers,
)
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import ConfigurationError, ConnectionException
from requestforge_django.http.hooks import ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from requestforge_django.http.messages import HttpRequest, HttpResponse, RequestContext

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-part.signature-part-0123456789"
SESSION = "sessionid=abcdefghijklmnopqrstuvwxyz012345"
QUERY_SECRET = "qs-0123456789abcdefghij"


def make_request(**overrides) -> HttpRequest:
    values = {
        "method": "GET",
        "url": f"https://api.example.com/v1/items?access_token={QUERY_SECRET}&page=2",
        "headers": {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
    }
    values.update(overrides)
    return HttpRequest(**values)


def make_response(request: HttpRequest, status: int = 200, content: bytes = b"", headers=None, elapsed_ms: float = 12.3) -> HttpResponse:
    return HttpResponse(status_code=status, headers=headers or {}, content=content, url=request.url, request=request, elapsed_ms=elapsed_ms)


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG, logger=DEFAULT_LOGGER_NAME)
    return caplog


def only_record(caplog) -> logging.LogRecord:
    records = [r for r in caplog.records if r.name == DEFAULT_LOGGER_NAME]
    assert len(records) == 1, [r.getMessage() for r in records]
    return records[0]


class _Exploding:
    """Stand-in for a masking helper: calling it means formatting work was done."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("formatting work done while the log level is disabled")


@pytest.fixture
def no_formatting(monkeypatch):
    for name in ("mask_url", "mask_headers", "mask_mapping"):
        monkeypatch.setattr(builtin_hooks, name, _Exploding())


# -- LoggingRequestHook -----------------------------------------------------------------------


class TestLoggingRequestHook:
    def test_logs_method_masked_url_headers_and_attempt(self, debug_logs):
        request = make_request(params={"api_key": "pk-0123456789abcdefgh", "q": "shoes"})
        context = RequestContext(request)
        context.increment_attempt()

        assert LoggingRequestHook().before_request(request, context) is request

        record = only_record(debug_logs)
        message = record.getMessage()
        assert record.levelno == logging.DEBUG
        assert message.startswith("HTTP request GET https://api.example.com/v1/items?access_token=qs-0")
        assert "page=2" in message and "(attempt 2)" in message
        assert "'Authorization': 'Bearer eyJh****'" in message and "'Accept': 'application/json'" in message
        assert "'q': 'shoes'" in message
        for secret in (TOKEN, QUERY_SECRET, "pk-0123456789abcdefgh"):
            assert secret not in debug_logs.text
        assert (record.http_method, record.http_attempt) == ("GET", 2)
        assert QUERY_SECRET not in record.http_url

    def test_masks_configured_and_per_call_sensitive_headers(self, debug_logs):
        request = make_request(
            headers={"X-Tenant": "tenant-0123456789abcdef", "X-Session": "session-0123456789abcdef", "X-Plain": "visible"}
        )
        context = RequestContext(request, metadata={SENSITIVE_HEADERS_KEY: frozenset({"X-SESSION"})})
        LoggingRequestHook(sensitive_headers=["X-Tenant"]).before_request(request, context)
        assert "tenant-0123456789abcdef" not in debug_logs.text
        assert "session-0123456789abcdef" not in debug_logs.text
        assert "'X-Plain': 'visible'" in debug_logs.text

    def test_headers_can_be_left_out(self, debug_logs):
        LoggingRequestHook(log_headers=False).before_request(make_request(), RequestContext(make_request()))
        assert "Authorization" not in debug_logs.text and "headers=" not in debug_logs.text

    def test_body_is_not_logged_by_default(self, debug_logs):
        request = make_request(method="POST", json_data={"name": "visible-name"})
        LoggingRequestHook().before_request(request, RequestContext(request))
        assert "visible-name" not in debug_logs.text

    def test_json_body_is_logged_masked_when_asked(self, debug_logs):
        request = make_request(method="POST", json_data={"name": "visible-name", "password": "pw-0123456789abcdefgh"})
        LoggingRequestHook(log_body=True).before_request(request, RequestContext(request))
        assert "visible-name" in debug_logs.text
        assert "pw-0123456789abcdefgh" not in debug_logs.text

    def test_form_body_is_masked_and_raw_body_only_summarised(self, debug_logs):
        hook = LoggingRequestHook(log_body=True)
        form = make_request(method="POST", data={"grant_type": "client_credentials", "client_secret": "cs-0123456789abcdefgh"})
        raw = make_request(method="POST", data="client_secret=raw-0123456789abcdefgh")
        hook.before_request(form, RequestContext(form))
        hook.before_request(raw, RequestContext(raw))
        assert "client_credentials" in debug_logs.text
        assert "cs-0123456789abcdefgh" not in debug_logs.text
        assert "raw-0123456789abcdefgh" not in debug_logs.text
        assert "<str body, 36 long>" in debug_logs.text

    def test_long_bodies_are_truncated(self, debug_logs):
        request = make_request(method="POST", json_data={"blob": "x" * 10_000})
        LoggingRequestHook(log_body=True).before_request(request, RequestContext(request))
        message = only_record(debug_logs).getMessage()
        assert len(message) < 3_000 and message.endswith("chars)")

    def test_disabled_level_does_no_formatting_work(self, caplog, no_formatting):
        caplog.set_level(logging.INFO, logger=DEFAULT_LOGGER_NAME)
        request = make_request(params={"a": 1}, json_data={"b": 2})
        assert LoggingRequestHook(log_body=True).before_request(request, RequestContext(request)) is request
        assert caplog.records == []

    def test_enabled_level_does_use_the_masking_helpers(self, debug_logs, no_formatting):
        # Counterpart of the test above: proves the patch would catch formatting work.
        with pytest.raises(AssertionError, match="formatting work"):
            LoggingRequestHook().before_request(make_request(), RequestContext(make_request()))

    def test_logger_by_name_or_instance_and_custom_level(self, caplog):
        caplog.set_level(logging.INFO, logger="myapp.outbound")
        request = make_request()
        LoggingRequestHook(logger="myapp.outbound", level=logging.INFO).before_request(request, RequestContext(request))
        LoggingRequestHook(logger=logging.getLogger("myapp.outbound"), level=logging.INFO).before_request(request, RequestContext(request))
        assert [(r.name, r.levelno) for r in caplog.records] == [("myapp.outbound", logging.INFO)] * 2

    def test_hook_keeps_no_per_call_state(self, debug_logs):
        hook = LoggingRequestHook()
        before = copy.copy(vars(hook))
        for attempt in range(3):
            context = RequestContext(make_request(), attempt=attempt)
            hook.before_request(make_request(), context)
        assert vars(hook) == before

    def test_correlation_id_is_attached_to_the_record(self, debug_logs):
        context = RequestContext(make_request(), metadata={CORRELATION_ID_KEY: "cid-1"})
        LoggingRequestHook().before_request(make_request(), context)
        assert only_record(debug_logs).correlation_id == "cid-1"


# -- LoggingResponseHook / LoggingErrorHook ---------------------------------------------------


class TestLoggingResponseHook:
    def test_logs_status_masked_url_and_elapsed(self, debug_logs):
        request = make_request()
        response = make_response(request, status=201, headers={"Set-Cookie": SESSION, "Content-Type": "application/json"}, elapsed_ms=42.0)
        assert LoggingResponseHook().after_response(response, RequestContext(request)) is response
        record = only_record(debug_logs)
        message = record.getMessage()
        assert message.startswith("HTTP response 201 GET https://api.example.com/v1/items?access_token=qs-0")
        assert "in 42.0 ms" in message and "(attempt 1," in message
        assert "'Content-Type': 'application/json'" in message
        assert SESSION not in debug_logs.text and QUERY_SECRET not in debug_logs.text
        assert record.http_status == 201

    def test_json_body_is_masked_and_other_bodies_summarised(self, debug_logs):
        request = make_request()
        hook = LoggingResponseHook(log_body=True)
        token_body = b'{"access_token": "at-0123456789abcdefghij", "expires_in": 3600}'
        hook.after_response(make_response(request, content=token_body), RequestContext(request))
        hook.after_response(
            make_response(request, content=b"<html>secret-ish</html>", headers={"Content-Type": "text/html"}), RequestContext(request)
        )
        assert "at-0123456789abcdefghij" not in debug_logs.text
        assert "expires_in" in debug_logs.text
        assert "secret-ish" not in debug_logs.text and "<23 bytes, text/html>" in debug_logs.text

    def test_disabled_level_does_no_formatting_work(self, caplog, no_formatting):
        caplog.set_level(logging.WARNING, logger=DEFAULT_LOGGER_NAME)
        request = make_request()
        response = make_response(request, content=b"{}")
        assert LoggingResponseHook(log_body=True).after_response(response, RequestContext(request)) is response
        assert caplog.records == []


class TestLoggingErrorHook:
    def test_logs_exception_type_and_masked_text_at_warning(self, caplog):
        caplog.set_level(logging.WARNING, logger=DEFAULT_LOGGER_NAME)
        request = make_request(method="POST")
        error = ConnectionException("Connection refused", method="POST", url=request.url)
        context = RequestContext(request, attempt=2)
        LoggingErrorHook().on_error(error, context)
        record = only_record(caplog)
        assert record.levelno == logging.WARNING
        message = record.getMessage()
        assert message.startswith("HTTP request POST https://api.example.com/v1/items?access_token=qs-0")
        assert "(attempt 3): ConnectionException: Connection refused (POST https://" in message
        assert QUERY_SECRET not in caplog.text
        assert record.error_type == "ConnectionException"
        assert record.exc_info is None

    def test_below_level_logs_nothing(self, caplog, no_formatting):
        caplog.set_level(logging.ERROR, logger=DEFAULT_LOGGER_NAME)
        LoggingErrorHook().on_error(RuntimeError("x"), RequestContext(make_request()))
        assert caplog.records == []


def test_config_with_logging_registers_the_three_logging_hooks():
    config = HttpClientConfigBuilder().with_logging("myapp.http", level=logging.INFO).build()
    (request_hook,) = config.request_hooks
    (response_hook,) = config.response_hooks
    (error_hook,) = config.error_hooks
    assert isinstance(request_hook, LoggingRequestHook) and request_hook.logger.name == "myapp.http" and request_hook.level == logging.INFO
    assert isinstance(response_hook, LoggingResponseHook) and isinstance(error_hook, LoggingErrorHook)
    assert error_hook.level == logging.WARNING


def test_hooks_implement_the_interfaces_the_config_checks():
    assert isinstance(LoggingRequestHook(), RequestHookInterface)
    assert isinstance(LoggingResponseHook(), ResponseHookInterface)
    assert isinstance(LoggingErrorHook(), ErrorHookInterface)
    config = HttpClientConfigBuilder().with_hooks(CorrelationIdHook(), RateLimitResponseHook()).build()
    assert len(config.request_hooks) == 1 and len(config.response_hooks) == 1


# -- CorrelationIdHook ------------------------------------------------------------------------


class CountingFactory:
    def __init__(self):
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"id-{self.calls}"


class TestCorrelationIdHook:
    def test_adds_a_new_id_and_records_it(self):
        request = HttpRequest("GET", "/x")
        context = RequestContext(request)
        sent = CorrelationIdHook(id_factory=CountingFactory()).before_request(request, context)
        assert sent.header("x-correlation-id") == "id-1"
        assert context.metadata[CORRELATION_ID_KEY] == "id-1"
        assert request.header("X-Correlation-ID") is None

    def test_default_ids_are_unique_hex(self):
        hook = CorrelationIdHook()
        first = hook.before_request(HttpRequest("GET", "/x"), RequestContext(HttpRequest("GET", "/x"))).header("X-Correlation-ID")
        second = hook.before_request(HttpRequest("GET", "/x"), RequestContext(HttpRequest("GET", "/x"))).header("X-Correlation-ID")
        assert first != second and len(first) == 32 and int(first, 16) >= 0

    def test_same_id_on_every_attempt_of_one_call(self):
        factory = CountingFactory()
        hook = CorrelationIdHook(id_factory=factory)
        request = HttpRequest("GET", "/x")
        context = RequestContext(request, max_retries=3)
        sent = []
        for _ in range(4):
            sent.append(hook.before_request(request, context).header("X-Correlation-ID"))
            context.increment_attempt()
        assert sent == ["id-1"] * 4 and factory.calls == 1

    def test_each_call_gets_its_own_id(self):
        hook = CorrelationIdHook(id_factory=CountingFactory())
        ids = {
            hook.before_request(HttpRequest("GET", "/x"), RequestContext(HttpRequest("GET", "/x"))).header("X-Correlation-ID")
            for _ in range(3)
        }
        assert ids == {"id-1", "id-2", "id-3"}

    def test_existing_header_is_kept_and_recorded(self):
        factory = CountingFactory()
        request = HttpRequest("GET", "/x", headers={"x-correlation-id": "caller-id"})
        context = RequestContext(request)
        assert CorrelationIdHook(id_factory=factory).before_request(request, context) is request
        assert context.metadata[CORRELATION_ID_KEY] == "caller-id" and factory.calls == 0

    def test_provider_id_is_preferred_over_a_new_one(self):
        factory = CountingFactory()
        hook = CorrelationIdHook(header_name="X-Request-ID", id_factory=factory, provider=lambda: "inbound-42")
        sent = hook.before_request(HttpRequest("GET", "/x"), RequestContext(HttpRequest("GET", "/x")))
        assert sent.header("X-Request-ID") == "inbound-42" and factory.calls == 0

    def test_provider_without_id_falls_back_to_the_factory(self):
        hook = CorrelationIdHook(id_factory=CountingFactory(), provider=lambda: None)
        assert hook.before_request(HttpRequest("GET", "/x"), RequestContext(HttpRequest("GET", "/x"))).header("X-Correlation-ID") == "id-1"

    def test_failing_provider_falls_back_to_the_factory_and_warns(self, caplog):
        def broken() -> str:
            raise RuntimeError("no inbound request")

        hook = CorrelationIdHook(id_factory=CountingFactory(), provider=broken)
        sent = hook.before_request(HttpRequest("GET", "/x"), RequestContext(HttpRequest("GET", "/x")))
        assert sent.header("X-Correlation-ID") == "id-1"
        assert "provider" in caplog.text and "no inbound request" in caplog.text

    def test_id_already_in_metadata_is_used(self):
        context = RequestContext(HttpRequest("GET", "/x"), metadata={CORRELATION_ID_KEY: "seeded"})
        sent = CorrelationIdHook(id_factory=CountingFactory()).before_request(context.request, context)
        assert sent.header("X-Correlation-ID") == "seeded"

    def test_rejects_an_empty_header_name(self):
        with pytest.raises(ConfigurationError):
            CorrelationIdHook(header_name=" ")


# -- AuthorizationHook ------------------------------------------------------------------------


class TestAuthorizationHook:
    def test_asks_the_provider_on_every_attempt(self):
        values = iter(["Bearer first", "Bearer second"])
        hook = AuthorizationHook(lambda: next(values))
        request = HttpRequest("GET", "/x", headers={"authorization": "stale"})
        context = RequestContext(request)
        assert dict(hook.before_request(request, context).headers) == {"Authorization": "Bearer first"}
        context.increment_attempt()
        assert hook.before_request(request, context).header("Authorization") == "Bearer second"
        assert request.header("Authorization") == "stale"

    def test_empty_value_leaves_the_request_alone(self):
        request = HttpRequest("GET", "/x")
        assert AuthorizationHook(lambda: "").before_request(request, RequestContext(request)) is request

    def test_value_is_masked_in_request_logs(self, debug_logs):
        request = HttpRequest("GET", "https://h/x")
        context = RequestContext(request)
        sent = AuthorizationHook(lambda: f"Bearer {TOKEN}").before_request(request, context)
        LoggingRequestHook().before_request(sent, context)
        assert TOKEN not in debug_logs.text and "Bearer eyJh****" in debug_logs.text

    def test_custom_header_name_is_registered_for_masking(self, debug_logs):
        request = HttpRequest("GET", "https://h/x")
        context = RequestContext(request, metadata={SENSITIVE_HEADERS_KEY: frozenset({"x-other"})})
        sent = AuthorizationHook(lambda: "user-credential-0123456789", header_name="X-On-Behalf-Of").before_request(request, context)
        assert sent.header("X-On-Behalf-Of") == "user-credential-0123456789"
        assert context.metadata[SENSITIVE_HEADERS_KEY] == {"x-other", "x-on-behalf-of"}
        LoggingRequestHook().before_request(sent, context)
        assert "user-credential-0123456789" not in debug_logs.text

    def test_repr_contains_no_value(self):
        assert TOKEN not in repr(AuthorizationHook(lambda: TOKEN))

    def test_rejects_a_non_callable_provider(self):
        with pytest.raises(ConfigurationError):
            AuthorizationHook(TOKEN)


# -- RateLimitResponseHook --------------------------------------------------------------------

NOW = 1_700_000_000.0


def rate_limit_of(headers, *, now: float = NOW):
    hook = RateLimitResponseHook(clock=lambda: now)
    request = HttpRequest("GET", "/x")
    context = RequestContext(request)
    response = make_response(request, headers=headers)
    assert hook.after_response(response, context) is response
    return context.metadata.get(RATE_LIMIT_KEY)


class TestRateLimitResponseHook:
    def test_parses_x_ratelimit_headers(self):
        info = rate_limit_of({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "30"})
        assert info == RateLimitInfo(limit=100, remaining=7, reset_seconds=30.0, retry_after=None)

    def test_parses_ietf_headers_case_insensitively(self):
        info = rate_limit_of({"ratelimit-limit": "100, 100;w=60", "RATELIMIT-REMAINING": "0", "RateLimit-Reset": "12"})
        assert info == RateLimitInfo(limit=100, remaining=0, reset_seconds=12.0)

    def test_ietf_headers_win_over_x_headers(self):
        info = rate_limit_of({"RateLimit-Remaining": "3", "X-RateLimit-Remaining": "9", "X-RateLimit-Limit": "50"})
        assert (info.limit, info.remaining) == (50, 3)

    def test_falls_back_to_x_header_when_ietf_value_is_garbage(self):
        assert rate_limit_of({"RateLimit-Limit": "lots", "X-RateLimit-Limit": "60"}).limit == 60

    def test_epoch_reset_is_turned_into_seconds_from_now(self):
        assert rate_limit_of({"X-RateLimit-Reset": str(int(NOW) + 90)}).reset_seconds == 90.0
        assert rate_limit_of({"X-RateLimit-Reset": str(int(NOW) - 90)}).reset_seconds == 0.0

    def test_retry_after_seconds_and_http_date(self):
        assert rate_limit_of({"Retry-After": "120"}).retry_after == 120.0
        when = datetime.fromtimestamp(NOW + 45, tz=timezone.utc)
        assert rate_limit_of({"Retry-After": format_datetime(when, usegmt=True)}).retry_after == 45.0
        past = datetime.fromtimestamp(NOW - 45, tz=timezone.utc)
        assert rate_limit_of({"Retry-After": format_datetime(past, usegmt=True)}).retry_after == 0.0

    @pytest.mark.parametrize(
        "garbage", ["", "  ", "abc", "-5", "nan", "inf", "1e400", "12abc", "Wed, 99 Foo 2015 99:99:99 GMT", "\x00", "1.5.3"]
    )
    def test_garbage_gives_none_fields_and_never_raises(self, garbage):
        headers = {
            "X-RateLimit-Limit": garbage,
            "X-RateLimit-Remaining": "5",
            "X-RateLimit-Reset": garbage,
            "Retry-After": garbage,
        }
        assert rate_limit_of(headers) == RateLimitInfo(limit=None, remaining=5, reset_seconds=None, retry_after=None)

    def test_fractional_limit_is_rejected_but_fractional_reset_is_kept(self):
        info = rate_limit_of({"X-RateLimit-Limit": "10.5", "X-RateLimit-Reset": "1.5"})
        assert (info.limit, info.reset_seconds) == (None, 1.5)

    def test_nothing_usable_stores_nothing_and_skips_the_callback(self):
        seen = []
        hook = RateLimitResponseHook(on_limits=seen.append)
        request = HttpRequest("GET", "/x")
        for headers in ({}, {"Content-Type": "text/plain"}, {"X-RateLimit-Limit": "garbage"}):
            context = RequestContext(request)
            hook.after_response(make_response(request, headers=headers), context)
            assert RATE_LIMIT_KEY not in context.metadata
        assert seen == []

    def test_callback_receives_the_info(self):
        seen = []
        hook = RateLimitResponseHook(on_limits=seen.append, clock=lambda: NOW)
        request = HttpRequest("GET", "/x")
        context = RequestContext(request)
        hook.after_response(make_response(request, status=429, headers={"Retry-After": "3", "X-RateLimit-Remaining": "0"}), context)
        assert seen == [RateLimitInfo(remaining=0, retry_after=3.0)]
        assert context.metadata[RATE_LIMIT_KEY] is seen[0]

    def test_info_is_frozen(self):
        with pytest.raises(AttributeError):
            RateLimitInfo(limit=1).limit = 2

    def test_parse_function_is_usable_on_its_own(self):
        assert parse_rate_limit_headers({}) is None
        assert parse_rate_limit_headers({"Retry-After": "1"}, now=0.0) == RateLimitInfo(retry_after=1.0)

    @responses.activate
    def test_works_with_the_header_mapping_requests_returns(self):
        responses.get(
            "https://api.example.com/limited",
            status=429,
            headers={"x-ratelimit-limit": "10", "X-RATELIMIT-REMAINING": "0", "retry-after": "7"},
        )
        raw = requests.get("https://api.example.com/limited", timeout=5)
        request = HttpRequest("GET", "https://api.example.com/limited")
        response = HttpResponse(status_code=raw.status_code, headers=raw.headers, content=raw.content, url=raw.url, request=request)
        context = RequestContext(request)
        RateLimitResponseHook(clock=lambda: NOW).after_response(response, context)
        assert context.metadata[RATE_LIMIT_KEY] == RateLimitInfo(limit=10, remaining=0, reset_seconds=None, retry_after=7.0)


@pytest.mark.parametrize("value", ["1e2", "+5", "-1", "inf", "nan", "0x10", "5 seconds"])
def test_rate_limit_hook_and_retry_strategy_read_retry_after_the_same_way(value: str) -> None:
    """One parser: what the retry strategy ignores, the hook does not report either (they used to disagree on 1e2 and +5)."""
    from requestforge_django.http.retry import parse_retry_after

    assert parse_retry_after(value) is None
    assert parse_rate_limit_headers({"Retry-After": value}, now=0.0) is None
