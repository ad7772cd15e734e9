"""Validate before caching, scrub what was sent, bound the answer (issue 12).

Real loopback servers answer the token requests. Each bad answer must be a typed
:class:`AuthenticationException` naming the service (and step), with nothing cached, so
the very next call fetches again and succeeds when the endpoint answers well.
"""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.http.messages import HttpRequest
from requestforge_django.http.secrets import Secret
from requestforge_django.tokens import (
    BodyTokenFetcher,
    ClientCredentialsTokenProvider,
    HeaderTokenFetcher,
    InMemoryTokenStorage,
    PasswordGrantTokenProvider,
    TokenData,
    TokenFetchPipeline,
    TokenManager,
)
from requestforge_django.tokens.data import MAX_TOKEN_LENGTH
from requestforge_django.tokens.parsing import scrub, sent_values
from requestforge_django.tokens.providers import fetch_deadline
from tests.support.partner_server import PartnerServer as _PartnerServer
from tests.support.partner_server import Reply

from .fakes import WAIT, SharedBackend, SharedLeaseStorage


def PartnerServer() -> _PartnerServer:
    """The recording partner server, quiet: a client that stops reading (the size cap) breaks its write on purpose."""
    return _PartnerServer(quiet=True)


SECRET = "client-secret-canary-31337"
PASSWORD = "step-password-canary-4242"
REFRESH = "refresh-token-canary-5555"
DEVICE_TOKEN = "device-token-canary-7777"
PIN = "98765432"
GOOD = {"access_token": "good-token", "token_type": "Bearer", "expires_in": 3600}
TOKENS_DIR = str(Path(__file__).resolve().parents[2] / "requestforge_django" / "tokens")


@pytest.fixture
def server() -> Iterator[_PartnerServer]:
    with PartnerServer() as running:
        yield running


def script(server: _PartnerServer, method: str, path: str, *replies: Reply) -> None:
    """Answer ``path`` with ``replies`` in order, then keep answering the last one."""
    queue = list(replies)

    def answer(_received: object) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    server.route(method, path, answer)


def provider(server: _PartnerServer, **kw: object) -> ClientCredentialsTokenProvider:
    kw.setdefault("service_name", "billing")
    return ClientCredentialsTokenProvider(f"{server.url}/oauth/token", "my-client", SECRET, **kw)  # type: ignore[arg-type]


# -- validate before caching ----------------------------------------------------------------------

BAD_BODIES = {
    "header_injection_in_token_type": ({**GOOD, "token_type": "Bearer\r\nX-Injected: 1"}, "token_type"),
    "two_word_token_type": ({**GOOD, "token_type": "Bearer extra"}, "token_type"),
    "non_ascii_token": ({**GOOD, "access_token": "tök-123"}, "non-ASCII"),
    "empty_token": ({**GOOD, "access_token": ""}, "not a non-empty string"),
    "space_in_token": ({**GOOD, "access_token": "two words"}, "space"),
    "nul_in_token": ({**GOOD, "access_token": "to\x00ken"}, "line break or NUL"),
    "line_break_in_token": ({**GOOD, "access_token": "tok\r\nX-Injected: 1"}, "line break or NUL"),
    "overlong_token": ({**GOOD, "access_token": "a" * (MAX_TOKEN_LENGTH + 1)}, f"more than the {MAX_TOKEN_LENGTH} allowed"),
    "zero_expires_in": ({**GOOD, "expires_in": 0}, "expire at once"),
    "negative_expires_in": ({**GOOD, "expires_in": -30}, "negative"),
    "expires_in_below_minimum": ({**GOOD, "expires_in": 2}, "shorter than the minimum token lifetime"),
}

STEP_BAD_BODIES = {name: case for name, case in BAD_BODIES.items() if "token_type" not in name}


