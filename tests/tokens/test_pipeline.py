from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
import responses

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import (
    BodyTokenFetcher,
    FetchContext,
    HeaderTokenFetcher,
    InMemoryTokenStorage,
    PipelineConfigurationError,
    PipelineTokenProvider,
    TokenAuthHook,
    TokenData,
    TokenFetchPipeline,
    TokenManager,
)

from .fakes import T0, WAIT, CountingStorage, FakeStep, RecordingObserver, run_now, run_threads


@pytest.fixture
def steps(clock):
    return [
        FakeStep("device", clock, ttl=timedelta(days=30), lifetime=None),
        FakeStep("app", clock, depends_on=("device",), ttl=timedelta(hours=1)),
        FakeStep("user", clock, depends_on=("app",), ttl=timedelta(minutes=15)),
    ]


@pytest.fixture
def storage():
    return InMemoryTokenStorage()


@pytest.fixture
def pipeline(steps, storage, clock):
    return TokenFetchPipeline(steps, storage, cache_key_prefix="partner", clock=clock, refresh_ahead=60, run_renewal=run_now)


def calls(steps) -> list[int]:
    return [s.calls for s in steps]


class TestExecution:
    def test_runs_in_order_passing_tokens(self, pipeline, steps):
        token = pipeline.execute()
        assert token.access_token == "user-1"
        assert steps[1].seen == [{"device": "device-1"}]
        assert steps[2].seen == [{"app": "app-1"}]
        assert pipeline.step_names == ["device", "app", "user"]
        assert pipeline.get_step("app") is steps[1]
        assert pipeline.get_step("nope") is None

    def test_cached_steps_are_skipped(self, pipeline, steps):
        pipeline.execute()
        pipeline.execute()
        assert calls(steps) == [1, 1, 1]

    def test_keys_use_prefix(self, pipeline, storage):
        pipeline.execute()
        assert sorted(storage.keys()) == ["partner:app", "partner:device", "partner:user"]
        assert pipeline.step_cache_key("app") == "partner:app"

    def test_ttl_caps_token_expiry(self, pipeline):
        pipeline.execute()
        assert pipeline.peek_step("device").expires_at == T0 + timedelta(days=30)  # never-expiring token, 30-day ttl
        assert pipeline.peek_step("app").expires_at == T0 + timedelta(hours=1)  # token 1 h, ttl 1 h
        assert pipeline.peek_step("user").expires_at == T0 + timedelta(minutes=15)  # ttl shorter than token

    def test_token_shorter_than_ttl_wins(self, clock, storage):
        step = FakeStep("s", clock, ttl=timedelta(hours=2), lifetime=300)
        TokenFetchPipeline([step], storage, clock=clock).execute()
        assert storage.get("s").expires_at == T0 + timedelta(seconds=300)

    def test_expired_step_refetched_alone(self, pipeline, steps, clock):
        pipeline.execute()
        clock.advance(15 * 60)  # user expired, app/device still valid
        assert pipeline.execute().access_token == "user-2"
        assert calls(steps) == [1, 1, 2]
        assert steps[2].seen[-1] == {"app": "app-1"}

    def test_refresh_ahead_per_step(self, pipeline, steps, clock):
        pipeline.execute()
        clock.advance(15 * 60 - 30)  # user inside its window
        assert pipeline.execute().access_token == "user-2"
        assert calls(steps) == [1, 1, 2]

    def test_fetch_context_is_dict_like(self):
        ctx = FetchContext()
        token = TokenData(access_token="a")
        ctx.add_token("s", token)
        assert "s" in ctx and ctx["s"] is token and ctx.get_token("s") is token
        assert ctx.get_token("x") is None
        with pytest.raises(KeyError):
            ctx["x"]


