"""The normalized, validated shape of the ``REQUESTFORGE`` setting, as frozen values.

:func:`requestforge_django.setting.parse_settings` turns the raw dict a user wrote
into these dataclasses: every key is present (defaults filled in), names are normalized
(``"POST"``, ``"client_credentials"``), durations are float seconds, mappings are
read-only. The registry builds clients and pipelines from these values only, so it never
has to re-check a setting or know a default, and the admin can produce the same values
from database rows.

These classes are the one source of the setting's keys and defaults: a field ``max_delay``
is the key ``MAX_DELAY`` (:func:`setting_key`; fields marked :data:`NOT_A_KEY` are not
keys), and its default is the default of the key (:func:`default_of`), which the key lists
and readers of :mod:`requestforge_django.setting` derive from. Where a core class of
:mod:`requestforge_django.http` has the same default, both import it from there (imports
point down).

Why frozen: one ``SettingsSpec`` is shared by every thread of a process until the
settings change, and a spec that cannot be mutated can be compared to decide whether a
client must be rebuilt.

Secrets never print. The AUTH secrets (``client_secret``, ``password``, ``token``,
``key``) and ``ENCRYPTION_KEYS`` are :class:`~requestforge_django.http.secrets.Secret`
values (a plain string given to a constructor is wrapped): they print as ``****`` in
any ``repr``, in a frame local on Django's error page, in a log line, and give their
value only to ``reveal()``, which the registry calls where it builds the hook or the
provider. Values whose consumers need plain strings (a client's ``HEADERS`` and
``PROXIES``, a step's ``HEADERS``/``DATA``/``JSON``/``PARAMS``/``OPTIONS``) stay plain
and are masked by each spec's ``repr``: client headers by name (secret-looking names
and ``SENSITIVE_HEADERS``), proxy and base URLs' passwords and secret query values,
and *every* value of a step's request fields, since a step's ``pin`` or ``device_id``
cannot be told from a harmless field by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from types import MappingProxyType
from typing import Any

from ..http.circuit_breaker import DEFAULT_FAILURE_THRESHOLD, DEFAULT_RECOVERY_TIMEOUT
from ..http.config import DEFAULT_MAX_REDIRECTS, DEFAULT_POOL_CONNECTIONS, DEFAULT_POOL_MAXSIZE, DEFAULT_TIMEOUT
from ..http.masking import mask_all, mask_headers, mask_mapping, mask_url
from ..http.retry import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MULTIPLIER,
    DEFAULT_RETRY_STATUSES,
    default_max_delay,
)
from ..http.secrets import Secret, secret_or_none

__all__ = [
    "AUTH_TYPES",
    "BUILTIN_FETCHERS",
    "CLIENT_AUTH_METHODS",
    "FROM_BASE_DELAY",
    "NOT_A_KEY",
    "OAUTH_AUTH_TYPES",
    "RETRY_STRATEGIES",
    "TOKEN_AUTH_TYPES",
    "AuthSpec",
    "BreakerSpec",
    "ClientSpec",
    "PipelineSpec",
    "RateLimitSpec",
    "RetrySpec",
    "SettingsSpec",
    "StepSpec",
    "default_of",
    "freeze",
    "setting_key",
    "setting_keys",
    "thaw",
]

#: AUTH TYPEs; the first three obtain tokens from an endpoint and so need the token cache.
AUTH_TYPES: tuple[str, ...] = ("client_credentials", "password", "pipeline", "bearer", "api_key", "basic")
#: The OAuth 2.0 TYPEs: a TOKEN_URL, a client id and secret, a CLIENT_AUTH_METHOD and a TOKEN_TIMEOUT.
OAUTH_AUTH_TYPES: frozenset[str] = frozenset(AUTH_TYPES[:2])
TOKEN_AUTH_TYPES: frozenset[str] = frozenset(AUTH_TYPES[:3])
#: AUTH CLIENT_AUTH_METHODs (how client_credentials / password send the client id and secret); the first is the default.
CLIENT_AUTH_METHODS: tuple[str, ...] = ("client_secret_post", "client_secret_basic")

#: RETRY STRATEGYs, mapped by the registry onto the ``http.retry`` strategies.
RETRY_STRATEGIES: tuple[str, ...] = ("none", "simple", "exponential")

#: FETCHER values with a built-in implementation; anything else must be a dotted import path.
BUILTIN_FETCHERS: tuple[str, ...] = ("header", "body")


#: ``field(metadata=NOT_A_KEY)``: a field that is not a key of the setting (a client's name is its key in CLIENTS).
NOT_A_KEY: Mapping[str, Any] = MappingProxyType({"setting_key": None})


def setting_key(item: Field[Any]) -> str | None:
    """The setting key a spec field reads (its name in capitals), or ``None`` for a field marked :data:`NOT_A_KEY`."""
    key: str | None = item.metadata.get("setting_key", item.name.upper())
    return key


def setting_keys(spec: type) -> tuple[str, ...]:
    """The setting keys of a spec class, in field order: the key list of its section."""
    return tuple(key for item in fields(spec) if (key := setting_key(item)) is not None)


def default_of(spec: type, name: str) -> Any:
    """The default of field ``name`` of a spec class (a factory's value for mutable ones); ``KeyError`` if it has none."""
    for item in fields(spec):
        if item.name != name:
            continue
        if item.default is not MISSING:
            return item.default
        if item.default_factory is not MISSING:
            return item.default_factory()
        break
    raise KeyError(f"{spec.__name__}.{name} has no default")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def freeze(value: Any) -> Any:
    """Deep read-only copy: dicts become ``MappingProxyType``, lists and tuples become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, e.g. for a JSON body or ``requests``."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def _masked_repr(spec: Any, maskers: Mapping[str, Callable[[Any], Any]]) -> str:
    """The dataclass ``repr`` of ``spec``, with the values of ``maskers``' fields passed through their masker."""
    parts = []
    for item in fields(spec):
        if not item.repr:
            continue
        value = getattr(spec, item.name)
        if item.name in maskers and value is not None:
            value = maskers[item.name](value)
        parts.append(f"{item.name}={value!r}")
    return f"{type(spec).__name__}({', '.join(parts)})"


def _mask_url_values(urls: Mapping[str, str]) -> dict[str, str]:
    return {scheme: mask_url(url, all_params=True) for scheme, url in urls.items()}


def _mask_every_value(value: Any) -> Any:
    """Keys and shape kept, every leaf masked: a step's fields cannot be told secret or not by name."""
    return mask_all(thaw(value))


def _mask_step_data(data: Any) -> Any:
    """A step's DATA: a form dict (every value masked) or an encoded form string (masked whole)."""
    return "****" if isinstance(data, (str, bytes)) else mask_all(thaw(data))


#: ``RetrySpec.max_delay`` meaning "not given": replaced by ``http.retry.default_max_delay(base_delay)`` on creation.
FROM_BASE_DELAY = -1.0


@dataclass(frozen=True)
class RetrySpec:
    """``RETRY``: which ``http.retry`` strategy a client uses and its parameters.

    ``base_delay`` is the fixed delay of ``"simple"`` and the first delay of
    ``"exponential"`` (then multiplied by ``multiplier`` per retry, capped at
    ``max_delay``); ``multiplier`` and ``jitter`` only apply to ``"exponential"``.
    ``max_delay`` not given (:data:`FROM_BASE_DELAY`) is ``http.retry.default_max_delay(base_delay)``:
    30 seconds, or ``base_delay`` if that is longer; it is filled in on creation.
    """

    strategy: str = "exponential"
    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = FROM_BASE_DELAY
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: bool = True
    retry_on_status: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_non_idempotent: bool = False
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.max_delay == FROM_BASE_DELAY:
            object.__setattr__(self, "max_delay", default_max_delay(self.base_delay))


@dataclass(frozen=True)
class BreakerSpec:
    """``CIRCUIT_BREAKER``: open after ``failure_threshold`` consecutive failures for ``recovery_timeout`` seconds.

    ``shared``: keep the state in the token cache so every process sees one breaker
    (one process's failures open it for all); otherwise each process counts alone.
    """

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    recovery_timeout: float = DEFAULT_RECOVERY_TIMEOUT
    shared: bool = False


@dataclass(frozen=True)
class RateLimitSpec:
    """``RATE_LIMIT``: a token bucket of ``rate`` requests per second holding at most ``burst``.

    ``BURST`` not given is ``http.rate_limit.default_burst(rate)`` (one second's worth, at least 1).

    ``wait``: a request without a permit waits for one (at most ``max_wait`` seconds,
    ``None`` = as long as it takes) instead of failing with ``RateLimitExceeded``.
    ``shared``: one bucket for all processes, kept in the token cache.
    """

    rate: float
    burst: int
    wait: bool = True
    max_wait: float | None = None
    shared: bool = False


@dataclass(frozen=True)
class AuthSpec:
    """``AUTH``: how a client authenticates; only the fields of its ``type`` are set.

    ``credential`` names an admin-edited ``Credential`` row whose secrets replace the
    secret fields here (which are then ``None``). ``header`` is the api_key header
    (``"X-API-Key"`` unless ``query_param`` is set instead).
    """

    type: str
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    scope: str | None = None
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    key: Secret | None = None
    header: str | None = None
    query_param: str | None = None
    credential: str | None = None
    pipeline: str | None = None
    extra_params: Mapping[str, str] = field(default_factory=_empty)
    excluded_paths: tuple[str, ...] = ()
    #: ``CLIENT_AUTH_METHOD`` (client_credentials, password): client id and secret in the form body or as HTTP Basic.
    client_auth_method: str = CLIENT_AUTH_METHODS[0]
    #: ``REJECTED_STATUSES`` (token auth types): statuses meaning "token rejected" (besides a Bearer ``invalid_token`` challenge).
    rejected_statuses: frozenset[int] = frozenset({401})
    #: ``TOKEN_TIMEOUT`` (client_credentials, password): seconds for a token request; ``None``: the client's ``TIMEOUT``.
    token_timeout: float | None = None

    #: ``HEADER`` of an ``api_key`` auth that sets neither HEADER nor QUERY_PARAM.
    API_KEY_DEFAULT_HEADER = "X-API-Key"
    #: The fields holding secrets: always :class:`Secret` (or ``None``).
    SECRET_FIELDS = ("client_secret", "password", "token", "key")

    def __post_init__(self) -> None:
        for name in self.SECRET_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                object.__setattr__(self, name, secret_or_none(value))

    @property
    def uses_tokens(self) -> bool:
        """Whether this auth obtains tokens from an endpoint (and so needs the token cache)."""
        return self.type in TOKEN_AUTH_TYPES

    def __repr__(self) -> str:
        return _masked_repr(self, {"token_url": mask_url, "extra_params": mask_mapping})


@dataclass(frozen=True)
class ClientSpec:
    """One entry of ``CLIENTS``: everything the registry needs to build an ``HttpClient``.

    Fields mirror ``HttpClientConfigBuilder``. ``hooks`` are import strings, each
    naming a hook class (to instantiate with no arguments) or a module-level hook
    instance; validation has checked that each imports and implements a hook interface.
    """

    name: str = field(metadata=NOT_A_KEY)
    base_url: str
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=_empty)
    verify_ssl: bool | str = True
    client_cert: str | tuple[str, str] | None = None
    allow_redirects: bool = True
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    pool_connections: int = DEFAULT_POOL_CONNECTIONS
    pool_maxsize: int = DEFAULT_POOL_MAXSIZE
    proxies: Mapping[str, str] | None = None
    trust_env: bool = True
    sensitive_headers: frozenset[str] = frozenset()
    retry: RetrySpec | None = None
    circuit_breaker: BreakerSpec | None = None
    rate_limit: RateLimitSpec | None = None
    auth: AuthSpec | None = None
    hooks: tuple[str, ...] = ()
    #: ``TRUSTED_ORIGINS``: origins besides BASE_URL's that may receive the client's credentials.
    trusted_origins: tuple[str, ...] = ()
    #: ``CROSS_ORIGIN_REDIRECTS``: "strip" (follow without credentials) or "refuse".
    cross_origin_redirects: str = "strip"
    #: ``MAX_RESPONSE_BYTES``: largest response body read; ``None`` for no cap.
    max_response_bytes: int | None = None
    #: ``TOTAL_TIMEOUT``: overall deadline of one attempt (all hops and the body); ``None`` for none.
    total_timeout: float | None = None

    def __repr__(self) -> str:
        return _masked_repr(
            self,
            {
                "base_url": mask_url,
                "headers": lambda headers: mask_headers(headers, self.sensitive_headers),
                "proxies": _mask_url_values,
            },
        )


