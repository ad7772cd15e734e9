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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..http.circuit_breaker import DEFAULT_FAILURE_THRESHOLD, DEFAULT_RECOVERY_TIMEOUT
from ..http.config import DEFAULT_MAX_REDIRECTS, DEFAULT_POOL_CONNECTIONS, DEFAULT_POOL_MAXSIZE, DEFAULT_TIMEOUT
from ..http.masking import mask_headers, mask_mapping, mask_url
from ..http.retry import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MULTIPLIER,
    DEFAULT_RETRY_STATUSES,
    default_max_delay,
)
from ..http.secrets import Secret, secret_or_none
from ..tokens.signing import HMAC_ALGORITHMS, KEY_ALGORITHMS, MAX_ASSERTION_LIFETIME
from .spec_tools import (
    NOT_A_KEY,
    default_of,
    empty,
    freeze,
    mask_every_value,
    mask_step_data,
    mask_url_values,
    masked_repr,
    setting_key,
    setting_keys,
    thaw,
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ASSERTION_MAX_LIFETIME",
    "AUTH_TYPES",
    "BUILTIN_FETCHERS",
    "CLIENT_AUTH_METHODS",
    "FROM_BASE_DELAY",
    "HMAC_ALGORITHMS",
    "JWT_CLIENT_AUTH_METHODS",
    "KEY_ALGORITHMS",
    "NOT_A_KEY",
    "OAUTH_AUTH_TYPES",
    "RETRY_STRATEGIES",
    "TOKEN_AUTH_TYPES",
    "AssertionSpec",
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

#: AUTH TYPEs; the first five obtain tokens from an endpoint and so need the token cache.
AUTH_TYPES: tuple[str, ...] = (
    "client_credentials",
    "password",
    "jwt_bearer",
    "token_exchange",
    "pipeline",
    "bearer",
    "api_key",
    "basic",
)
#: The OAuth 2.0 TYPEs: a token endpoint (TOKEN_URL or ISSUER), client authentication (CLIENT_AUTH_METHOD), a TOKEN_TIMEOUT.
OAUTH_AUTH_TYPES: frozenset[str] = frozenset(AUTH_TYPES[:4])
TOKEN_AUTH_TYPES: frozenset[str] = frozenset(AUTH_TYPES[:5])
#: AUTH CLIENT_AUTH_METHODs (how an OAuth TYPE authenticates the client at the token endpoint); the first is the default.
CLIENT_AUTH_METHODS: tuple[str, ...] = ("client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt")
#: The methods that send a signed client assertion (RFC 7523 section 2.2) instead of the secret itself.
JWT_CLIENT_AUTH_METHODS: frozenset[str] = frozenset(CLIENT_AUTH_METHODS[2:])
#: ``SUBJECT_TOKEN_TYPE`` of ``token_exchange`` by default (RFC 8693 section 3).
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
#: Longest ``exp - iat`` of a JWT the library signs, and the default ``LIFETIME`` of an ASSERTION.
ASSERTION_MAX_LIFETIME: int = MAX_ASSERTION_LIFETIME

#: RETRY STRATEGYs, mapped by the registry onto the ``http.retry`` strategies.
RETRY_STRATEGIES: tuple[str, ...] = ("none", "simple", "exponential")

#: FETCHER values with a built-in implementation; anything else must be a dotted import path.
BUILTIN_FETCHERS: tuple[str, ...] = ("header", "body")


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
class AssertionSpec:
    """``AUTH["ASSERTION"]`` of a ``jwt_bearer`` client: the JWT that is the grant (RFC 7523 section 2.1).

    ``issuer`` and ``subject`` are its ``iss`` and ``sub`` (``SUBJECT`` defaults to
    ``ISSUER``, ``ISSUER`` to the client id); ``audience`` its ``aud``, ``None`` meaning
    the token endpoint URL (the discovered one with ``ISSUER``). ``private_key`` signs
    it (PEM; from the ``CREDENTIAL`` row when the client names one), with
    ``algorithm`` (``None``: by key type) and ``key_id`` as the JWS ``kid``. ``claims``
    are added to the registered ones, which they may not replace.
    """

    issuer: str | None = None
    subject: str | None = None
    audience: str | None = None
    private_key: Secret | None = None
    key_id: str | None = None
    algorithm: str | None = None
    lifetime: int = ASSERTION_MAX_LIFETIME
    claims: Mapping[str, Any] = field(default_factory=empty)

    def __post_init__(self) -> None:
        if self.private_key is not None and not isinstance(self.private_key, Secret):
            object.__setattr__(self, "private_key", secret_or_none(self.private_key))

    def __repr__(self) -> str:
        return masked_repr(self, {"claims": mask_every_value})


@dataclass(frozen=True)
class AuthSpec:
    """``AUTH``: how a client authenticates; only the fields of its ``type`` are set.

    ``credential`` names an admin-edited ``Credential`` row whose secrets replace the
    secret fields here (which are then ``None``). ``header`` is the api_key header
    (``"X-API-Key"`` unless ``query_param`` is set instead). An OAuth TYPE has a
    ``token_url`` or an ``issuer`` whose metadata names the token endpoint, never both.
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
    extra_params: Mapping[str, str] = field(default_factory=empty)
    excluded_paths: tuple[str, ...] = ()
    #: ``CLIENT_AUTH_METHOD`` (OAuth TYPEs): the secret in the form body, HTTP Basic, or a signed client assertion.
    client_auth_method: str = CLIENT_AUTH_METHODS[0]
    #: ``REJECTED_STATUSES`` (token auth types): statuses meaning "token rejected" (besides a Bearer ``invalid_token`` challenge).
    rejected_statuses: frozenset[int] = frozenset({401})
    #: ``TOKEN_TIMEOUT`` (OAuth TYPEs): seconds for a token request; ``None``: the client's ``TIMEOUT``.
    token_timeout: float | None = None
    #: ``ISSUER`` (OAuth TYPEs, instead of TOKEN_URL): RFC 8414 / OpenID metadata names the token endpoint.
    issuer: str | None = None
    #: ``PRIVATE_KEY`` (``private_key_jwt``): the PEM private key that signs client assertions.
    private_key: Secret | None = None
    #: ``KEY_ID``: the JWS ``kid`` of client assertions.
    key_id: str | None = None
    #: ``ALGORITHM`` of client assertions; ``None``: HS256 for client_secret_jwt, else by key type.
    algorithm: str | None = None
    #: ``AUDIENCE`` (OAuth TYPEs): ``audience`` parameters of the token request (RFC 8693).
    audience: tuple[str, ...] = ()
    #: ``RESOURCE`` (OAuth TYPEs): ``resource`` parameters of the token request (RFC 8707), absolute URIs.
    resource: tuple[str, ...] = ()
    #: ``ASSERTION`` (``jwt_bearer``): the grant's JWT.
    assertion: AssertionSpec | None = None
    #: ``SUBJECT_TOKEN_FROM`` (``token_exchange``): the client or pipeline whose token is exchanged.
    subject_token_from: str | None = None
    #: ``SUBJECT_TOKEN_TYPE`` (``token_exchange``): the subject token's type URI.
    subject_token_type: str = ACCESS_TOKEN_TYPE
    #: ``REQUESTED_TOKEN_TYPE`` (``token_exchange``): sent only when set; access tokens only (they authenticate API calls).
    requested_token_type: str | None = None

    #: ``HEADER`` of an ``api_key`` auth that sets neither HEADER nor QUERY_PARAM.
    API_KEY_DEFAULT_HEADER = "X-API-Key"
    #: The fields holding secrets: always :class:`Secret` (or ``None``).
    SECRET_FIELDS = ("client_secret", "password", "token", "key", "private_key")

    def __post_init__(self) -> None:
        for name in self.SECRET_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                object.__setattr__(self, name, secret_or_none(value))

    @property
    def uses_tokens(self) -> bool:
        """Whether this auth obtains tokens from an endpoint (and so needs the token cache)."""
        return self.type in TOKEN_AUTH_TYPES

    @property
    def is_oauth(self) -> bool:
        """Whether this auth fetches tokens itself from an OAuth token endpoint (TOKEN_URL or ISSUER)."""
        return self.type in OAUTH_AUTH_TYPES

    def __repr__(self) -> str:
        return masked_repr(self, {"token_url": mask_url, "extra_params": mask_mapping})


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
    headers: Mapping[str, str] = field(default_factory=empty)
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
        return masked_repr(
            self,
            {
                "base_url": mask_url,
                "headers": lambda headers: mask_headers(headers, self.sensitive_headers),
                "proxies": mask_url_values,
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
    headers: Mapping[str, str] = field(default_factory=empty)
    data: Mapping[str, Any] | str | None = None
    json: Any = None
    params: Mapping[str, Any] = field(default_factory=empty)
    token_header: str | None = None
    token_field: str = "access_token"
    token_type: str = "Bearer"
    expires_in_field: str = "expires_in"
    refresh_token_field: str | None = None
    ttl: float | None = None
    depends_on: tuple[str, ...] = ()
    timeout: float | None = None
    options: Mapping[str, Any] = field(default_factory=empty)

    def __repr__(self) -> str:
        return masked_repr(
            self,
            {
                "url": mask_url,
                "headers": mask_every_value,
                "data": mask_step_data,
                "json": mask_every_value,
                "params": mask_every_value,
                "options": mask_every_value,
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
    clients: Mapping[str, ClientSpec] = field(default_factory=empty)
    pipelines: Mapping[str, PipelineSpec] = field(default_factory=empty)

    def __post_init__(self) -> None:
        keys = tuple(key if isinstance(key, Secret) else Secret(key) for key in self.encryption_keys)
        object.__setattr__(self, "encryption_keys", keys)

    @property
    def uses_tokens(self) -> bool:
        """Whether any client or pipeline obtains tokens (and so needs a shared token cache)."""
        return bool(self.pipelines) or any(c.auth is not None and c.auth.uses_tokens for c in self.clients.values())