class TestProviderAnswers:
    @pytest.mark.parametrize("body,match", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
    def test_bad_answer_is_typed_not_cached_and_the_next_call_fetches_again(self, server, body, match) -> None:
        script(server, "POST", "/oauth/token", Reply(200, body), Reply(200, GOOD))
        storage = InMemoryTokenStorage()
        manager = TokenManager(provider(server), storage)
        with pytest.raises(AuthenticationException, match=match) as info:
            manager.get_token()
        assert info.value.service_name == "billing"
        assert "X-Injected" not in str(info.value) and "tök" not in str(info.value)  # described, never quoted
        assert storage.keys() == []
        assert manager.get_token().access_token == "good-token"
        assert len(server.requests_to("/oauth/token")) == 2

    def test_a_good_token_at_the_length_limit_is_accepted(self, server) -> None:
        script(server, "POST", "/oauth/token", Reply(200, {**GOOD, "access_token": "a" * MAX_TOKEN_LENGTH}))
        assert len(provider(server).fetch_token().access_token) == MAX_TOKEN_LENGTH

    def test_min_lifetime_is_configurable_but_zero_is_never_accepted(self, server) -> None:
        script(server, "POST", "/oauth/token", Reply(200, {**GOOD, "expires_in": 1}), Reply(200, {**GOOD, "expires_in": 0}))
        assert provider(server, min_lifetime=0).fetch_token().lifetime == 1
        with pytest.raises(AuthenticationException, match="expire at once"):
            provider(server, min_lifetime=0).fetch_token()

    def test_custom_provider_tokens_are_validated_by_the_manager(self) -> None:
        from requestforge_django.tokens import TokenProviderInterface

        class Custom(TokenProviderInterface):
            service_name = "custom"
            answers = [TokenData(access_token="tok", token_type="Bearer\nX: 1"), TokenData(access_token="fine")]

            def fetch_token(self) -> TokenData:
                return self.answers.pop(0)

        storage = InMemoryTokenStorage()
        manager = TokenManager(Custom(), storage)
        with pytest.raises(AuthenticationException, match="token_type") as info:
            manager.get_token()
        assert info.value.service_name == "custom" and storage.keys() == []
        assert manager.get_token().access_token == "fine"

    def test_default_lifetime_below_the_minimum_is_a_configuration_error(self, server) -> None:
        with pytest.raises(ConfigurationError, match="default_lifetime"):
            provider(server, default_lifetime=2)


def header_pipeline(server: _PartnerServer, **step: object) -> TokenFetchPipeline:
    device = HeaderTokenFetcher("device", server.url, "/device", token_header="X-Device-Token", **step)  # type: ignore[arg-type]
    return TokenFetchPipeline([device], InMemoryTokenStorage(), cache_key_prefix="p", name="partner")


class TestStepAnswers:
    @pytest.mark.parametrize(
        "value,match",
        [("tök-123", "non-ASCII"), ("two words", "space"), ("a" * (MAX_TOKEN_LENGTH + 1), "more than")],
        ids=["non_ascii", "space", "overlong"],
    )
    def test_header_fetcher_validates_before_caching(self, server, value, match) -> None:
        script(server, "POST", "/device", Reply(200, {}, {"X-Device-Token": value}), Reply(200, {}, {"X-Device-Token": "dev-ok"}))
        pipeline = header_pipeline(server)
        with pytest.raises(AuthenticationException, match=match) as info:
            pipeline.execute()
        assert (info.value.service_name, info.value.step) == ("partner", "device")
        assert pipeline.peek_step("device") is None
        assert pipeline.execute().access_token == "dev-ok"

    # A step's token_type is its configured one, whatever the body says (checked at construction, below).
    @pytest.mark.parametrize("body,match", list(STEP_BAD_BODIES.values()), ids=list(STEP_BAD_BODIES))
    def test_body_fetcher_validates_before_caching(self, server, body, match) -> None:
        script(server, "POST", "/app", Reply(200, body), Reply(200, GOOD))
        step = BodyTokenFetcher("app", server.url, "/app")
        pipeline = TokenFetchPipeline([step], InMemoryTokenStorage(), cache_key_prefix="p", name="partner")
        with pytest.raises(AuthenticationException, match=match) as info:
            pipeline.execute()
        assert (info.value.service_name, info.value.step) == ("partner", "app")
        assert pipeline.peek_step("app") is None
        assert pipeline.execute().access_token == "good-token"

    @pytest.mark.parametrize("token_type", ["Bearer X", "Bearer\r\nX-Injected: 1", "Bäarer"])
    def test_configured_token_type_must_be_one_word(self, token_type) -> None:
        with pytest.raises(ValueError, match="token_type"):
            BodyTokenFetcher("app", "https://auth.example.com", "/t", token_type=token_type)

    @pytest.mark.parametrize("ttl", [0, 0.5, 4.9, timedelta(seconds=1)])
    def test_step_ttl_below_the_minimum_lifetime_is_refused(self, ttl) -> None:
        with pytest.raises(ValueError, match="ttl"):
            BodyTokenFetcher("app", "https://auth.example.com", "/t", ttl=ttl)
        assert BodyTokenFetcher("app", "https://auth.example.com", "/t", ttl=ttl or 1, min_lifetime=0).ttl is not None

    def test_header_step_default_lifetime_below_the_minimum_is_refused(self) -> None:
        with pytest.raises(ValueError, match="default_lifetime"):
            HeaderTokenFetcher("d", "https://auth.example.com", "/d", token_header="X-T", default_lifetime=1)


# -- size cap -------------------------------------------------------------------------------------


class TestSizeCap:
    def test_answer_above_the_cap_is_typed_and_not_cached(self, server) -> None:
        script(server, "POST", "/oauth/token", Reply(200, {**GOOD, "padding": "x" * 8000}), Reply(200, GOOD))
        storage = InMemoryTokenStorage()
        manager = TokenManager(provider(server, max_response_bytes=4096), storage)
        with pytest.raises(AuthenticationException, match="larger than max_response_bytes") as info:
            manager.get_token()
        assert info.value.service_name == "billing" and storage.keys() == []
        assert manager.get_token().access_token == "good-token"

    def test_default_cap_refuses_a_two_megabyte_answer(self, server) -> None:
        script(server, "POST", "/oauth/token", Reply(200, {**GOOD, "padding": "x" * (2 * 1024 * 1024)}))
        with pytest.raises(AuthenticationException, match=r"\(1048576 bytes\)") as info:
            provider(server).fetch_token()
        assert info.value.service_name == "billing"

    def test_step_answer_above_the_cap(self, server) -> None:
        script(server, "POST", "/app", Reply(200, {**GOOD, "padding": "x" * 8000}))
        step = BodyTokenFetcher("app", server.url, "/app", max_response_bytes=4096)
        with pytest.raises(AuthenticationException) as info:
            TokenFetchPipeline([step], InMemoryTokenStorage(), name="partner").execute()
        assert (info.value.service_name, info.value.step) == ("partner", "app")


# -- overall deadline, kept inside the lease ----------------------------------------------------------


class TrickleServer:
    """Sends a 200 and its headers at once, then the body one byte per ``interval`` seconds, forever."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self.connected.set()
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                while not self.stop.wait(self.interval):
                    conn.sendall(b" ")
            except OSError:
                return

    def __enter__(self) -> TrickleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._thread.join(WAIT)
        self._sock.close()


def run_timed(fn: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}

    def target() -> None:
        started = time.monotonic()
        try:
            result["value"] = fn()
        except BaseException as exc:  # the test inspects it
            result["error"] = exc
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


class TestDeadline:
    LOCK_TIMEOUT = 3.0

    def test_fetch_deadline_stays_inside_the_lease(self) -> None:
        assert fetch_deadline(10.0, 30.0) == 10.0
        assert fetch_deadline(10.0, 10.0) == 9.0
        assert fetch_deadline(30.0, 3.0) == 2.0

    def test_trickling_endpoint_fails_within_the_deadline_and_waiters_get_a_typed_error(self) -> None:
        deadline = fetch_deadline(30.0, self.LOCK_TIMEOUT)  # what the registry computes: 2 s
        backend = SharedBackend()  # two "processes" sharing one token store and lease table

        def manager() -> TokenManager:
            # Per-read timeout 30 s: only the overall deadline can end a fetch that gets a byte per second.
            trickling = ClientCredentialsTokenProvider(
                f"{trickle.url}/oauth/token", "my-client", SECRET, service_name="billing", timeout=30.0, deadline=deadline
            )
            return TokenManager(trickling, SharedLeaseStorage(backend), lock_timeout=self.LOCK_TIMEOUT)

        with TrickleServer() as trickle:
            first, second = manager(), manager()
            leader, leader_result = run_timed(first.get_token)
            assert trickle.connected.wait(WAIT)
            follower, follower_result = run_timed(first.get_token)  # same process: waits on the flight
            assert backend.leases, "the leader holds the lease"
            other, other_result = run_timed(second.get_token)  # other process: waits on the lease
            for thread in (leader, follower, other):
                thread.join(4 * self.LOCK_TIMEOUT)
                assert not thread.is_alive(), "a caller hung"
        for result in (leader_result, follower_result, other_result):
            assert isinstance(result.get("error"), AuthenticationException), result
            assert result["error"].service_name == "billing"
        assert f"timed out: Total timeout of {deadline:g} s exceeded" in str(leader_result["error"])
        # The holder gave up before its lease could expire under it.
        assert leader_result["elapsed"] < self.LOCK_TIMEOUT
        assert backend.tokens == {} and backend.leases == {}


# -- echo scrubbing --------------------------------------------------------------------------------


def assert_clean(exc: BaseException, *values: str) -> None:
    texts = [str(exc), repr(exc), pickle.dumps(exc).decode("latin-1")]
    if isinstance(exc, AuthenticationException):
        texts += [exc.message, exc.error or "", exc.error_description or "", exc.url or ""]
    for text in texts:
        for value in values:
            assert value not in text, f"{value!r} leaked into {text[:200]!r}"


class TestEchoScrubbing:
    def pipeline(self, server: _PartnerServer, **app: object) -> TokenFetchPipeline:
        server.route("POST", "/device", Reply(200, {}, {"X-Device-Token": DEVICE_TOKEN}))
        device = HeaderTokenFetcher("device", server.url, "/device", token_header="X-Device-Token")
        options: dict[str, object] = {
            "depends_on": ["device"],
            "request_headers": {"X-Trace": "trace-value-77", "X-Device": "{device}"},
            "request_data": {"pin": PIN, "password": PASSWORD, "device": "{device}"},
            **app,
        }
        step = BodyTokenFetcher("app", server.url, "/app", **options)  # type: ignore[arg-type]
        return TokenFetchPipeline([device, step], InMemoryTokenStorage(), cache_key_prefix="p", name="partner")

    def test_every_sent_value_echoed_in_an_error_is_scrubbed(self, server) -> None:
        echo = f"pin {PIN} wrong for device {DEVICE_TOKEN} ({PASSWORD}, trace trace-value-77)"
        script(server, "POST", "/app", Reply(400, {"error": f"bad_{PIN}", "error_description": echo}))
        with pytest.raises(AuthenticationException) as info:
            self.pipeline(server).execute()
        assert info.value.step == "app"
        assert_clean(info.value, PIN, DEVICE_TOKEN, PASSWORD, "trace-value-77")
        assert_clean(info.value.__cause__, PIN, DEVICE_TOKEN, PASSWORD, "trace-value-77")
        assert info.value.error_description == "pin **** wrong for device **** (****, trace ****)"

    def test_echo_in_json_fields_and_content_type_is_scrubbed(self, server) -> None:
        script(
            server,
            "POST",
            "/app",
            Reply(200, {"access_token": "ok", "expires_in": f"{PIN}x"}),
            Reply(502, f"<p>{PIN}</p>", {"Content-Type": f"text/{PIN}"}),
        )
        pipeline = self.pipeline(server)
        with pytest.raises(AuthenticationException, match="not a number") as info:
            pipeline.execute()
        assert_clean(info.value, PIN)
        with pytest.raises(AuthenticationException, match="non-JSON") as info:
            pipeline.execute()
        assert_clean(info.value, PIN)

    def test_error_url_has_no_query_parameters(self, server) -> None:
        script(server, "POST", "/app", Reply(400, {"error": "invalid_request"}))
        with pytest.raises(AuthenticationException) as info:
            self.pipeline(server, request_params={"device": "{device}"}).execute()
        assert info.value.url == f"{server.url}/app"
        assert_clean(info.value, DEVICE_TOKEN)

    @pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
    def test_provider_echo_of_client_id_secret_and_basic_header_is_scrubbed(self, server, auth_method) -> None:
        def echo(received) -> Reply:
            text = f"{received.header('Authorization')} / {received.body.decode()}"
            return Reply(401, {"error": "invalid_client", "error_description": text})

        server.route("POST", "/oauth/token", echo)
        with pytest.raises(AuthenticationException) as info:
            provider(server, auth_method=auth_method, extra_params={"tenant": "tenant-canary"}).fetch_token()
        assert_clean(info.value, SECRET, "my-client", "tenant-canary", "Basic bXk")

    def test_sent_values_cover_every_field_but_protocol_constants(self) -> None:
        request = HttpRequest(
            "POST",
            "https://auth.example.com/t",
            headers={"Accept": "application/json", "X-Trace": "trace-1"},
            params={"q": "param-1"},
            data={"grant_type": "client_credentials", "pin": PIN, "nested": ["list-1"]},
        )
        sent = sent_values(request, extra=["extra-1", None])
        assert all(isinstance(value, Secret) for value in sent)
        assert sorted(value.reveal() for value in sent) == sorted(["trace-1", "param-1", PIN, "list-1", "extra-1"])
        assert scrub("pin=98765432 (98765432) trace-1", sent) == "pin=**** (****) ****"


# -- frame locals (what Django's DEBUG page shows) ------------------------------------------------------


def token_layer_locals(exc: BaseException) -> list[tuple[str, str, str]]:
    """(function, name, repr) of every local of every token-layer frame in ``exc``'s traceback."""
    found = []
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename.startswith(TOKENS_DIR):
            found += [(frame.f_code.co_name, name, repr(value)) for name, value in frame.f_locals.items()]
        tb = tb.tb_next
    return found


class TestFrameLocals:
    def test_provider_and_parser_frames_show_secrets_masked(self, server) -> None:
        script(server, "POST", "/oauth/token", Reply(400, {"error": "invalid_grant", "error_description": "no"}))
        password = PasswordGrantTokenProvider(
            f"{server.url}/oauth/token", "alice", PASSWORD, client_id="app", client_secret=SECRET, service_name="legacy"
        )
        for call in (password.fetch_token, lambda: password.refresh_token(TokenData(access_token="a", refresh_token=REFRESH))):
            with pytest.raises(AuthenticationException) as info:
                call()
            frames = token_layer_locals(info.value)
            functions = {function for function, _, _ in frames}
            assert {"_request_token", "token_from_response", "check_status"} <= functions
            for function, name, shown in frames:
                for secret in (SECRET, PASSWORD, REFRESH):
                    assert secret not in shown, f"{secret!r} in local {name!r} of {function}()"
            secrets_arg = next(shown for function, name, shown in frames if function == "check_status" and name == "secrets")
            assert "Secret('****')" in secrets_arg

    def test_step_frames_show_earlier_tokens_and_passwords_masked(self, server) -> None:
        server.route("POST", "/device", Reply(200, {}, {"X-Device-Token": DEVICE_TOKEN}))
        script(server, "POST", "/app", Reply(400, {"error": "invalid_request"}))
        device = HeaderTokenFetcher("device", server.url, "/device", token_header="X-Device-Token")
        app = BodyTokenFetcher(
            "app",
            server.url,
            "/app",
            depends_on=["device"],
            request_headers={"X-Device": "{device}", "X-Api-Key": Secret(SECRET)},
            request_data={"password": PASSWORD, "grant": "{device.access_token}"},
        )
        with pytest.raises(AuthenticationException) as info:
            TokenFetchPipeline([device, app], InMemoryTokenStorage(), name="partner").execute()
        frames = token_layer_locals(info.value) + token_layer_locals(info.value.__cause__)
        assert {"fetch", "_extract_token", "token_from_response"} <= {function for function, _, _ in frames}
        for function, name, shown in frames:
            for secret in (SECRET, PASSWORD, DEVICE_TOKEN):
                assert secret not in shown, f"{secret!r} in local {name!r} of {function}()"
        sent = server.requests_to("/app")[0]
        assert (sent.header("X-Device"), sent.header("X-Api-Key")) == (DEVICE_TOKEN, SECRET)
        assert f"password={PASSWORD}" in sent.body.decode() and f"grant={DEVICE_TOKEN}" in sent.body.decode()


# -- the settings: TOKEN_MIN_LIFETIME, TOKEN_MAX_BYTES, LOCK_TIMEOUT, checked and wired ----------------------

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379"}}
OAUTH = {"TYPE": "client_credentials", "TOKEN_URL": "https://auth.example.com/token", "CLIENT_ID": "id", "CLIENT_SECRET": SECRET}


def problems(setting: dict[str, object], check_id: str) -> list[str]:
    from requestforge_django.setting.validate import validate_settings

    return [p.message for p in validate_settings(setting, caches=CACHES) if p.id == check_id]


def with_step(**step: object) -> dict[str, object]:
    return {"PIPELINES": {"partner": {"STEPS": [{"NAME": "a", "URL": "https://auth.partner.com/t", **step}]}}}


class TestSettings:
    def test_defaults_pass(self) -> None:
        from requestforge_django.setting.validate import validate_settings

        setting = {"CLIENTS": {"billing": {"BASE_URL": "https://b.example.com", "AUTH": OAUTH}}, **with_step(TTL=3600)}
        assert [p for p in validate_settings(setting, caches=CACHES) if p.is_error] == []

    def test_e045_lifetimes_set_below_the_minimum(self) -> None:
        assert problems({"TOKEN_DEFAULT_LIFETIME": 3}, "requestforge.E045") == [
            'REQUESTFORGE["TOKEN_DEFAULT_LIFETIME"] is 3s, shorter than TOKEN_MIN_LIFETIME (5s).'
        ]
        [ttl] = problems({**with_step(TTL=20), "TOKEN_MIN_LIFETIME": 30}, "requestforge.E045")
        assert ttl.startswith('REQUESTFORGE["PIPELINES"]["partner"]["STEPS"][0]["TTL"] is 20s, shorter than TOKEN_MIN_LIFETIME (30s)')
        assert problems({**with_step(TTL=20), "TOKEN_MIN_LIFETIME": 0}, "requestforge.E045") == []

    def test_e046_lock_timeout_leaves_no_time_for_a_fetch(self) -> None:
        setting = {"CLIENTS": {"billing": {"BASE_URL": "https://b.example.com", "AUTH": OAUTH}}, "LOCK_TIMEOUT": 1.5}
        [message] = problems(setting, "requestforge.E046")
        assert message.startswith('REQUESTFORGE["LOCK_TIMEOUT"] is 1.5s')
        assert problems({**setting, "LOCK_TIMEOUT": 2}, "requestforge.E046") == []
        assert problems({"LOCK_TIMEOUT": 1.5}, "requestforge.E046") == []  # no tokens, no lease

    @pytest.mark.parametrize("token_type", ["Bearer X", "Bäarer", "a" * 65])
    def test_e047_step_token_type_not_one_word(self, token_type: str) -> None:
        [message] = problems(with_step(TOKEN_TYPE=token_type), "requestforge.E047")
        assert message.startswith('REQUESTFORGE["PIPELINES"]["partner"]["STEPS"][0]["TOKEN_TYPE"]')
        assert token_type not in message

    @pytest.mark.parametrize(
        "setting", [{"TOKEN_MIN_LIFETIME": -1}, {"TOKEN_MIN_LIFETIME": "5"}, {"TOKEN_MAX_BYTES": 100}, {"TOKEN_MAX_BYTES": 1.5}]
    )
    def test_invalid_values_are_e003(self, setting: dict[str, object]) -> None:
        assert problems(setting, "requestforge.E003")

    def test_registry_builds_token_clients_with_the_limits(self) -> None:
        from requestforge_django.registry import build_oauth_provider, build_step
        from requestforge_django.setting.validate import parse_settings

        setting = {
            "LOCK_TIMEOUT": 6,
            "TOKEN_MIN_LIFETIME": 30,
            "TOKEN_MAX_BYTES": 4096,
            "CLIENTS": {"billing": {"BASE_URL": "https://b.example.com", "AUTH": OAUTH}},
            **with_step(TTL=60, TIMEOUT=3),
        }
        spec = parse_settings(setting, caches=CACHES)
        oauth = build_oauth_provider("billing", spec.clients["billing"].auth, spec, True)
        step = build_step(spec.pipelines["partner"].steps[0], spec)
        for built, deadline in ((oauth, 5.0), (step, 3.0)):  # min(10, 6 - 1) and min(3, 6 - 1)
            config = built._http.config
            assert (built.min_lifetime, built.deadline) == (30.0, deadline)
            assert (config.total_timeout, config.max_response_bytes, config.cross_origin_redirects) == (deadline, 4096, "refuse")
        assert oauth._http.config.trusted_origins == ("https://auth.example.com",)
        assert step._http.config.trusted_origins == ("https://auth.partner.com",)
