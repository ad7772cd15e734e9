"""Building objects from specs: a client's configuration, its auth hook's token source, a pipeline's steps.

Pure functions of a spec and the settings: the :class:`~requestforge_django.registry.Registry`
decides when to build and keeps what is built; nothing here caches or reads shared state
(except the credential row and its published version, read when a token manager is built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from ..fencing import (
    GONE,
    CredentialFence,
    CredentialTokenProvider,
    FencedTokenStorage,
    client_token_key,
    current_credential_version,
    pipeline_key_prefix,
)
from ..http.auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook
from ..http.circuit_breaker import CircuitBreaker
from ..http.client import HttpClient
from ..http.config import HttpClientConfigBuilder
from ..http.exceptions import ConfigurationError
from ..http.hooks import AuthHookInterface
from ..http.retry import ExponentialBackoffRetryStrategy, NoRetryStrategy, RetryStrategyInterface, SimpleRetryStrategy
from ..setting.conf import import_from_string
from ..setting.specs import JWT_CLIENT_AUTH_METHODS, AssertionSpec, AuthSpec, ClientSpec, PipelineSpec, SettingsSpec, StepSpec, thaw
from ..shared.status_records import SignalTokenObserver
from ..shared.token_storage import DjangoCacheTokenStorage
from ..tokens.fetchers import BodyTokenFetcher, HeaderTokenFetcher
from ..tokens.interfaces import TokenFetcherInterface, TokenProviderInterface, TokenSource
from ..tokens.jwt_bearer import GrantAssertion, JwtBearerTokenProvider
from ..tokens.manager import TokenManager
from ..tokens.pipeline import TokenFetchPipeline
from ..tokens.providers import (
    DEFAULT_TOKEN_TIMEOUT,
    ClientCredentialsTokenProvider,
    OAuth2TokenProvider,
    PasswordGrantTokenProvider,
    fetch_deadline,
)
from ..tokens.storage import TokenStorageInterface
from ..tokens.token_exchange import TokenExchangeTokenProvider
from .loading import resolve_credential

if TYPE_CHECKING:
    from ..http.rate_limit import RateLimiter

__all__ = [
    "build_circuit_breaker",
    "build_client",
    "build_hooks",
    "build_oauth_manager",
    "build_oauth_provider",
    "build_pipeline",
    "build_rate_limiter",
    "build_retry_strategy",
    "build_static_auth_hook",
    "build_step",
    "token_limits",
    "token_request_timeout",
]


class _RetryOptions(TypedDict):
    """The keyword arguments both built-in retry strategies take from a :class:`~requestforge_django.setting.RetrySpec`."""

    max_retries: int
    max_delay: float
    retry_on_status: frozenset[int]
    retry_non_idempotent: bool
    respect_retry_after: bool


class _RateLimitOptions(TypedDict):
    """The keyword arguments both rate limiters take from a :class:`~requestforge_django.setting.RateLimitSpec`."""

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
        from ..shared.breaker import CacheCircuitBreaker

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
        from ..shared.rate_limit import CacheRateLimiter

        return CacheRateLimiter(settings.cache, f"{settings.key_prefix}:ratelimit:{spec.name}", limit.rate, **options)
    from ..http.rate_limit import RateLimiter

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
    name: str,
    auth: AuthSpec,
    settings: SettingsSpec,
    verify_ssl: bool | str,
    *,
    client_timeout: float | tuple[float, float] | None = None,
    subject_source: TokenSource | None = None,
) -> OAuth2TokenProvider:
    """The provider of an OAuth client (its credential resolved); ``client_timeout`` is the client's ``TIMEOUT``.

    ``subject_source``: for ``token_exchange``, the token source of ``SUBJECT_TOKEN_FROM``
    (the registry's manager of that client or pipeline: its own cache and single flight).
    Only the key material the ``CLIENT_AUTH_METHOD`` uses is handed over (a credential
    may hold a private key for a JWT-bearer assertion and a secret for the form body).
    """
    timeout = token_request_timeout(auth, client_timeout)
    method = auth.client_auth_method
    common: dict[str, Any] = {
        "issuer": auth.issuer,
        "audience": auth.audience or None,
        "resource": auth.resource or None,
        "extra_params": dict(auth.extra_params) or None,
        "service_name": name,
        "auth_method": method,
        "default_lifetime": settings.token_default_lifetime,
        "verify_ssl": verify_ssl,
        "timeout": timeout,
        **token_limits(timeout, settings),
    }
    if method in JWT_CLIENT_AUTH_METHODS:
        common.update(key_id=auth.key_id, algorithm=auth.algorithm)
    if method == "private_key_jwt":
        common["private_key"] = auth.private_key
    secret = None if method == "private_key_jwt" else auth.client_secret
    token_url, scope = auth.token_url, auth.scope
    if auth.type == "password":
        return PasswordGrantTokenProvider(
            token_url, auth.username or "", auth.password or "", client_id=auth.client_id, client_secret=secret, scope=scope, **common
        )
    if auth.type == "jwt_bearer":
        assertion = auth.assertion or AssertionSpec()
        grant = GrantAssertion(
            assertion.issuer,
            assertion.private_key,  # type: ignore[arg-type]  # None is refused by GrantAssertion as a ConfigurationError
            subject=assertion.subject,
            audience=assertion.audience,
            key_id=assertion.key_id,
            algorithm=assertion.algorithm,
            lifetime=assertion.lifetime,
            claims=thaw(assertion.claims) or None,
        )
        return JwtBearerTokenProvider(token_url, assertion=grant, client_id=auth.client_id, client_secret=secret, scope=scope, **common)
    if auth.type == "token_exchange":
        if subject_source is None:
            raise ConfigurationError(f'client "{name}": token exchange needs the token source of SUBJECT_TOKEN_FROM', field="AUTH")
        return TokenExchangeTokenProvider(
            token_url,
            subject_token_source=subject_source,
            subject_service_name=auth.subject_token_from,
            subject_token_type=auth.subject_token_type,
            requested_token_type=auth.requested_token_type,
            client_id=auth.client_id,
            client_secret=secret,
            scope=scope,
            **common,
        )
    return ClientCredentialsTokenProvider(token_url, auth.client_id or "", secret, scope=scope, **common)


def build_client(spec: ClientSpec, settings: SettingsSpec, auth_hook: AuthHookInterface | None) -> HttpClient:
    """The :class:`HttpClient` of ``spec``, authenticated by ``auth_hook``."""
    builder = (
        HttpClientConfigBuilder()
        .with_name(spec.name)
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
        .with_auth_hook(auth_hook)
    )
    breaker = build_circuit_breaker(spec, settings)
    if breaker is not None:
        builder.with_circuit_breaker(breaker)
    hooks = build_hooks(spec)
    if hooks:
        builder.with_hooks(*hooks)
    return HttpClient(builder.build())


def build_static_auth_hook(auth: AuthSpec) -> AuthHookInterface | None:
    """The hook of a ``bearer``, ``api_key`` or ``basic`` AUTH (its credential resolved); ``None`` for other types."""
    excluded = auth.excluded_paths
    if auth.type == "bearer":
        return BearerTokenAuthHook(auth.token or "", excluded_paths=excluded)
    if auth.type == "api_key":
        return ApiKeyAuthHook(auth.key or "", header_name=auth.header or "X-API-Key", excluded_paths=excluded, query_param=auth.query_param)
    if auth.type == "basic":
        return BasicAuthHook(auth.username or "", auth.password or "", excluded_paths=excluded)
    return None


def build_pipeline(name: str, spec: PipelineSpec, settings: SettingsSpec, storage: DjangoCacheTokenStorage) -> TokenFetchPipeline:
    """The :class:`TokenFetchPipeline` of ``spec``; its step tokens live in ``storage``."""
    prefix = pipeline_key_prefix(name)
    observer = SignalTokenObserver(
        name,
        {f"{prefix}:{step.name}": step.name for step in spec.steps},
        cache_alias=settings.cache,
        key_prefix=settings.key_prefix,
    )
    return TokenFetchPipeline(
        [build_step(step, settings) for step in spec.steps],
        storage=storage,
        cache_key_prefix=prefix,
        refresh_ahead=settings.refresh_ahead,
        lock_timeout=settings.lock_timeout,
        observer=observer,
        name=name,
    )


def build_oauth_manager(
    spec: ClientSpec,
    settings: SettingsSpec,
    storage: DjangoCacheTokenStorage,
    *,
    from_database: bool,
    subject_source: TokenSource | None = None,
) -> TokenManager:
    """The :class:`TokenManager` of an OAuth client (``client_credentials``, ``password``, ``jwt_bearer``, ``token_exchange``).

    ``from_database``: the client is a database definition, so its credential must be
    bound to the origins it reaches (see :func:`~.loading.resolve_credential`).
    ``subject_source``: see :func:`build_oauth_provider`.
    """
    name, auth, verify = spec.name, spec.auth, spec.verify_ssl
    assert auth is not None
    key = client_token_key(name)
    database_client = spec if from_database else None

    def build() -> OAuth2TokenProvider:
        resolved = resolve_credential(auth, name, database_client=database_client)
        return build_oauth_provider(name, resolved, settings, verify, client_timeout=spec.timeout, subject_source=subject_source)

    provider: TokenProviderInterface
    token_storage: TokenStorageInterface = storage
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
        token_storage = FencedTokenStorage(storage, fence)
    else:
        provider = build()
    return TokenManager(
        provider,
        token_storage,
        refresh_ahead=settings.refresh_ahead,
        lock_timeout=settings.lock_timeout,
        cache_key=key,
        observer=SignalTokenObserver(name, {key: None}, cache_alias=settings.cache, key_prefix=settings.key_prefix),
    )
