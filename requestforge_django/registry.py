"""The per-process registry: named clients, pipelines and token managers, built once.

``get_client("billing")`` is called on every request path, so it must be a dictionary
lookup after the first call; and the objects behind it are shared by every thread, so
building them must happen once even when twenty threads ask at the same time. The
:class:`Registry` therefore builds each name lazily, under a lock, from an immutable
:class:`Definitions` snapshot, and serves later calls without locking.

Where definitions come from:

* the ``REQUESTFORGE`` setting (validated by :mod:`requestforge_django.validation`);
* admin-edited client and pipeline definitions in the database (``models``), parsed
  with the same rules, and ``Credential`` rows named by ``AUTH["CREDENTIAL"]``.

When they change:

* ``override_settings`` / ``setting_changed``: :func:`conf.reload_requestforge_settings`
  calls :meth:`Registry.reset` through ``requestforge_settings.on_reload``;
* a definition or credential saved in any process: the saving process calls
  :func:`bump_generation`, which writes a new value under ``<KEY_PREFIX>:generation``
  in the shared cache. Every process compares that value with the one its snapshot
  was built from at most every :data:`GENERATION_CHECK_INTERVAL` seconds (one cache
  ``get``, on the first lookup after that interval), and rebuilds when it differs: a
  process that is making calls serves a change within that interval of the commit, an
  idle one from its next call.

Every token is stored through one :class:`DjangoCacheTokenStorage` on the ``CACHE``
alias, so every process shares it; a client whose ``AUTH["CREDENTIAL"]`` names a
``Credential`` serves only tokens of the credential's current version
(:mod:`requestforge_django.fencing`). Token events reach the public signals through
:class:`SignalTokenObserver`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from .cache import DjangoCacheTokenStorage
from .conf import import_from_string, requestforge_settings
from .fencing import (
    GONE,
    CredentialFence,
    CredentialTokenProvider,
    FencedTokenStorage,
    client_token_key,
    current_credential_version,
    pipeline_key_prefix,
)
from .http.auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook
from .http.circuit_breaker import CircuitBreaker
from .http.client import HttpClient
from .http.config import HttpClientConfigBuilder
from .http.exceptions import ConfigurationError
from .http.hooks import AuthHookInterface
from .http.retry import ExponentialBackoffRetryStrategy, NoRetryStrategy, RetryStrategyInterface, SimpleRetryStrategy
from .specs import AuthSpec, ClientSpec, PipelineSpec, SettingsSpec, StepSpec, thaw
from .token_events import SignalTokenObserver
from .tokens.fetchers import BodyTokenFetcher, HeaderTokenFetcher
from .tokens.interfaces import TokenFetcherInterface, TokenProviderInterface
from .tokens.manager import TokenManager
from .tokens.pipeline import TokenFetchPipeline
from .tokens.pipeline_manager import PipelineTokenManager
from .tokens.providers import (
    DEFAULT_TOKEN_TIMEOUT,
    ClientCredentialsTokenProvider,
    OAuth2TokenProvider,
    PasswordGrantTokenProvider,
    fetch_deadline,
)
from .tokens.storage import TokenStorageInterface

if TYPE_CHECKING:
    from .http.rate_limit import RateLimiter

logger = logging.getLogger("requestforge_django")

__all__ = [
    "GENERATION_CHECK_INTERVAL",
    "Definitions",
    "Registry",
    "TokenSource",
    "UnknownNameError",
    "bump_generation",
    "get_client",
    "get_pipeline",
    "get_token_manager",
    "registry",
]

#: Seconds between two reads of the shared generation value (per process).
GENERATION_CHECK_INTERVAL = 0.5

#: What ``get_token_manager`` returns: a manager for OAuth clients, a pipeline adaptor otherwise.
TokenSource = TokenManager | PipelineTokenManager

T = TypeVar("T")


class UnknownNameError(LookupError):
    """``get_client``/``get_pipeline``/``get_token_manager`` was given a name nobody defined."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(sorted(known))
        listed = ", ".join(repr(k) for k in self.known) or "(none)"
        super().__init__(f"No {kind} named {name!r}; known: {listed}. Define it in REQUESTFORGE or in the admin.")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Definitions:
    """Every client and pipeline this process knows, with where each one is defined."""

    settings: SettingsSpec
    clients: Mapping[str, ClientSpec] = field(default_factory=lambda: MappingProxyType({}))
    pipelines: Mapping[str, PipelineSpec] = field(default_factory=lambda: MappingProxyType({}))
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # name -> "settings" | "database"
    generation: str | None = None

    def token_names(self) -> list[str]:
        """Clients whose auth obtains tokens (client_credentials, password), then pipelines."""
        oauth = [n for n, c in self.clients.items() if c.auth is not None and c.auth.type in ("client_credentials", "password")]
        return [*oauth, *self.pipelines]


