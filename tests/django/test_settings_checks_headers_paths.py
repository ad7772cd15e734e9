"""E040 (header names and values that cannot be sent) and E041 (missing CA bundle or certificate files).

Both used to pass ``manage.py check`` and then fail every call at run time with a raw
``ValueError`` / ``OSError``; a line break in a value is also header injection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.django.test_settings_checks import ids, reported, with_client, with_steps

BASE = "https://b.example.com"


@pytest.mark.parametrize(
    ("headers", "key", "fragment"),
    [
        ({"X-Tenant": "a\r\nX-Injected: 1"}, '["HEADERS"]["X-Tenant"]', "line break"),
        ({"X-Tenant": "a\nb"}, '["HEADERS"]["X-Tenant"]', "line break"),
        ({"X-Tenant": "a\0b"}, '["HEADERS"]["X-Tenant"]', "NUL"),
        ({"X Tenant": "a"}, '["HEADERS"]["X Tenant"]', "not a valid header name"),
        ({"X-Tenant:": "a"}, '["HEADERS"]["X-Tenant:"]', "not a valid header name"),
    ],
)
def test_e040_client_header_that_cannot_be_sent(headers: dict[str, str], key: str, fragment: str) -> None:
    message = reported(with_client("billing", {"BASE_URL": BASE, "HEADERS": headers}), "requestforge.E040", key, fragment)
    assert "billing" in message.msg
    assert "X-Injected" not in message.msg  # the value is never echoed


def test_e040_pipeline_step_header() -> None:
    step = {"NAME": "a", "URL": "https://auth.partner.com/token", "HEADERS": {"X-Device": "d\r\n"}}
    reported(with_steps([step]), "requestforge.E040", '["STEPS"][0]["HEADERS"]["X-Device"]', "line break")


def test_ordinary_headers_pass() -> None:
    headers = {"User-Agent": "shop/1.0 (+https://shop.example.com)", "X-Tenant": "a b\tc", "Accept": "*/*"}
    assert "requestforge.E040" not in ids(with_client("billing", {"BASE_URL": BASE, "HEADERS": headers}))


@pytest.mark.parametrize(
    ("client", "key"),
    [
        ({"VERIFY_SSL": "/nonexistent/ca-bundle.pem"}, '["VERIFY_SSL"]'),
        ({"CLIENT_CERT": "/nonexistent/client.pem"}, '["CLIENT_CERT"]'),
        ({"CLIENT_CERT": ["/nonexistent/client.pem", "/nonexistent/client.key"]}, '["CLIENT_CERT"][0]'),
    ],
)
def test_e041_missing_tls_file(client: dict[str, Any], key: str) -> None:
    reported(with_client("billing", {"BASE_URL": BASE, **client}), "requestforge.E041", key, "does not exist")


def test_e041_not_reported_for_existing_files(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    client = {"BASE_URL": BASE, "VERIFY_SSL": str(bundle), "CLIENT_CERT": [str(bundle), str(bundle)]}
    assert "requestforge.E041" not in ids(with_client("billing", client))
    # A folder of hashed CA certificates is a valid VERIFY_SSL too.
    assert "requestforge.E041" not in ids(with_client("billing", {"BASE_URL": BASE, "VERIFY_SSL": str(tmp_path)}))


# -- the client's trust and limit keys reach its HttpClient --------------------------------------------


def test_trust_and_limit_keys_reach_the_client_config(settings: Any) -> None:
    from requestforge_django import get_client

    settings.REQUESTFORGE = with_client(
        "billing",
        {
            "BASE_URL": BASE,
            "TRUSTED_ORIGINS": ["HTTPS://Auth.Example.com:443/"],
            "CROSS_ORIGIN_REDIRECTS": "refuse",
            "MAX_RESPONSE_BYTES": 4096,
            "TOTAL_TIMEOUT": 2.5,
        },
    )
    config = get_client("billing").config
    assert config.trusted_origins == ("https://auth.example.com",)
    assert (config.cross_origin_redirects, config.max_response_bytes, config.total_timeout) == ("refuse", 4096, 2.5)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("CROSS_ORIGIN_REDIRECTS", "follow", "must be one of"),
        ("MAX_RESPONSE_BYTES", 0, "integer >= 1"),
        ("TOTAL_TIMEOUT", -1, "number > 0"),
    ],
)
def test_trust_and_limit_keys_are_checked(key: str, value: Any, fragment: str) -> None:
    reported(with_client("billing", {"BASE_URL": BASE, key: value}), "requestforge.E003", f'["{key}"]', fragment)


@pytest.mark.parametrize("steps", [3, True, "abc"])
def test_steps_that_are_not_a_list_are_reported_not_a_crash(steps: Any) -> None:
    # Used to raise TypeError from the token-limit rule, which walked the raw STEPS.
    reported({"PIPELINES": {"partner": {"STEPS": steps}}}, "requestforge.E003", '["STEPS"]')
