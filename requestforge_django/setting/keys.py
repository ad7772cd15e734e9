"""The keys of each section of the setting, derived from the spec dataclasses.

A section's key list is its spec's fields (:func:`~.specs.setting_keys`), so adding a key
to a spec adds it here; what stays written out is what a spec cannot say: which keys
an AUTH TYPE accepts or needs, and which keys a STRATEGY or FETCHER does not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Any

from .specs import (
    AuthSpec,
    BreakerSpec,
    ClientSpec,
    PipelineSpec,
    RateLimitSpec,
    RetrySpec,
    SettingsSpec,
    StepSpec,
    default_of,
    setting_key,
    setting_keys,
)

__all__ = [
    "ALL_AUTH_KEYS",
    "API_KEY_DEFAULT_HEADER",
    "AUTH_KEYS_BY_TYPE",
    "AUTH_SECRETS_BY_TYPE",
    "BREAKER_KEYS",
    "CLIENT_KEYS",
    "DEFAULTS",
    "PIPELINE_KEYS",
    "RATE_LIMIT_KEYS",
    "RETRY_KEYS",
    "RETRY_UNUSED",
    "SECRET_AUTH_KEYS",
    "STEP_KEYS",
    "STEP_UNUSED",
    "TEMPLATED_STEP_KEYS",
]


def _raw(value: Any) -> Any:
    """A spec default as a user writes it: a list for a tuple, a dict for a mapping."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


#: Top-level keys of ``REQUESTFORGE`` and their defaults (the public contract of the setting): the fields of SettingsSpec.
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {key: _raw(default_of(SettingsSpec, item.name)) for item in fields(SettingsSpec) if (key := setting_key(item)) is not None}
)
CLIENT_KEYS: tuple[str, ...] = setting_keys(ClientSpec)
RETRY_KEYS: tuple[str, ...] = setting_keys(RetrySpec)
#: Retry keys that a strategy does not use (reported as W003, not silently dropped).
RETRY_UNUSED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "none": frozenset(RETRY_KEYS) - {"STRATEGY"},
        "simple": frozenset({"MULTIPLIER", "JITTER"}),
        "exponential": frozenset(),
    }
)
BREAKER_KEYS: tuple[str, ...] = setting_keys(BreakerSpec)
RATE_LIMIT_KEYS: tuple[str, ...] = setting_keys(RateLimitSpec)

#: AUTH keys a CREDENTIAL row supplies (the secrets, and the client id and username that go with them).
SECRET_AUTH_KEYS: tuple[str, ...] = ("CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "TOKEN", "KEY")
#: AUTH keys each TYPE accepts (besides TYPE).
AUTH_KEYS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_credentials": (
            "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "EXTRA_PARAMS", "CREDENTIAL", "EXCLUDED_PATHS",
            "CLIENT_AUTH_METHOD", "REJECTED_STATUSES", "TOKEN_TIMEOUT",
        ),
        "password": (
            "TOKEN_URL", "USERNAME", "PASSWORD", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "EXTRA_PARAMS", "CREDENTIAL", "EXCLUDED_PATHS",
            "CLIENT_AUTH_METHOD", "REJECTED_STATUSES", "TOKEN_TIMEOUT",
        ),
        "bearer": ("TOKEN", "CREDENTIAL", "EXCLUDED_PATHS"),
        "api_key": ("KEY", "HEADER", "QUERY_PARAM", "CREDENTIAL", "EXCLUDED_PATHS"),
        "basic": ("USERNAME", "PASSWORD", "CREDENTIAL", "EXCLUDED_PATHS"),
        "pipeline": ("PIPELINE", "EXCLUDED_PATHS", "REJECTED_STATUSES"),
    }
)  # fmt: skip
#: Keys that must be present for each TYPE unless CREDENTIAL supplies them.
AUTH_SECRETS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_credentials": ("CLIENT_ID", "CLIENT_SECRET"),
        "password": ("USERNAME", "PASSWORD"),
        "bearer": ("TOKEN",),
        "api_key": ("KEY",),
        "basic": ("USERNAME", "PASSWORD"),
        "pipeline": (),
    }
)
ALL_AUTH_KEYS: tuple[str, ...] = ("TYPE", *dict.fromkeys(k for keys in AUTH_KEYS_BY_TYPE.values() for k in keys))
API_KEY_DEFAULT_HEADER = AuthSpec.API_KEY_DEFAULT_HEADER

PIPELINE_KEYS: tuple[str, ...] = setting_keys(PipelineSpec)
STEP_KEYS: tuple[str, ...] = setting_keys(StepSpec)
STEP_UNUSED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "header": frozenset({"TOKEN_FIELD", "EXPIRES_IN_FIELD", "REFRESH_TOKEN_FIELD", "OPTIONS"}),
        "body": frozenset({"TOKEN_HEADER", "OPTIONS"}),
    }
)
#: Step keys whose string values are templates (rendered by the token layer's fetchers).
TEMPLATED_STEP_KEYS: tuple[str, ...] = ("HEADERS", "DATA", "JSON", "PARAMS")