class TestInvalidation:
    def test_invalidate_step_cascades_transitively(self, pipeline, steps, storage):
        pipeline.execute()
        pipeline.invalidate_step("device")
        assert storage.keys() == []
        pipeline.execute()
        assert calls(steps) == [2, 2, 2]

    def test_invalidate_middle_step_keeps_earlier(self, pipeline, steps):
        pipeline.execute()
        pipeline.invalidate_step("app")
        assert pipeline.peek_step("device") is not None
        pipeline.execute()
        assert calls(steps) == [1, 2, 2]
        assert steps[2].seen[-1] == {"app": "app-2"}

    def test_invalidate_last_step_only(self, pipeline, steps):
        pipeline.execute()
        pipeline.invalidate_step("user")
        pipeline.execute()
        assert calls(steps) == [1, 1, 2]

    def test_invalidate_all(self, pipeline, steps, storage):
        pipeline.execute()
        pipeline.invalidate_all()
        assert storage.keys() == []

    def test_invalidate_unknown_step(self, pipeline):
        with pytest.raises(ValueError, match="'nope'"):
            pipeline.invalidate_step("nope")

    def test_dependents_of_diamond(self, clock):
        a = FakeStep("a", clock)
        b = FakeStep("b", clock, depends_on=("a",))
        c = FakeStep("c", clock, depends_on=("a",))
        d = FakeStep("d", clock, depends_on=("b", "c"))
        pipeline = TokenFetchPipeline([a, b, c, d], clock=clock)
        assert pipeline.dependents_of("a") == ("b", "c", "d")
        assert pipeline.dependents_of("c") == ("d",)
        assert pipeline.dependents_of("d") == ()

    def test_observer_hears_each_invalidated_step(self, steps, clock):
        observer = RecordingObserver()
        pipeline = TokenFetchPipeline(steps, cache_key_prefix="p", clock=clock, observer=observer)
        pipeline.execute()
        pipeline.invalidate_step("app")
        assert [e[1] for e in observer.events if e[0] == "invalidated"] == ["p:app", "p:user"]


class TestForceRefresh:
    def test_force_refresh_refetches_every_step(self, pipeline, steps):
        pipeline.execute()
        assert pipeline.execute(force_refresh=True).access_token == "user-2"
        assert calls(steps) == [2, 2, 2]
        assert steps[2].seen[-1] == {"app": "app-2"}

    def test_concurrent_force_refreshes_fetch_each_step_once(self, steps, clock):
        storage = CountingStorage()
        pipeline = TokenFetchPipeline(steps, storage, cache_key_prefix="partner", clock=clock)
        pipeline.execute()
        steps[0].gate = threading.Event()
        steps[0].entered.clear()
        # All ten calls start before the first refresh completes: 10 x 3 snapshot reads + the leader's double-check.
        storage.gets, storage.signal_after_gets = 0, 31

        def opener():
            steps[0].entered.wait(WAIT)
            storage.reached.wait(WAIT)
            steps[0].gate.set()

        t = threading.Thread(target=opener)
        t.start()
        results, errors = run_threads(10, lambda i: pipeline.execute(force_refresh=True))
        t.join(WAIT)
        assert errors == []
        assert calls(steps) == [2, 2, 2]
        assert {r.access_token for r in results} == {"user-2"}

    def test_refresh_from_step(self, pipeline, steps):
        pipeline.execute()
        assert pipeline.refresh_from("app").access_token == "user-2"
        assert calls(steps) == [1, 2, 2]


class TestFailures:
    def test_step_failure_names_pipeline_and_step_and_caches_nothing(self, pipeline, steps, storage):
        steps[1].fail_with = AuthenticationException("token endpoint answered HTTP 500", status_code=500, step="app")
        with pytest.raises(AuthenticationException) as info:
            pipeline.execute()
        assert info.value.service_name == "partner"
        assert info.value.step == "app"
        assert info.value.status_code == 500
        assert storage.keys() == ["partner:device"]  # earlier step kept, failed and later steps not cached

        steps[1].fail_with = None
        pipeline.execute()
        assert calls(steps) == [1, 2, 1]

    def test_failure_leaves_other_steps_tokens_untouched(self, pipeline, steps, clock):
        pipeline.execute()
        before = {n: pipeline.peek_step(n) for n in ("device", "app")}
        clock.advance(15 * 60)
        steps[2].fail_with = AuthenticationException("down")
        with pytest.raises(AuthenticationException):
            pipeline.execute()
        assert {n: pipeline.peek_step(n) for n in ("device", "app")} == before
        assert pipeline.peek_step("user").access_token == "user-1"  # expired one left as it was, not half-replaced

    def test_unexpected_fetcher_error_is_wrapped(self, pipeline, steps):
        steps[0].fail_with = KeyError("bug")
        with pytest.raises(AuthenticationException) as info:
            pipeline.execute()
        assert info.value.step == "device"
        assert issubclass(info.value.original.exc_type, KeyError)

    def test_stale_if_error_per_step(self, pipeline, steps, clock):
        pipeline.execute()
        clock.advance(15 * 60 - 30)
        steps[2].fail_with = AuthenticationException("down")
        assert pipeline.execute().access_token == "user-1"


