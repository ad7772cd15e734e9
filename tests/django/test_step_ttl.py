"""A pipeline step's ``TTL`` as documented (docs/settings.md, docs/pipelines.md).

The TTL caps the token's own ``expires_in`` (the shorter wins); without ``expires_in``
the TTL is the lifetime; ``TOKEN_DEFAULT_LIFETIME`` applies only without both. The
device step of docs/pipelines.md (header fetcher, ``"TTL": 30 * 24 * 3600``) used to be
stored as "expires in 3600 s": ``TOKEN_DEFAULT_LIFETIME`` capped every TTL.
"""

from __future__ import annotations

import re
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from requestforge_django import get_client, get_pipeline
from requestforge_django.tokens.data import TokenData
from tests.support.partner_server import PartnerServer, Received, Reply

pytestmark = pytest.mark.django_db(databases=[])

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"
DAY = 24 * 3600


def docs_setting(server: PartnerServer) -> dict[str, Any]:
    """The first settings example of docs/pipelines.md (the device step's), its partner hosts pointed at ``server``."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S) if "REQUESTFORGE = {" in b and "device_token" in b]
    assert blocks, "docs/pipelines.md lost its settings example"
    code = blocks[0].replace("https://auth.partner.com", server.url).replace("https://api.partner.com", server.url)
    code = code.replace("import os\n", "")  # the block's os.environ is the stand-in below
    namespace: dict[str, Any] = {"os": types.SimpleNamespace(environ={"PARTNER_PASSWORD": "pw-for-tests"})}
    exec(code, namespace)  # our own documentation
    setting = namespace["REQUESTFORGE"]
    setting["REFRESH_AHEAD"] = 5
    return setting


def lifetime(token: TokenData | None) -> float:
    assert token is not None and token.expires_at is not None
    return (token.expires_at - datetime.now(timezone.utc)).total_seconds()


def stored(pipeline_name: str, step: str) -> TokenData | None:
    pipeline = get_pipeline(pipeline_name)
    return pipeline.storage.get(pipeline.step_cache_key(step))


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Tokens live in the default (local-memory) cache: start every test without them."""
    caches["default"].clear()


@pytest.fixture
def partner() -> Any:
    with PartnerServer() as server:
        server.route("POST", "/v1/device/register", Reply(200, {"ok": True}, {"X-Device-Token": "device-tok-1"}))
        # The app token comes back with a longer lifetime than its step's TTL (3600 s).
        server.route("POST", "/v1/app/token", Reply(200, {"access_token": "app-tok-1", "expires_in": 7200}))
        # The user token with a shorter one than its TTL (900 s).
        server.route("POST", "/v1/user/token", Reply(200, {"access_token": "user-tok-1", "expires_in": 300}))
        server.route("GET", "/user/profile", lambda r: Reply(200 if r.header("Authorization") == "Bearer user-tok-1" else 401))
        yield server


def test_the_docs_device_step_keeps_its_30_day_ttl(settings: Any, partner: PartnerServer) -> None:
    settings.REQUESTFORGE = docs_setting(partner)
    assert get_client("partner-api").get("/user/profile").status_code == 200
    device = stored("partner", "device_token")
    assert device is not None and device.access_token == "device-tok-1" and device.token_type == "Device"
    # Header fetcher, no expires_in: the TTL is the lifetime (it was capped at TOKEN_DEFAULT_LIFETIME, 3600 s).
    assert 30 * DAY - 60 < lifetime(device) <= 30 * DAY
    # expires_in 7200 > TTL 3600: the TTL wins.
    assert 3600 - 60 < lifetime(stored("partner", "app_token")) <= 3600
    # expires_in 300 < TTL 900: the token's own lifetime wins.
    assert 300 - 60 < lifetime(stored("partner", "user_token")) <= 300


def echo_token(expires_in: int | None) -> Any:
    def handler(_received: Received) -> Reply:
        body: dict[str, Any] = {"access_token": "tok-1"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return Reply(200, body)

    return handler


@pytest.mark.parametrize(
    ("fetcher", "ttl", "expires_in", "expected"),
    [
        ("body", 2 * 3600, None, 2 * 3600),  # no expires_in: the TTL, even above TOKEN_DEFAULT_LIFETIME
        ("body", 600, 1200, 600),  # TTL caps a longer expires_in
        ("body", 1200, 600, 600),  # a shorter expires_in wins
        ("body", None, 900, 900),  # no TTL: expires_in
        ("body", None, None, 3600),  # neither: TOKEN_DEFAULT_LIFETIME
        ("header", 7 * DAY, None, 7 * DAY),  # header steps never have expires_in: the TTL
        ("header", None, None, 3600),  # neither: TOKEN_DEFAULT_LIFETIME
    ],
)
def test_step_lifetime_rules(
    settings: Any, partner: PartnerServer, fetcher: str, ttl: float | None, expires_in: int | None, expected: float
) -> None:
    partner.route("POST", "/step", echo_token(expires_in))
    partner.route("POST", "/header-step", Reply(200, {}, {"X-Token": "tok-1"}))
    step: dict[str, Any] = {"NAME": "only", "FETCHER": fetcher}
    step["URL"] = partner.url + ("/header-step" if fetcher == "header" else "/step")
    if fetcher == "header":
        step["TOKEN_HEADER"] = "X-Token"
    if ttl is not None:
        step["TTL"] = ttl
    settings.REQUESTFORGE = {"REFRESH_AHEAD": 5, "TOKEN_DEFAULT_LIFETIME": 3600, "PIPELINES": {"p": {"STEPS": [step]}}}
    token = get_pipeline("p").execute()
    assert expected - 60 < lifetime(token) <= expected
    assert expected - 60 < lifetime(stored("p", "only")) <= expected