# -- the generation counter ---------------------------------------------------------------------


def generation_key(spec: SettingsSpec) -> str:
    return f"{spec.key_prefix}:generation"


#: What :func:`read_generation` returns when the cache cannot be read: keep what is built.
UNREADABLE = "<unreadable>"


def read_generation(spec: SettingsSpec) -> str | None:
    """The shared generation value (``None`` if never bumped, :data:`UNREADABLE` if the cache is down)."""
    from django.core.cache import caches

    try:
        value = caches[spec.cache].get(generation_key(spec))
    except Exception as exc:
        logger.warning("Could not read the definitions generation from cache %r (%s)", spec.cache, type(exc).__name__)
        return UNREADABLE
    return None if value is None else str(value)


def bump_generation() -> str | None:
    """Tell every process that database definitions or credentials changed (they rebuild within GENERATION_CHECK_INTERVAL).

    This process rebuilds at once. If the cache is unreachable the others cannot be
    told: that is logged as an error and ``None`` returned (the save itself stands).
    """
    from django.core.cache import caches

    spec = requestforge_settings.spec
    value: str | None = uuid.uuid4().hex
    try:
        caches[spec.cache].set(generation_key(spec), value, timeout=None)
    except Exception as exc:
        logger.error(
            "Could not publish a definitions change through cache %r (%s); other processes keep the old definitions until restarted",
            spec.cache,
            type(exc).__name__,
        )
        value = None
    registry.reset()
    return value


# -- loading definitions ---------------------------------------------------------------------------


def load_definitions(spec: SettingsSpec, generation: str | None) -> Definitions:
    """Settings entries plus active database definitions (a name defined in both keeps the settings one)."""
    from .validation import parse_client, parse_pipeline

    clients: dict[str, ClientSpec] = dict(spec.clients)
    pipelines: dict[str, PipelineSpec] = dict(spec.pipelines)
    sources = {name: "settings" for name in (*clients, *pipelines)}
    raw_clients, raw_pipelines = _database_definitions()
    for name, raw in raw_pipelines.items():
        if name in pipelines:
            logger.error("Pipeline %r is defined in settings and in the database; using settings (requestforge.E031)", name)
            continue
        try:
            pipelines[name] = parse_pipeline(name, raw, refresh_ahead=spec.refresh_ahead)
            sources[name] = "database"
        except Exception as exc:
            logger.error("Ignoring database pipeline %r: %s", name, exc)
    for name, raw in raw_clients.items():
        if name in clients:
            logger.error("Client %r is defined in settings and in the database; using settings (requestforge.E031)", name)
            continue
        try:
            clients[name] = parse_client(name, raw, pipelines=pipelines.keys(), default_timeout=spec.default_timeout)
            sources[name] = "database"
        except Exception as exc:
            logger.error("Ignoring database client %r: %s", name, exc)
    return Definitions(
        settings=spec,
        clients=MappingProxyType(clients),
        pipelines=MappingProxyType(pipelines),
        sources=MappingProxyType(sources),
        generation=generation,
    )


