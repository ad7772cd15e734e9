"""Token requests of OAuth clients use the client's ``TIMEOUT`` (or ``AUTH["TOKEN_TIMEOUT"]``).

They used a fixed 10 s that no setting could change: a client configured with
``TIMEOUT`` 30 failed against a 12 s token endpoint, and one with ``TIMEOUT`` 0.5 waited
10 s for its token. Now an OAuth client's token requests default to its ``TIMEOUT``
(the longer of a ``(connect, read)`` pair), ``TOKEN_TIMEOUT`` sets them explicitly, and
the whole exchange is still cut off at ``min(timeout, LOCK_TIMEOUT - 1 s)``. Pipeline
steps keep their own step ``TIMEOUT`` (default 10 s).

The slow endpoint holds its answer on an :class:`threading.Event` with a bound, so only
the client-side timeout is real time; the test releases the endpoint when it is done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.http.exceptions import AuthenticationException, TimeoutException
from requestforge_django.setting.validate import parse_settings, validate_settings
from requestforge_django.tokens.manager import TokenManager
from tests.support.partner_server import PartnerServer, Received, Reply

pytestmark = pytest.mark.django_db(databases=[])

#: How long the slow endpoint holds its answer unless released: far above the short
#: timeouts below, far below the 10 s the token requests used to wait.
HOLD = 2.0
TOKEN = Reply(200, {"access_token": "slow-token-1", "token_type": "Bearer", "expires_in": 3600})
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


class SlowTokenEndpoint:
    """A token endpoint that answers after ``hold`` seconds, or at once when released."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.release = threading.Event()

    def __call__(self, _received: Received) -> Reply:
        self.release.wait(self.hold)
        return TOKEN


@pytest.fixture
def slow() -> Iterator[tuple[PartnerServer, SlowTokenEndpoint]]:
    caches["default"].clear()
    endpoint = SlowTokenEndpoint(HOLD)
    with PartnerServer(quiet=True) as server:
        server.route("POST", "/oauth/token", endpoint)
        server.route("POST", "/step/token", endpoint)
        server.route("GET", "/api", lambda r: Reply(200 if r.header("Authorization") == "Bearer slow-token-1" else 401))
        try:
            yield server, endpoint
        finally:
            endpoint.release.set()


def oauth_client(server: PartnerServer, timeout: Any, **auth: Any) -> dict[str, Any]:
    return {
        "REFRESH_AHEAD": 5,
        "CLIENTS": {
            "billing": {
                "BASE_URL": server.url,
                "TIMEOUT": timeout,
                "AUTH": {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": server.url + "/oauth/token",
                    "CLIENT_ID": "id",
                    "CLIENT_SECRET": "secret-value-1",
                    **auth,
                },
            }
        },
    }


def timed_out(call: Any) -> tuple[AuthenticationException, float]:
    started = time.monotonic()
    with pytest.raises(AuthenticationException) as info:
        call()
    return info.value, time.monotonic() - started


def test_the_clients_timeout_bounds_its_token_requests(settings: Any, slow: tuple[PartnerServer, SlowTokenEndpoint]) -> None:
    server, _endpoint = slow
    settings.REQUESTFORGE = oauth_client(server, 0.5)
    error, elapsed = timed_out(lambda: get_client("billing").get("/api"))
    # Cut off at the client's 0.5 s, not after the endpoint's 2 s answer (the old fixed 10 s let it through).
    assert elapsed < HOLD - 0.5
    assert "timed out" in error.message and isinstance(error.original, TimeoutException)
    assert error.service_name == "billing"
    assert server.requests_to("/api") == []  # nothing was sent without a token


def test_token_timeout_overrides_a_longer_client_timeout(settings: Any, slow: tuple[PartnerServer, SlowTokenEndpoint]) -> None:
    server, _endpoint = slow
    settings.REQUESTFORGE = oauth_client(server, 30, TOKEN_TIMEOUT=0.5)
    _error, elapsed = timed_out(lambda: get_token_manager("billing").get_token())
    assert elapsed < HOLD - 0.5


def test_token_timeout_gives_a_slow_endpoint_more_time_than_the_client_timeout(
    settings: Any, slow: tuple[PartnerServer, SlowTokenEndpoint]
) -> None:
    server, endpoint = slow
    endpoint.hold = 0.8  # answers after 0.8 s: longer than TIMEOUT, within TOKEN_TIMEOUT
    settings.REQUESTFORGE = oauth_client(server, 0.5, TOKEN_TIMEOUT=5)
    assert get_token_manager("billing").get_token().access_token == "slow-token-1"


def test_a_slow_endpoint_within_the_clients_timeout_succeeds(settings: Any, slow: tuple[PartnerServer, SlowTokenEndpoint]) -> None:
    server, endpoint = slow
    endpoint.hold = 0.8
    settings.REQUESTFORGE = oauth_client(server, 3)
    assert get_client("billing").get("/api").status_code == 200


