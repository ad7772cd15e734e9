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
    CLIENT_AUTH_METHODS,
    OAUTH_AUTH_TYPES,
    AssertionSpec,
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
    "ASSERTION_KEYS",
    "API_KEY_DEFAULT_HEADER",
    "AUTH_KEYS_BY_TYPE",
    "AUTH_SECRETS_BY_TYPE",
    "BREAKER_KEYS",
    "CLIENT_AUTH_KEYS",
    "CLIENT_KEYS",
    "METHOD_SECRETS",
    "DEFAULTS",
    "PIPELINE_KEYS",
    "RATE_LIMIT_KEYS",
    "RETRY_KEYS",
    "RETRY_UNUSED",
    "SECRET_AUTH_KEYS",
    "STEP_KEYS",
    "STEP_UNUSED",
    "TEMPLATED_STEP_KEYS",
    "required_auth_keys",
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

#: AUTH keys a CREDENTIAL row supplies (the secrets, and the client id, username and key id that go with them).
SECRET_AUTH_KEYS: tuple[str, ...] = ("CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "TOKEN", "KEY", "PRIVATE_KEY", "KEY_ID")
#: AUTH keys of every OAuth TYPE: where the token endpoint is, how the client authenticates there, what is asked for.
_OAUTH_KEYS: tuple[str, ...] = (
    "TOKEN_URL", "ISSUER", "CLIENT_ID", "CLIENT_SECRET", "CLIENT_AUTH_METHOD", "PRIVATE_KEY", "KEY_ID", "ALGORITHM",
    "SCOPE", "AUDIENCE", "RESOURCE", "EXTRA_PARAMS", "CREDENTIAL", "EXCLUDED_PATHS", "REJECTED_STATUSES", "TOKEN_TIMEOUT",
)  # fmt: skip
#: AUTH keys each TYPE accepts (besides TYPE).
AUTH_KEYS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_credentials": _OAUTH_KEYS,
        "password": (*_OAUTH_KEYS, "USERNAME", "PASSWORD"),
        "jwt_bearer": (*_OAUTH_KEYS, "ASSERTION"),
        "token_exchange": (*_OAUTH_KEYS, "SUBJECT_TOKEN_FROM", "SUBJECT_TOKEN_TYPE", "REQUESTED_TOKEN_TYPE"),
        "bearer": ("TOKEN", "CREDENTIAL", "EXCLUDED_PATHS"),
        "api_key": ("KEY", "HEADER", "QUERY_PARAM", "CREDENTIAL", "EXCLUDED_PATHS"),
        "basic": ("USERNAME", "PASSWORD", "CREDENTIAL", "EXCLUDED_PATHS"),
        "pipeline": ("PIPELINE", "EXCLUDED_PATHS", "REJECTED_STATUSES"),
    }
)
#: Keys each TYPE needs whatever its CLIENT_AUTH_METHOD, unless CREDENTIAL supplies them (see :func:`required_auth_keys`).
AUTH_SECRETS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_credentials": (),
        "password": ("USERNAME", "PASSWORD"),
        "jwt_bearer": (),
        "token_exchange": (),
        "bearer": ("TOKEN",),
        "api_key": ("KEY",),
        "basic": ("USERNAME", "PASSWORD"),
        "pipeline": (),
    }
)
#: What each CLIENT_AUTH_METHOD authenticates the client with.
METHOD_SECRETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_secret_post": ("CLIENT_ID", "CLIENT_SECRET"),
        "client_secret_basic": ("CLIENT_ID", "CLIENT_SECRET"),
        "client_secret_jwt": ("CLIENT_ID", "CLIENT_SECRET"),
        "private_key_jwt": ("CLIENT_ID", "PRIVATE_KEY"),
    }
)
#: The TYPEs whose token requests must authenticate the client (the others may, when CLIENT_AUTH_METHOD says how).
CLIENT_AUTH_KEYS: frozenset[str] = frozenset({"client_credentials", "token_exchange"})


def required_auth_keys(type_: str, method: str | None) -> tuple[str, ...]:
    """The AUTH keys ``type_`` needs with CLIENT_AUTH_METHOD ``method`` (``None``: not given) unless CREDENTIAL supplies them.

    ``client_credentials`` and ``token_exchange`` always authenticate the client (the
    default method is ``client_secret_post``); ``password`` and ``jwt_bearer`` only when a
    method other than the default is asked for, so that a public client needs no secret.
    """
    keys = AUTH_SECRETS_BY_TYPE[type_]
    if type_ not in OAUTH_AUTH_TYPES:
        return keys
    if type_ in CLIENT_AUTH_KEYS or (method is not None and method != CLIENT_AUTH_METHODS[0]):
        keys = (*keys, *(key for key in METHOD_SECRETS[method or CLIENT_AUTH_METHODS[0]] if key not in keys))
    return keys


ALL_AUTH_KEYS: tuple[str, ...] = ("TYPE", *dict.fromkeys(k for keys in AUTH_KEYS_BY_TYPE.values() for k in keys))
API_KEY_DEFAULT_HEADER = AuthSpec.API_KEY_DEFAULT_HEADER
#: Keys of a ``jwt_bearer`` AUTH's ASSERTION: the fields of AssertionSpec.
ASSERTION_KEYS: tuple[str, ...] = setting_keys(AssertionSpec)

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