def _database_definitions() -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Raw admin-edited definitions; none when the models are unavailable or not migrated yet."""
    try:
        from . import models
    except ImportError:
        return {}, {}
    loader = getattr(models, "database_definitions", None)
    if loader is None:
        return {}, {}
    try:
        definitions: tuple[Mapping[str, Any], Mapping[str, Any]] = loader()
        return definitions
    except Exception as exc:  # settings still work; only a real database fault is worth a warning
        expected = _database_not_usable_here(exc, models)
        if expected:
            logger.debug("Database definitions not loaded (%s); using settings only", expected)
        else:
            logger.warning("Could not load database definitions (%s: %s); using settings only", type(exc).__name__, exc)
        return {}, {}


def _database_not_usable_here(exc: Exception, models: Any) -> str | None:
    """Why reading the definitions failed, when that is expected where it happened (not a fault); else ``None``.

    Expected: a test without database access (pytest-django's blocker raises
    ``RuntimeError("Database access not allowed, ...")``, Django's ``SimpleTestCase``
    and ``TestCase.databases`` raise ``DatabaseOperationForbidden``), and a database
    whose tables do not exist yet (before ``migrate``: nothing is stored, so nothing is
    missed). A database that is down, refuses the login or fails the query is a fault.
    """
    if isinstance(exc, RuntimeError) and str(exc).startswith("Database access not allowed"):
        return "database access is not allowed here"
    if any(cls.__name__ == "DatabaseOperationForbidden" and cls.__module__ == "django.test.testcases" for cls in type(exc).__mro__):
        return "database access is not allowed in this test"
    from django.db import DatabaseError, connections, router

    if not isinstance(exc, DatabaseError):
        return None
    try:
        for model in (models.ClientDefinition, models.PipelineDefinition, models.PipelineStep, models.Credential):
            if model._meta.db_table not in connections[router.db_for_read(model)].introspection.table_names():
                return f"table {model._meta.db_table} does not exist yet; run migrate"
    except Exception:  # the database cannot even be introspected: report the original error
        return None
    return None


def resolve_credential(auth: AuthSpec, owner: str, *, database_client: ClientSpec | None = None) -> AuthSpec:
    """``auth`` with the secrets of its ``CREDENTIAL`` row filled in (unchanged without one).

    ``database_client``: the spec of a client defined in the database. Its credential
    must be bound to every origin it would reach (``Credential.allowed_origins``), else
    ``models.UnboundCredentialError`` before any secret is decrypted or sent. Settings
    clients are trusted code and pass ``None``.
    """
    if not auth.credential:
        return auth
    from . import models

    credential = models.get_credential(auth.credential)
    if credential is None:
        raise ConfigurationError(
            f'client "{owner}": credential "{auth.credential}" does not exist or is not active; create it in the admin',
            field="AUTH.CREDENTIAL",
        )
    if database_client is not None:
        trusted = getattr(database_client, "trusted_origins", ()) or ()
        models.ensure_bound(owner, credential, models.credential_destinations(database_client.base_url, auth.token_url, trusted))
    values = credential.auth_values()
    changes: dict[str, Any] = {
        "client_id": values.get("CLIENT_ID") or auth.client_id,
        "client_secret": values.get("CLIENT_SECRET"),
        "username": values.get("USERNAME"),
        "password": values.get("PASSWORD"),
        "key": values.get("KEY"),
        "token": values.get("TOKEN"),
        "scope": auth.scope or values.get("SCOPE"),
        "extra_params": MappingProxyType({**values.get("EXTRA_PARAMS", {}), **auth.extra_params}),
    }
    return replace(auth, **changes)


# -- building ---------------------------------------------------------------------------------------


class _RetryOptions(TypedDict):
    """The keyword arguments both built-in retry strategies take from a :class:`~requestforge_django.specs.RetrySpec`."""

    max_retries: int
    max_delay: float
    retry_on_status: frozenset[int]
    retry_non_idempotent: bool
    respect_retry_after: bool


class _RateLimitOptions(TypedDict):
    """The keyword arguments both rate limiters take from a :class:`~requestforge_django.specs.RateLimitSpec`."""

    burst: int | None
    block: bool
    max_wait: float | None
    name: str


def build_retry_strategy(spec: ClientSpec) -> RetryStrategyInterface:
    retry = spec.retry
    if retry is None or retry.strategy == "none" or retry.max_retries == 0:
        return NoRetryStrategy()
    common: _RetryOptions = {
        "max_retries": retry.max_retries,
        "max_delay": retry.max_delay,
        "retry_on_status": retry.retry_on_status,
        "retry_non_idempotent": retry.retry_non_idempotent,
        "respect_retry_after": retry.respect_retry_after,
    }
    if retry.strategy == "simple":
        return SimpleRetryStrategy(delay=retry.base_delay, **common)
    return ExponentialBackoffRetryStrategy(base_delay=retry.base_delay, multiplier=retry.multiplier, jitter=retry.jitter, **common)


def build_circuit_breaker(spec: ClientSpec, settings: SettingsSpec) -> CircuitBreaker | None:
    breaker = spec.circuit_breaker
    if breaker is None:
        return None
    if breaker.shared:
        from .shared_breaker import CacheCircuitBreaker

        return CacheCircuitBreaker(
            settings.cache,
            f"{settings.key_prefix}:breaker:{spec.name}",
            failure_threshold=breaker.failure_threshold,
            recovery_timeout=breaker.recovery_timeout,
            name=spec.name,
        )
    return CircuitBreaker(failure_threshold=breaker.failure_threshold, recovery_timeout=breaker.recovery_timeout, name=spec.name)


def build_rate_limiter(spec: ClientSpec, settings: SettingsSpec) -> RateLimiter | None:
    limit = spec.rate_limit
    if limit is None:
        return None
    options: _RateLimitOptions = {"burst": limit.burst, "block": limit.wait, "max_wait": limit.max_wait, "name": spec.name}
    if limit.shared:
        from .shared_rate_limit import CacheRateLimiter

        return CacheRateLimiter(settings.cache, f"{settings.key_prefix}:ratelimit:{spec.name}", limit.rate, **options)
    from .http.rate_limit import RateLimiter

    return RateLimiter(limit.rate, **options)


def build_hooks(spec: ClientSpec) -> list[object]:
    hooks = []
    for path in spec.hooks:
        hook = import_from_string(path, f'REQUESTFORGE["CLIENTS"]["{spec.name}"]["HOOKS"]')
        hooks.append(hook() if isinstance(hook, type) else hook)
    return hooks


def build_step(step: StepSpec, settings: SettingsSpec) -> TokenFetcherInterface:
    options: dict[str, Any] = {
        "name": step.name,
        "base_url": "",
        "endpoint": step.url,
        "method": step.method,
        "request_headers": thaw(step.headers) or None,
        "request_data": thaw(step.data),
        "request_json": thaw(step.json),
        "request_params": thaw(step.params) or None,
        "ttl": step.ttl,
        "depends_on": step.depends_on,
        "token_type": step.token_type,
    }
    if step.timeout is not None:
        options["timeout"] = step.timeout
    # The built-in fetchers' trust limits: answer size, minimum lifetime, a deadline inside the lease.
    limits = token_limits(step.timeout if step.timeout is not None else DEFAULT_TOKEN_TIMEOUT, settings)
    # A token without expires_in lives for the step's TTL; TOKEN_DEFAULT_LIFETIME only applies
    # without both (the pipeline caps every token at the TTL, so a shorter expires_in still wins).
    lifetime = step.ttl if step.ttl is not None else settings.token_default_lifetime
    if step.fetcher == "header":
        if step.token_header is None:  # parsing requires TOKEN_HEADER; the error HeaderTokenFetcher itself raises
            raise ValueError(f"step {step.name!r}: token_header must be a header name, got None")
        return HeaderTokenFetcher(**options, **limits, token_header=step.token_header, default_lifetime=lifetime)
    if step.fetcher == "body":
        return BodyTokenFetcher(
            **options,
            **limits,
            token_field=step.token_field,
            expires_in_field=step.expires_in_field,
            refresh_token_field=step.refresh_token_field,
            default_lifetime=lifetime,
        )
    fetcher_class = import_from_string(step.fetcher, f'step "{step.name}" FETCHER')
    fetcher: TokenFetcherInterface = fetcher_class(**options, **thaw(step.options))
    return fetcher


def token_limits(timeout: float, settings: SettingsSpec) -> dict[str, Any]:
    """TOKEN_MAX_BYTES, TOKEN_MIN_LIFETIME and a fetch deadline that ends before the LOCK_TIMEOUT lease does."""
    return {
        "deadline": fetch_deadline(timeout, settings.lock_timeout),
        "max_response_bytes": settings.token_max_bytes,
        "min_lifetime": settings.token_min_lifetime,
    }


def token_request_timeout(auth: AuthSpec, client_timeout: float | tuple[float, float] | None) -> float:
    """Seconds a token request of an OAuth client may take: ``TOKEN_TIMEOUT``, else the client's ``TIMEOUT``.

    A ``(connect, read)`` ``TIMEOUT`` counts as the longer of the two; without any (a
    provider built outside a client) :data:`DEFAULT_TOKEN_TIMEOUT`. The whole exchange is
    still cut off at ``min(this, LOCK_TIMEOUT - 1 s)`` (:func:`fetch_deadline`).
    """
    if auth.token_timeout is not None:
        return float(auth.token_timeout)
    if client_timeout is None:
        return DEFAULT_TOKEN_TIMEOUT
    return float(max(client_timeout)) if isinstance(client_timeout, tuple) else float(client_timeout)


def build_oauth_provider(
    name: str, auth: AuthSpec, settings: SettingsSpec, verify_ssl: bool | str, *, client_timeout: float | tuple[float, float] | None = None
) -> OAuth2TokenProvider:
    """The provider of an OAuth client; ``client_timeout`` is the client's ``TIMEOUT`` (see :func:`token_request_timeout`)."""
    assert auth.token_url is not None  # validation requires it
    timeout = token_request_timeout(auth, client_timeout)
    common: dict[str, Any] = {
        "scope": auth.scope,
        "extra_params": dict(auth.extra_params) or None,
        "service_name": name,
        "auth_method": auth.client_auth_method,
        "default_lifetime": settings.token_default_lifetime,
        "verify_ssl": verify_ssl,
        "timeout": timeout,
        **token_limits(timeout, settings),
    }
    if auth.type == "password":
        return PasswordGrantTokenProvider(
            auth.token_url, auth.username or "", auth.password or "", client_id=auth.client_id, client_secret=auth.client_secret, **common
        )
    return ClientCredentialsTokenProvider(auth.token_url, auth.client_id or "", auth.client_secret or "", **common)