class TestValidation:
    def test_unknown_dependency(self, clock):
        with pytest.raises(PipelineConfigurationError, match="step 'b' depends on unknown step 'x'"):
            TokenFetchPipeline([FakeStep("a", clock), FakeStep("b", clock, depends_on=("x",))])

    def test_wrong_order(self, clock):
        with pytest.raises(ValueError, match="step 'b' depends on 'a', which comes after it"):
            TokenFetchPipeline([FakeStep("b", clock, depends_on=("a",)), FakeStep("a", clock)])

    def test_cycle(self, clock):
        with pytest.raises(ValueError, match=r"cycle.*'a'"):
            TokenFetchPipeline([FakeStep("a", clock, depends_on=("b",)), FakeStep("b", clock, depends_on=("a",))])

    def test_duplicate_names(self, clock):
        with pytest.raises(ValueError, match="duplicate step name 'a'"):
            TokenFetchPipeline([FakeStep("a", clock), FakeStep("a", clock)])

    def test_no_steps(self):
        with pytest.raises(ValueError):
            TokenFetchPipeline([])

    def test_not_a_fetcher(self):
        with pytest.raises(ValueError, match="TokenFetcherInterface"):
            TokenFetchPipeline([object()])  # type: ignore[list-item]

    def test_unvalidated_order_fails_when_fetching(self, clock):
        pipeline = TokenFetchPipeline([FakeStep("b", clock, depends_on=("a",)), FakeStep("a", clock)], validate_dependencies=False)
        with pytest.raises(ValueError, match="step 'b' needs 'a'"):
            pipeline.execute()


class TestConcurrency:
    def test_cold_pipeline_fetches_each_step_once(self, pipeline, steps):
        steps[0].gate = threading.Event()

        def opener():
            steps[0].entered.wait(WAIT)
            steps[0].gate.set()

        t = threading.Thread(target=opener)
        t.start()
        results, errors = run_threads(50, lambda i: pipeline.execute())
        t.join(WAIT)
        assert errors == []
        assert calls(steps) == [1, 1, 1]
        assert {r.access_token for r in results} == {"user-1"}


class TestPipelineProvider:
    def test_manager_over_pipeline(self, pipeline, steps, clock):
        manager = TokenManager(PipelineTokenProvider(pipeline, "partner-api"), clock=clock)
        assert manager.get_token().access_token == "user-1"
        assert manager.service_name == "partner-api"
        manager.get_token()
        assert calls(steps) == [1, 1, 1]

    def test_manager_invalidation_reaches_the_pipeline(self, pipeline, steps, clock):
        """Without it the manager would refetch and get the same cached last-step token back."""
        manager = TokenManager(PipelineTokenProvider(pipeline, "partner-api", refresh_from_step="user"), clock=clock)
        manager.get_token()
        manager.invalidate_token()
        assert manager.get_token().access_token == "user-2"
        assert calls(steps) == [1, 1, 2]

    def test_401_refetches_through_refresh_from_step(self, pipeline, steps, clock):
        manager = TokenManager(PipelineTokenProvider(pipeline, "partner-api", refresh_from_step="app"), clock=clock)
        hook = TokenAuthHook(manager)
        from requestforge_django.http.messages import HttpMethod, HttpRequest, RequestContext

        request = HttpRequest(HttpMethod.GET, "/x")
        hook.before_request(request, RequestContext(request))
        hook.refresh_auth()
        assert manager.get_token().access_token == "user-2"
        assert calls(steps) == [1, 2, 2]

    def test_force_refresh_without_refresh_step_refetches_all(self, pipeline, steps, clock):
        manager = TokenManager(PipelineTokenProvider(pipeline, "partner-api"), clock=clock)
        manager.get_token()
        assert manager.force_refresh().access_token == "user-2"
        assert calls(steps) == [2, 2, 2]

    def test_refresh_token_is_single_flight_refresh_from_step(self, pipeline, steps):
        provider = PipelineTokenProvider(pipeline, "partner-api", refresh_from_step="user")
        first = provider.fetch_token()
        assert provider.refresh_token(first).access_token == "user-2"
        assert calls(steps) == [1, 1, 2]
        assert provider.pipeline is pipeline

    def test_unknown_refresh_step(self, pipeline):
        with pytest.raises(ValueError, match="'nope'"):
            PipelineTokenProvider(pipeline, "x", refresh_from_step="nope")


