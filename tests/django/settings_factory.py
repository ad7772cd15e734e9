"""``REQUESTFORGE`` values for the Django-layer tests, built around a running StubTokenEndpoint."""

from __future__ import annotations

from typing import Any

from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, StubTokenEndpoint

__all__ = ["requestforge_setting"]


def requestforge_setting(server: StubTokenEndpoint, cache: str, **overrides: Any) -> dict[str, Any]:
    """One OAuth client (``billing``), one pipeline (``partner``) and a client using it (``partner-api``)."""
    setting: dict[str, Any] = {
        "CACHE": cache,
        "KEY_PREFIX": "rf-test",
        "REFRESH_AHEAD": 5,
        "CLIENTS": {
            "billing": {
                "BASE_URL": server.url,
                "TIMEOUT": 5,
                "AUTH": {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": server.token_url,
                    "CLIENT_ID": server.client_id,
                    "CLIENT_SECRET": server.client_secret,
                },
            },
            "partner-api": {"BASE_URL": server.url, "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
            "public": {"BASE_URL": server.url},
        },
        "PIPELINES": {
            "partner": {
                "STEPS": [
                    {
                        "NAME": "device",
                        "FETCHER": "header",
                        "URL": server.url + DEVICE_PATH,
                        "HEADERS": {"X-Device-ID": server.device_id},
                        "TOKEN_HEADER": "X-Device-Token",
                        "TTL": 3600,
                    },
                    {
                        "NAME": "app",
                        "FETCHER": "body",
                        "URL": server.url + APP_TOKEN_PATH,
                        "HEADERS": {"X-Device-Token": "{device}"},
                        "DATA": {"client_id": server.app_client_id},
                        "DEPENDS_ON": ["device"],
                    },
                ]
            }
        },
    }
    setting.update(overrides)
    return setting