def test_pipeline_steps_keep_their_step_timeout(settings: Any, slow: tuple[PartnerServer, SlowTokenEndpoint]) -> None:
    server, _endpoint = slow
    step = {"NAME": "only", "URL": server.url + "/step/token", "TIMEOUT": 0.5}
    settings.REQUESTFORGE = {
        "REFRESH_AHEAD": 5,
        "PIPELINES": {"p": {"STEPS": [step]}},
        # The client's TIMEOUT is not the step's: the step's own TIMEOUT applies.
        "CLIENTS": {"api": {"BASE_URL": server.url, "TIMEOUT": 30, "AUTH": {"TYPE": "pipeline", "PIPELINE": "p"}}},
    }
    error, elapsed = timed_out(lambda: get_pipeline("p").execute())
    assert elapsed < HOLD - 0.5 and error.step == "only"


# -- what the registry builds (no network) ---------------------------------------------------------


def built_provider(settings: Any, timeout: Any, **top: Any) -> Any:
    auth = top.pop("auth", {})
    setting = {
        **top,
        "CLIENTS": {
            "billing": {
                "BASE_URL": "https://api.example.com",
                "TIMEOUT": timeout,
                "AUTH": {"TYPE": "password", "TOKEN_URL": "https://auth.example.com/t", "USERNAME": "u", "PASSWORD": "p", **auth},
            }
        },
    }
    settings.REQUESTFORGE = setting
    manager = get_token_manager("billing")
    assert isinstance(manager, TokenManager)
    return manager.provider


@pytest.mark.parametrize(
    ("timeout", "top", "expected"),
    [
        (30, {}, (30.0, 29.0)),  # the client's TIMEOUT; the deadline stays 1 s inside LOCK_TIMEOUT (30)
        (12, {"LOCK_TIMEOUT": 60}, (12.0, 12.0)),
        ((2, 12), {"LOCK_TIMEOUT": 60}, (12.0, 12.0)),  # the longer of (connect, read)
        (30, {"auth": {"TOKEN_TIMEOUT": 7}}, (7.0, 7.0)),
        (1, {"auth": {"TOKEN_TIMEOUT": 7}, "LOCK_TIMEOUT": 5}, (7.0, 4.0)),  # min(7, 5 - 1)
    ],
)
def test_the_provider_gets_the_token_timeout(settings: Any, timeout: Any, top: dict[str, Any], expected: tuple[float, float]) -> None:
    provider = built_provider(settings, timeout, **top)
    assert (provider.timeout, provider.deadline) == expected
    assert provider._http.config.total_timeout == expected[1]


def test_default_timeout_applies_to_clients_without_timeout(settings: Any) -> None:
    settings.REQUESTFORGE = {
        "DEFAULT_TIMEOUT": 4,
        "CLIENTS": {
            "billing": {
                "BASE_URL": "https://api.example.com",
                "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": "https://a.example.com/t", "CLIENT_ID": "i", "CLIENT_SECRET": "s"},
            }
        },
    }
    manager = get_token_manager("billing")
    assert isinstance(manager, TokenManager) and manager.provider.timeout == 4.0


# -- checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, "5", True, [1, 2]])
def test_e003_token_timeout_must_be_seconds_above_zero(bad: Any) -> None:
    setting = {
        "CLIENTS": {
            "billing": {
                "BASE_URL": "https://api.example.com",
                "AUTH": {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": "https://a.example.com/t",
                    "CLIENT_ID": "i",
                    "CLIENT_SECRET": "s",
                    "TOKEN_TIMEOUT": bad,
                },
            }
        }
    }
    messages = [p.message for p in validate_settings(setting, caches=LOCMEM) if p.id == "requestforge.E003"]
    assert any('["AUTH"]["TOKEN_TIMEOUT"]' in m for m in messages), messages


def test_token_timeout_accepts_a_timedelta_and_is_ignored_where_no_token_is_fetched() -> None:
    from datetime import timedelta

    setting = {
        "CLIENTS": {
            "billing": {
                "BASE_URL": "https://api.example.com",
                "AUTH": {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": "https://a.example.com/t",
                    "CLIENT_ID": "i",
                    "CLIENT_SECRET": "s",
                    "TOKEN_TIMEOUT": timedelta(seconds=12),
                },
            },
            "static": {"BASE_URL": "https://api.example.com", "AUTH": {"TYPE": "bearer", "TOKEN": "t", "TOKEN_TIMEOUT": 5}},
        }
    }
    spec = parse_settings({"CLIENTS": {"billing": setting["CLIENTS"]["billing"]}}, caches=LOCMEM)
    assert spec.clients["billing"].auth.token_timeout == 12.0
    warnings = [p.message for p in validate_settings(setting, caches=LOCMEM) if p.id == "requestforge.W003"]
    assert any('["static"]["AUTH"]["TOKEN_TIMEOUT"]' in m for m in warnings), warnings