@responses.activate
def test_three_step_http_pipeline_with_templates():
    base = "https://auth.partner.com"
    responses.post(f"{base}/v1/device/register", headers={"X-Device-Token": "dev-tok"})
    responses.post(f"{base}/v1/app/token", json={"access_token": "app-tok", "expires_in": 3600})
    responses.post(f"{base}/v1/user/token", json={"data": {"token": "user-tok"}})
    pipeline = TokenFetchPipeline(
        [
            HeaderTokenFetcher(
                "device_token", base, "/v1/device/register", request_headers={"X-Device-ID": "d-1"}, token_header="X-Device-Token"
            ),
            BodyTokenFetcher(
                "app_token", base, "/v1/app/token", request_data={"client_id": "app"}, request_headers={"X-Device-Token": "{device_token}"},
                depends_on=["device_token"], ttl=timedelta(hours=1),
            ),
            BodyTokenFetcher(
                "user_token", base, "/v1/user/token", request_json={"user": "u"}, request_headers={"Authorization": "Bearer {app_token}"},
                token_field="data.token", depends_on=["app_token"], ttl=timedelta(minutes=15),
            ),
        ],
        cache_key_prefix="partner",
    )  # fmt: skip
    assert pipeline.execute().access_token == "user-tok"
    assert responses.calls[1].request.headers["X-Device-Token"] == "dev-tok"
    assert responses.calls[2].request.headers["Authorization"] == "Bearer app-tok"
    pipeline.execute()
    assert len(responses.calls) == 3


BAD_ANSWERS = {
    "html": ({"body": "<html>maintenance</html>", "content_type": "text/html"}, "non-JSON (text/html, 24 bytes)"),
    "server_error": ({"status": 500, "json": {"error": "server_error"}}, "HTTP 500"),
    "no_token_field": ({"json": {"token_type": "bearer"}}, "no 'access_token' field"),
    "negative_expires_in": ({"json": {"access_token": "a", "expires_in": -3}}, "'expires_in' is negative"),
    "absurd_expires_in": ({"json": {"access_token": "a", "expires_in": 1e15}}, "'expires_in' is absurdly large"),
    "timeout": ({"body": requests.exceptions.ReadTimeout("slow")}, "timed out"),
    "refused": ({"body": requests.exceptions.ConnectionError("refused")}, "unreachable"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
@responses.activate
def test_http_step_failure_names_pipeline_and_step_and_caches_nothing(case):
    reply, expected = BAD_ANSWERS[case]
    base = "https://auth.partner.com"
    responses.post(f"{base}/device", headers={"X-T": "dev"})
    responses.post(f"{base}/app", **reply)
    storage = InMemoryTokenStorage()
    storage.set("unrelated", TokenData(access_token="keep-me"))
    pipeline = TokenFetchPipeline(
        [
            HeaderTokenFetcher("device", base, "/device", token_header="X-T"),
            BodyTokenFetcher("app", base, "/app", depends_on=["device"]),
        ],
        storage,
        cache_key_prefix="partner",
    )
    with pytest.raises(AuthenticationException) as info:
        pipeline.execute()
    assert (info.value.service_name, info.value.step) == ("partner", "app")
    assert expected in str(info.value)
    assert sorted(storage.keys()) == ["partner:device", "unrelated"]
    assert storage.get("unrelated").access_token == "keep-me"
    device = storage.get("partner:device")

    # Through a manager too: the error still names the pipeline and step, and nothing else moves.
    manager = TokenManager(PipelineTokenProvider(pipeline, "partner-api"), storage)
    with pytest.raises(AuthenticationException) as info:
        manager.get_token()
    assert (info.value.service_name, info.value.step) == ("partner", "app")
    assert storage.get("token:partner-api") is None
    assert storage.get("partner:device") == device