def _from_database(built: _Built, spec: ClientSpec) -> ClientSpec | None:
    """``spec`` if it is a database definition (its credential is bound), ``None`` for a settings one."""
    return spec if built.definitions.sources.get(spec.name) == "database" else None


class _Built:
    """What one :class:`Definitions` snapshot has built so far (objects are added, never replaced)."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        settings = definitions.settings
        self.storage = DjangoCacheTokenStorage(cache_alias=settings.cache, key_prefix=settings.key_prefix)
        self.clients: dict[str, HttpClient] = {}
        self.pipelines: dict[str, TokenFetchPipeline] = {}
        self.managers: dict[str, TokenSource] = {}
        # Kept apart from ``managers`` because a client may share its pipeline's name
        # ("partner" authenticated by pipeline "partner"): one name, two objects.
        self.pipeline_managers: dict[str, PipelineTokenManager] = {}

    def close(self) -> None:
        """Close the clients built from this snapshot (a thread still using one reopens its session)."""
        for client in self.clients.values():
            client.close()


class Registry:
    """Builds and caches the named objects of this process; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._built: _Built | None = None
        self._checked_at = 0.0

    # -- public lookups ----------------------------------------------------------------------------

    def get_client(self, name: str) -> HttpClient:
        """The :class:`HttpClient` named ``name`` (built on first use, then shared by every thread)."""
        built = self._current()
        client = built.clients.get(name)
        if client is None:
            client = self._build_once(built, built.clients, name, self._build_client)
        return client

    def get_pipeline(self, name: str) -> TokenFetchPipeline:
        """The :class:`TokenFetchPipeline` named ``name``; its step tokens live in the shared cache."""
        built = self._current()
        pipeline = built.pipelines.get(name)
        if pipeline is None:
            pipeline = self._build_once(built, built.pipelines, name, self._build_pipeline)
        return pipeline

    def get_token_manager(self, name: str) -> TokenSource:
        """The token source of client or pipeline ``name``.

        A client with ``client_credentials`` or ``password`` auth: its
        :class:`TokenManager`. A client with ``pipeline`` auth, or a pipeline name: a
        :class:`PipelineTokenManager` over that pipeline (clients sharing a pipeline
        share it too).
        """
        built = self._current()
        manager = built.managers.get(name)
        if manager is None:
            manager = self._build_once(built, built.managers, name, self._build_manager)
        return manager

    def definitions(self) -> Definitions:
        """The current snapshot of every definition (rebuilt when a generation change is seen)."""
        return self._current().definitions

    def reset(self) -> None:
        """Forget everything built; the next lookup rebuilds from the current definitions."""
        with self._lock:
            built, self._built = self._built, None
            self._checked_at = 0.0
        if built is not None:
            built.close()

    # -- snapshot -------------------------------------------------------------------------------------

    def _current(self) -> _Built:
        built = self._built
        now = time.monotonic()
        if built is not None and now - self._checked_at < GENERATION_CHECK_INTERVAL:
            return built
        with self._lock:
            built = self._built
            if built is not None and now - self._checked_at < GENERATION_CHECK_INTERVAL:
                return built
            spec = requestforge_settings.spec
            generation = read_generation(spec)
            self._checked_at = now
            if built is not None and generation in (built.definitions.generation, UNREADABLE):
                return built
            old = built
            if old is not None:
                logger.info("Definitions changed (generation %s); rebuilding clients and pipelines", generation)
            built = self._built = _Built(load_definitions(spec, generation))
        if old is not None:
            old.close()
        return built

    def _build_once(self, built: _Built, store: dict[str, T], name: str, build: Callable[[_Built, str], T]) -> T:
        with self._lock:
            value = store.get(name)
            if value is None:
                value = store[name] = build(built, name)
            return value

    # -- builders (called with the lock held) ------------------------------------------------------

    def _client_spec(self, built: _Built, name: str) -> ClientSpec:
        spec = built.definitions.clients.get(name)
        if spec is None:
            raise UnknownNameError("client", name, built.definitions.clients)
        return spec

    def _build_client(self, built: _Built, name: str) -> HttpClient:
        spec = self._client_spec(built, name)
        settings = built.definitions.settings
        builder = (
            HttpClientConfigBuilder()
            .with_name(name)
            .with_base_url(spec.base_url)
            .with_timeout(spec.timeout)
            .with_headers(spec.headers)
            .with_ssl_verification(spec.verify_ssl, spec.client_cert)
            .with_redirects(spec.allow_redirects, spec.max_redirects)
            .with_pool_size(spec.pool_connections, spec.pool_maxsize)
            .with_proxies(spec.proxies)
            .with_trust_env(spec.trust_env)
            .with_sensitive_headers(spec.sensitive_headers)
            .with_trusted_origins(spec.trusted_origins)
            .with_cross_origin_redirects(spec.cross_origin_redirects)
            .with_max_response_bytes(spec.max_response_bytes)
            .with_total_timeout(spec.total_timeout)
            .with_retry_strategy(build_retry_strategy(spec))
            .with_rate_limiter(build_rate_limiter(spec, settings))
            .with_auth_hook(self._build_auth_hook(built, spec))
        )
        breaker = build_circuit_breaker(spec, settings)
        if breaker is not None:
            builder.with_circuit_breaker(breaker)
        hooks = build_hooks(spec)
        if hooks:
            builder.with_hooks(*hooks)
        return HttpClient(builder.build())

    def _build_auth_hook(self, built: _Built, spec: ClientSpec) -> AuthHookInterface | None:
        if spec.auth is None:
            return None
        auth = resolve_credential(spec.auth, spec.name, database_client=_from_database(built, spec))
        excluded = auth.excluded_paths
        if auth.type == "bearer":
            return BearerTokenAuthHook(auth.token or "", excluded_paths=excluded)
        if auth.type == "api_key":
            return ApiKeyAuthHook(
                auth.key or "", header_name=auth.header or "X-API-Key", excluded_paths=excluded, query_param=auth.query_param
            )
        if auth.type == "basic":
            return BasicAuthHook(auth.username or "", auth.password or "", excluded_paths=excluded)
        manager = self._build_once(built, built.managers, spec.name, self._build_manager)
        return manager.auth_hook(excluded_paths=excluded, auth_error_statuses=auth.rejected_statuses)

    def _build_pipeline(self, built: _Built, name: str) -> TokenFetchPipeline:
        spec = built.definitions.pipelines.get(name)
        if spec is None:
            raise UnknownNameError("pipeline", name, built.definitions.pipelines)
        settings = built.definitions.settings
        prefix = pipeline_key_prefix(name)
        observer = SignalTokenObserver(
            name,
            {f"{prefix}:{step.name}": step.name for step in spec.steps},
            cache_alias=settings.cache,
            key_prefix=settings.key_prefix,
        )
        return TokenFetchPipeline(
            [build_step(step, settings) for step in spec.steps],
            storage=built.storage,
            cache_key_prefix=prefix,
            refresh_ahead=settings.refresh_ahead,
            lock_timeout=settings.lock_timeout,
            observer=observer,
            name=name,
        )

    def _build_manager(self, built: _Built, name: str) -> TokenSource:
        definitions = built.definitions
        spec = definitions.clients.get(name)
        if spec is None:
            if name in definitions.pipelines:
                return self._build_once(built, built.pipeline_managers, name, self._pipeline_manager)
            raise UnknownNameError("token-backed client or pipeline", name, definitions.token_names())
        auth = spec.auth
        if auth is None or not auth.uses_tokens:
            shown = "no AUTH" if auth is None else f'AUTH TYPE "{auth.type}"'
            raise UnknownNameError(f"token-backed client or pipeline (client {name!r} has {shown})", name, definitions.token_names())
        if auth.type == "pipeline":
            assert auth.pipeline is not None
            return self._build_once(built, built.pipeline_managers, auth.pipeline, self._pipeline_manager)
        settings, verify = definitions.settings, spec.verify_ssl
        key = client_token_key(name)

        def build() -> OAuth2TokenProvider:
            resolved = resolve_credential(auth, name, database_client=_from_database(built, spec))
            return build_oauth_provider(name, resolved, settings, verify, client_timeout=spec.timeout)

        provider: TokenProviderInterface
        storage: TokenStorageInterface = built.storage
        if auth.credential:
            # Tokens are tied to the credential's version (see ``fencing``): read before building, never after.
            credential = auth.credential
            version = current_credential_version(credential)
            fence = CredentialFence(credential, cache_alias=settings.cache, key_prefix=settings.key_prefix)
            if version != GONE:
                fence.publish_if_missing(version)
            provider = CredentialTokenProvider(
                fence, build(), version, version_of=lambda: current_credential_version(credential), build=build, service_name=name
            )
            storage = FencedTokenStorage(built.storage, fence)
        else:
            provider = build()
        return TokenManager(
            provider,
            storage,
            refresh_ahead=settings.refresh_ahead,
            lock_timeout=settings.lock_timeout,
            cache_key=key,
            observer=SignalTokenObserver(name, {key: None}, cache_alias=settings.cache, key_prefix=settings.key_prefix),
        )

    def _pipeline_manager(self, built: _Built, name: str) -> PipelineTokenManager:
        pipeline = self._build_once(built, built.pipelines, name, self._build_pipeline)
        return PipelineTokenManager(pipeline, built.definitions.pipelines[name].refresh_from_step)

    def __repr__(self) -> str:
        built = self._built
        if built is None:
            return "<Registry (nothing built)>"
        return f"<Registry clients={sorted(built.clients)} pipelines={sorted(built.pipelines)}>"


#: The per-process registry (the app's only global state besides the settings object).
registry = Registry()
requestforge_settings.on_reload(registry.reset)


def get_client(name: str) -> HttpClient:
    """The configured :class:`HttpClient` named ``name``; see :meth:`Registry.get_client`."""
    return registry.get_client(name)


def get_pipeline(name: str) -> TokenFetchPipeline:
    """The configured :class:`TokenFetchPipeline` named ``name``; see :meth:`Registry.get_pipeline`."""
    return registry.get_pipeline(name)


def get_token_manager(name: str) -> TokenSource:
    """The token source of client or pipeline ``name``; see :meth:`Registry.get_token_manager`."""
    return registry.get_token_manager(name)
