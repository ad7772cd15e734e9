"""``EXCLUDED_PATHS``: one normaliser and one matching rule for every auth type.

``EXCLUDED_PATHS: ["/public/"]`` used to send ``/public`` without credentials on bearer,
API-key and Basic clients (their normaliser dropped the trailing slash) and with them on
OAuth and pipeline clients (the token hook kept it). Every hook now uses
:mod:`requestforge_django.http.paths`; the same table runs through a real client of
every ``AUTH`` ``TYPE`` (and through each hook class directly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import caches

from requestforge_django import get_client
from requestforge_django.http.auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook, CompositeAuthHook
from requestforge_django.http.exceptions import ConfigurationError
from requestforge_django.http.hooks import AuthHookInterface
from requestforge_django.http.messages import HttpMethod, HttpRequest
from requestforge_django.http.paths import is_excluded_path, normalize_excluded_paths, request_path
from requestforge_django.tokens import TokenAuthHook, TokenManager
from tests.django.test_settings_checks import reported
from tests.support.partner_server import PartnerServer, Received, Reply
from tests.tokens.fakes import FakeClock, FakeProvider

pytestmark = pytest.mark.django_db(databases=[])

#: ``(EXCLUDED_PATHS, path requested relative to BASE_URL, sent without credentials?)``
TABLE: list[tuple[list[str], str, bool]] = [
    (["/public/"], "/public", True),  # the reported case: the trailing slash does not matter
    (["/public/"], "/public/", True),
    (["/public/"], "/public/x", True),
    (["/public"], "/public", True),
    (["/public"], "/public/", True),
    (["/public"], "/public/a/b", True),
    (["public"], "/public/x", True),  # a missing leading slash is added
    (["/public/./"], "/public", True),  # dot segments in the entry are resolved
    (["/public"], "/public?page=2", True),  # the query is not part of the path
    (["/public"], "/private/../public/x", True),  # matched against the path that goes on the wire
    (["/public"], "/public/../private", False),
    (["/public"], "/publicity", False),  # a prefix of a segment is not a match
    (["/public/"], "/publicity", False),
    (["/public"], "/api/public", False),  # entries are anchored at the start of the path
    (["/public"], "/Public", False),  # case matters
    (["/public"], "/public%2Fx", False),  # nothing is percent-decoded
    (["/health", "/public/"], "/health/live", True),
    (["/health", "/public/"], "/users", False),
]
IDS = [f"{entries}-{path}" for entries, path, _ in TABLE]

TOKEN = "static-token-value-1"
KEY = "api-key-value-1"


# -- the rule itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(("entries", "path", "excluded"), TABLE, ids=IDS)
def test_the_rule(entries: list[str], path: str, excluded: bool) -> None:
    assert is_excluded_path(request_path(path), normalize_excluded_paths(entries)) is excluded


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("/public/", "/public"),
        ("public", "/public"),
        (" /public// ", "/public"),
        ("/a/./b/../c/", "/a/c"),
        ("/Public", "/Public"),
    ],
)
def test_entries_are_normalized_one_way(given: str, normalized: str) -> None:
    assert normalize_excluded_paths([given]) == (normalized,)


@pytest.mark.parametrize("bad", ["/", "//", "/a/..", "", " ", "https://h/x", "/x?y=1", "/x#top", "/a b", None, 3])
def test_entries_that_are_not_paths_are_refused_by_every_hook(bad: Any) -> None:
    for build in HOOK_BUILDERS.values():
        with pytest.raises(ConfigurationError) as info:
            build([bad])
        assert info.value.field == "excluded_paths"


def test_a_bare_string_is_one_entry() -> None:
    assert normalize_excluded_paths("/health") == ("/health",)


def test_absolute_urls_are_matched_by_their_whole_path() -> None:
    excluded = normalize_excluded_paths(["/public"])
    assert request_path("https://api.example.com/v2/public/x?y=1") == "/v2/public/x"
    assert not is_excluded_path(request_path("https://api.example.com/v2/public/x"), excluded)
    assert is_excluded_path(request_path("https://api.example.com/public/x#frag"), excluded)
    assert request_path("https://api.example.com") == "/"
    assert request_path("https://api.example.com?x=/public") == "/"


def test_a_custom_hook_setting_raw_entries_gets_the_same_rule() -> None:
    class RawHook(AuthHookInterface):
        excluded_paths = ("/public/", "/")  # never normalised; the root entry is ignored, not "everything"

        def before_request(self, request: HttpRequest, context: Any) -> HttpRequest:
            return request

    hook = RawHook()
    assert not hook.should_authenticate(HttpRequest(HttpMethod.GET, "/public"))
    assert hook.should_authenticate(HttpRequest(HttpMethod.GET, "/users"))


# -- every hook class, directly -------------------------------------------------------------------


def _token_hook(entries: list[Any]) -> AuthHookInterface:
    return TokenAuthHook(TokenManager(FakeProvider(FakeClock())), excluded_paths=entries)


HOOK_BUILDERS: dict[str, Callable[[list[Any]], AuthHookInterface]] = {
    "bearer": lambda entries: BearerTokenAuthHook(TOKEN, excluded_paths=entries),
    "api_key": lambda entries: ApiKeyAuthHook(KEY, excluded_paths=entries),
    "api_key_query": lambda entries: ApiKeyAuthHook(KEY, excluded_paths=entries, query_param="api_key"),
    "basic": lambda entries: BasicAuthHook("user", "pw", excluded_paths=entries),
    "composite": lambda entries: CompositeAuthHook(BearerTokenAuthHook(TOKEN), excluded_paths=entries),
    "token": _token_hook,
    "token_via_manager": lambda entries: TokenManager(FakeProvider(FakeClock())).auth_hook(excluded_paths=entries),
}


@pytest.mark.parametrize("kind", HOOK_BUILDERS)
@pytest.mark.parametrize(("entries", "path", "excluded"), TABLE, ids=IDS)
def test_every_hook_class(kind: str, entries: list[str], path: str, excluded: bool) -> None:
    hook = HOOK_BUILDERS[kind](entries)
    assert hook.should_authenticate(HttpRequest(HttpMethod.GET, path)) is not excluded


# -- every AUTH TYPE, through a real client --------------------------------------------------------


def _has_authorization(received: Received) -> bool:
    return received.header("Authorization") is not None


def _has_key_header(received: Received) -> bool:
    return received.header("X-API-Key") == KEY


def _has_key_param(received: Received) -> bool:
    return parse_qs(urlsplit(received.path).query).get("api_key") == [KEY]


TOKEN_ANSWER = Reply(200, {"access_token": "oauth-token-1", "token_type": "Bearer", "expires_in": 3600})

#: AUTH TYPE -> (AUTH without URLs and EXCLUDED_PATHS, how to tell credentials arrived)
AUTH_TYPES: dict[str, tuple[dict[str, Any], Callable[[Received], bool]]] = {
    "bearer": ({"TYPE": "bearer", "TOKEN": TOKEN}, _has_authorization),
    "api_key": ({"TYPE": "api_key", "KEY": KEY}, _has_key_header),
    "api_key_query": ({"TYPE": "api_key", "KEY": KEY, "QUERY_PARAM": "api_key"}, _has_key_param),
    "basic": ({"TYPE": "basic", "USERNAME": "user", "PASSWORD": "pw"}, _has_authorization),
    "client_credentials": ({"TYPE": "client_credentials", "CLIENT_ID": "id", "CLIENT_SECRET": "secret"}, _has_authorization),
    "password": ({"TYPE": "password", "USERNAME": "user", "PASSWORD": "pw", "CLIENT_ID": "id"}, _has_authorization),
    "pipeline": ({"TYPE": "pipeline", "PIPELINE": "partner"}, _has_authorization),
}


@pytest.fixture
def partner() -> Iterator[PartnerServer]:
    caches["default"].clear()
    with PartnerServer() as server:
        server.route("POST", "/oauth/token", TOKEN_ANSWER)
        server.route("POST", "/step/token", TOKEN_ANSWER)
        server.route("*", "*", Reply(200))
        yield server


def client_setting(server: PartnerServer, auth_type: str, entries: list[str]) -> dict[str, Any]:
    auth = {**AUTH_TYPES[auth_type][0], "EXCLUDED_PATHS": entries}
    if auth["TYPE"] in ("client_credentials", "password"):
        auth["TOKEN_URL"] = server.url + "/oauth/token"
    return {
        "REFRESH_AHEAD": 5,
        # BASE_URL has a path of its own: entries are relative to it.
        "CLIENTS": {"api": {"BASE_URL": server.url + "/v2", "AUTH": auth}},
        "PIPELINES": {"partner": {"STEPS": [{"NAME": "only", "URL": server.url + "/step/token"}]}},
    }


@pytest.mark.parametrize("auth_type", AUTH_TYPES)
@pytest.mark.parametrize(("entries", "path", "excluded"), TABLE, ids=IDS)
def test_every_auth_type(settings: Any, partner: PartnerServer, auth_type: str, entries: list[str], path: str, excluded: bool) -> None:
    settings.REQUESTFORGE = client_setting(partner, auth_type, entries)
    assert get_client("api").get(path).status_code == 200
    api_calls = [r for r in partner.received if r.path.startswith("/v2")]
    assert len(api_calls) == 1
    assert AUTH_TYPES[auth_type][1](api_calls[0]) is not excluded


@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_excluded_calls_fetch_no_token(settings: Any, partner: PartnerServer, auth_type: str) -> None:
    settings.REQUESTFORGE = client_setting(partner, auth_type, ["/public/"])
    get_client("api").get("/public")
    assert partner.requests_to("/oauth/token") == [] and partner.requests_to("/step/token") == []


# -- the checks use the same normaliser -------------------------------------------------------------


@pytest.mark.parametrize(("bad", "fragment"), [("/", "root path"), ("https://h/x", "no scheme"), ("/x?y=1", "query")])
def test_e003_excluded_path_entries_that_no_hook_would_accept(bad: str, fragment: str) -> None:
    setting = {"CLIENTS": {"api": {"BASE_URL": "https://api.example.com", "AUTH": {"TYPE": "bearer", "TOKEN": TOKEN}}}}
    setting["CLIENTS"]["api"]["AUTH"]["EXCLUDED_PATHS"] = ["/ok", bad]
    reported(setting, "requestforge.E003", '["CLIENTS"]["api"]["AUTH"]["EXCLUDED_PATHS"][1]', fragment)


def test_the_checks_normalize_like_the_hooks() -> None:
    from requestforge_django.setting.validate import parse_client

    spec = parse_client(
        "api",
        {"BASE_URL": "https://a.example.com", "AUTH": {"TYPE": "pipeline", "PIPELINE": "p", "EXCLUDED_PATHS": ["public/"]}},
        pipelines=["p"],
    )
    assert spec.auth is not None and spec.auth.excluded_paths == ("/public",)