@dataclass(frozen=True)
class StepSpec:
    """One entry of a pipeline's ``STEPS``: a token fetch.

    ``fetcher`` is ``"header"``, ``"body"`` or the dotted path of a custom fetcher
    class (constructed with ``options`` as extra keyword arguments). ``ttl`` is ``None``
    when the step should use the token's own ``expires_in`` (else
    ``TOKEN_DEFAULT_LIFETIME``); ``timeout`` ``None`` means the fetcher's default.
    String values inside ``headers``, ``data``, ``json`` and ``params`` may contain
    ``{step}`` / ``{step.field}`` placeholders (the syntax of
    ``requestforge_django.tokens.templates``) naming steps in ``depends_on``; they are
    passed to the fetcher unrendered.
    """

    name: str
    fetcher: str
    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=_empty)
    data: Mapping[str, Any] | str | None = None
    json: Any = None
    params: Mapping[str, Any] = field(default_factory=_empty)
    token_header: str | None = None
    token_field: str = "access_token"
    token_type: str = "Bearer"
    expires_in_field: str = "expires_in"
    refresh_token_field: str | None = None
    ttl: float | None = None
    depends_on: tuple[str, ...] = ()
    timeout: float | None = None
    options: Mapping[str, Any] = field(default_factory=_empty)

    def __repr__(self) -> str:
        return _masked_repr(
            self,
            {
                "url": mask_url,
                "headers": _mask_every_value,
                "data": _mask_step_data,
                "json": _mask_every_value,
                "params": _mask_every_value,
                "options": _mask_every_value,
            },
        )


@dataclass(frozen=True)
class PipelineSpec:
    """One entry of ``PIPELINES``: ordered steps, each depending only on earlier ones.

    ``refresh_from_step`` is the step re-fetched (with its dependents) when the final
    token is rejected; ``None`` means every step.
    """

    name: str = field(metadata=NOT_A_KEY)
    steps: tuple[StepSpec, ...]
    refresh_from_step: str | None = None

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]


@dataclass(frozen=True)
class SettingsSpec:
    """The whole ``REQUESTFORGE`` setting, validated; durations in seconds.

    The top-level keys and their defaults (``setting.keys.DEFAULTS``) are these fields.
    """

    cache: str = "default"  # cache alias holding tokens and locks
    key_prefix: str = "requestforge"  # prefix of every cache key
    encryption_keys: tuple[Secret, ...] = ()  # Fernet keys for secrets stored in the database; the first encrypts
    refresh_ahead: float = 60.0  # seconds before expiry a token counts as due for refresh
    lock_timeout: float = 30.0  # seconds a cross-process token-fetch lease lives at most
    default_timeout: float = DEFAULT_TIMEOUT  # request timeout of clients that set no TIMEOUT
    token_default_lifetime: float = 3600.0  # lifetime of a token whose endpoint sends no expires_in
    token_min_lifetime: float = 5.0  # seconds; a shorter (or zero) token lifetime is refused, not cached
    token_max_bytes: int = 1048576  # largest token-endpoint answer read (1 MiB); larger is refused
    warm: tuple[str, ...] | None = None  # names the Celery warm-up refreshes; None = every token-backed client and pipeline
    warm_interval: float = 30.0  # seconds between two warm-up runs
    clients: Mapping[str, ClientSpec] = field(default_factory=_empty)
    pipelines: Mapping[str, PipelineSpec] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        keys = tuple(key if isinstance(key, Secret) else Secret(key) for key in self.encryption_keys)
        object.__setattr__(self, "encryption_keys", keys)

    @property
    def uses_tokens(self) -> bool:
        """Whether any client or pipeline obtains tokens (and so needs a shared token cache)."""
        return bool(self.pipelines) or any(c.auth is not None and c.auth.uses_tokens for c in self.clients.values())
