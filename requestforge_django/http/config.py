"""Client configuration: a frozen, validated value plus a fluent builder.

``HttpClientConfig`` is immutable so one instance can be shared by every thread and
every client built from it; ``HttpClientConfigBuilder`` exists so call sites read as a
sentence and so that all validation happens in one place, at :meth:`build`, with a
:class:`ConfigurationError` naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError
from .hooks import AuthHookInterface, ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from .retry import NoRetryStrategy, RetryStrategyInterface

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreaker
    from .rate_limit import RateLimiter

Timeout = float | tuple[float, float]


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class HttpClientConfig:
    """Everything an :class:`HttpClient` needs, validated on creation."""

    base_url: str = ""
    default_timeout: Timeout = 30.0
    default_headers: Mapping[str, str] = field(default_factory=_empty)
    verify_ssl: bool | str = True
    client_cert: str | tuple[str, str] | None = None
    allow_redirects: bool = True
    max_redirects: int = 30
    retry_strategy: RetryStrategyInterface = field(default_factory=NoRetryStrategy)
    circuit_breaker: CircuitBreaker | None = None
    rate_limiter: RateLimiter | None = None
    auth_hook: AuthHookInterface | None = None
    request_hooks: tuple[RequestHookInterface, ...] = ()
    response_hooks: tuple[ResponseHookInterface, ...] = ()
    error_hooks: tuple[ErrorHookInterface, ...] = ()
    pool_connections: int = 10
    pool_maxsize: int = 10
    pool_block: bool = False
    trust_env: bool = True
    proxies: Mapping[str, str] | None = None
    sensitive_headers: frozenset[str] = frozenset()
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.default_headers, MappingProxyType):
            object.__setattr__(
                self, "default_headers", MappingProxyType({str(k): str(v) for k, v in dict(self.default_headers or {}).items()})
            )
        if self.proxies is not None and not isinstance(self.proxies, MappingProxyType):
            object.__setattr__(self, "proxies", MappingProxyType(dict(self.proxies)))
        for name in ("request_hooks", "response_hooks", "error_hooks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "sensitive_headers", frozenset(h.lower() for h in self.sensitive_headers))
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.base_url, str):
            raise ConfigurationError("must be a string", field="base_url")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"must start with http:// or https://, got {self.base_url!r}", field="base_url")
        _validate_timeout(self.default_timeout, "default_timeout")
        for name in ("pool_connections", "pool_maxsize"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"must be a positive integer, got {value!r}", field=name)
        if not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise ConfigurationError(f"must be a non-negative integer, got {self.max_redirects!r}", field="max_redirects")
        if not isinstance(self.verify_ssl, (bool, str)):
            raise ConfigurationError("must be a bool or a CA bundle path", field="verify_ssl")
        if not isinstance(self.retry_strategy, RetryStrategyInterface):
            raise ConfigurationError("must implement RetryStrategyInterface", field="retry_strategy")
        if self.auth_hook is not None and not isinstance(self.auth_hook, AuthHookInterface):
            raise ConfigurationError("must implement AuthHookInterface", field="auth_hook")
        for name, interface in (
            ("request_hooks", RequestHookInterface),
            ("response_hooks", ResponseHookInterface),
            ("error_hooks", ErrorHookInterface),
        ):
            for hook in getattr(self, name):
                if not isinstance(hook, interface):
                    raise ConfigurationError(f"{type(hook).__name__} does not implement {interface.__name__}", field=name)

    @property
    def effective_circuit_breaker(self) -> CircuitBreaker | None:
        """The breaker guarding calls: the configured one, else the retry strategy's own."""
        return self.circuit_breaker or getattr(self.retry_strategy, "circuit_breaker", None)


def _validate_timeout(value: Any, field_name: str) -> None:
    if isinstance(value, tuple):
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigurationError(f"must be a positive number or a (connect, read) pair, got {value!r}", field=field_name)
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"must be a positive number of seconds, got {value!r}", field=field_name)


class HttpClientConfigBuilder:
    """Fluent construction of :class:`HttpClientConfig`; every ``with_*`` returns ``self``."""

    def __init__(self, base: HttpClientConfig | None = None) -> None:
        self._values: dict[str, Any] = {}
        self._headers: dict[str, str] = {}
        self._request_hooks: list[RequestHookInterface] = []
        self._response_hooks: list[ResponseHookInterface] = []
        self._error_hooks: list[ErrorHookInterface] = []
        self._base = base or HttpClientConfig()

    # -- connection -------------------------------------------------------
    def with_base_url(self, base_url: str) -> HttpClientConfigBuilder:
        self._values["base_url"] = base_url.rstrip("/") if isinstance(base_url, str) else base_url
        return self

    def with_timeout(self, timeout: Timeout, read: float | None = None) -> HttpClientConfigBuilder:
        """Total timeout in seconds, or ``with_timeout(connect, read)``."""
        self._values["default_timeout"] = (timeout, read) if read is not None else timeout
        return self

    def with_ssl_verification(self, verify: bool | str = True, client_cert: str | tuple[str, str] | None = None) -> HttpClientConfigBuilder:
        self._values["verify_ssl"] = verify
        if client_cert is not None:
            self._values["client_cert"] = client_cert
        return self

    with_verify_ssl = with_ssl_verification

    def with_redirects(self, allow: bool = True, max_redirects: int = 30) -> HttpClientConfigBuilder:
        self._values["allow_redirects"] = allow
        self._values["max_redirects"] = max_redirects
        return self

    def with_pool_size(self, connections: int = 10, maxsize: int = 10, block: bool = False) -> HttpClientConfigBuilder:
        """Connection pools per session (``connections`` hosts, ``maxsize`` sockets per host)."""
        self._values.update(pool_connections=connections, pool_maxsize=maxsize, pool_block=block)
        return self

    def with_proxies(self, proxies: Mapping[str, str] | None) -> HttpClientConfigBuilder:
        self._values["proxies"] = proxies
        return self

    def with_trust_env(self, trust_env: bool = True) -> HttpClientConfigBuilder:
        """Whether HTTP(S)_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE are honoured (default yes)."""
        self._values["trust_env"] = trust_env
        return self

    def with_name(self, name: str) -> HttpClientConfigBuilder:
        self._values["name"] = name
        return self

    # -- headers and static credentials ---------------------------------------
    def with_header(self, name: str, value: str) -> HttpClientConfigBuilder:
        self._headers[name] = value
        return self

    def with_headers(self, headers: Mapping[str, str]) -> HttpClientConfigBuilder:
        self._headers.update(headers)
        return self

    def with_sensitive_headers(self, names: Iterable[str]) -> HttpClientConfigBuilder:
        """Extra header names to mask in logs, ``repr`` and ``to_curl()``."""
        self._values["sensitive_headers"] = frozenset(self._values.get("sensitive_headers", frozenset())) | frozenset(names)
        return self

    def with_bearer_token(self, token: str, excluded_paths: Iterable[str] = ()) -> HttpClientConfigBuilder:
        from .auth import BearerTokenAuthHook

        return self.with_auth_hook(BearerTokenAuthHook(token, excluded_paths=tuple(excluded_paths)))

    def with_api_key(self, api_key: str, header_name: str = "X-API-Key", excluded_paths: Iterable[str] = ()) -> HttpClientConfigBuilder:
        from .auth import ApiKeyAuthHook

        self.with_sensitive_headers([header_name])
        return self.with_auth_hook(ApiKeyAuthHook(api_key, header_name=header_name, excluded_paths=tuple(excluded_paths)))

    def with_basic_auth(self, username: str, password: str, excluded_paths: Iterable[str] = ()) -> HttpClientConfigBuilder:
        from .auth import BasicAuthHook

        return self.with_auth_hook(BasicAuthHook(username, password, excluded_paths=tuple(excluded_paths)))

    def with_token_auth(self, token_manager: Any, **options: Any) -> HttpClientConfigBuilder:
        """Authenticate with tokens from a ``TokenManager`` (refreshed once on 401).

        ``options`` go to ``TokenAuthHook`` (``header_name``, ``prefix``,
        ``auth_error_statuses``, ``excluded_paths``). Duck-typed so that this layer
        never imports the token layer.
        """
        return self.with_auth_hook(token_manager.auth_hook(**options))

    def with_auth_hook(self, hook: AuthHookInterface | None) -> HttpClientConfigBuilder:
        self._values["auth_hook"] = hook
        return self

    # -- resilience ---------------------------------------------------------
    def with_retry(
        self,
        max_retries: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        retry_on_status: Iterable[int] | None = None,
        retry_non_idempotent: bool = False,
        jitter: bool = True,
    ) -> HttpClientConfigBuilder:
        """Exponential backoff with full jitter; see :class:`ExponentialBackoffRetryStrategy`."""
        from .retry import DEFAULT_RETRY_STATUSES, ExponentialBackoffRetryStrategy

        try:
            strategy = ExponentialBackoffRetryStrategy(
                max_retries=max_retries,
                base_delay=base_delay,
                max_delay=max_delay,
                retry_on_status=frozenset(retry_on_status) if retry_on_status is not None else DEFAULT_RETRY_STATUSES,
                retry_non_idempotent=retry_non_idempotent,
                jitter=jitter,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc), field=f"retry.{exc.field}" if exc.field else "retry") from None
        return self.with_retry_strategy(strategy)

    def with_retry_strategy(self, strategy: RetryStrategyInterface) -> HttpClientConfigBuilder:
        self._values["retry_strategy"] = strategy
        return self

    def with_circuit_breaker(self, failure_threshold: int | CircuitBreaker = 5, recovery_timeout: float = 30.0) -> HttpClientConfigBuilder:
        """Guard calls with a breaker: pass a shared :class:`CircuitBreaker`, or its settings."""
        from .circuit_breaker import CircuitBreaker

        if isinstance(failure_threshold, CircuitBreaker):
            breaker = failure_threshold
        else:
            try:
                breaker = CircuitBreaker(failure_threshold=failure_threshold, recovery_timeout=recovery_timeout)
            except (ConfigurationError, ValueError, TypeError) as exc:
                raise ConfigurationError(str(exc), field="circuit_breaker") from None
        self._values["circuit_breaker"] = breaker
        return self

    def with_rate_limiter(self, limiter: RateLimiter | None) -> HttpClientConfigBuilder:
        self._values["rate_limiter"] = limiter
        return self

    # -- hooks -----------------------------------------------------------------
    def with_request_hook(self, hook: RequestHookInterface) -> HttpClientConfigBuilder:
        self._request_hooks.append(hook)
        return self

    def with_response_hook(self, hook: ResponseHookInterface) -> HttpClientConfigBuilder:
        self._response_hooks.append(hook)
        return self

    def with_error_hook(self, hook: ErrorHookInterface) -> HttpClientConfigBuilder:
        self._error_hooks.append(hook)
        return self

    def with_hooks(self, *hooks: object) -> HttpClientConfigBuilder:
        """Register objects under every hook interface they implement (a logging hook may be all three)."""
        for hook in hooks:
            matched = False
            if isinstance(hook, RequestHookInterface):
                self._request_hooks.append(hook)
                matched = True
            if isinstance(hook, ResponseHookInterface):
                self._response_hooks.append(hook)
                matched = True
            if isinstance(hook, ErrorHookInterface):
                self._error_hooks.append(hook)
                matched = True
            if not matched:
                raise ConfigurationError(f"{type(hook).__name__} implements no hook interface", field="hooks")
        return self

    def with_logging(self, logger: logging.Logger | str | None = None, level: int = logging.DEBUG) -> HttpClientConfigBuilder:
        """Log requests, responses and errors (secrets masked) through ``logger``."""
        from .builtin_hooks import LoggingErrorHook, LoggingRequestHook, LoggingResponseHook

        self._request_hooks.append(LoggingRequestHook(logger=logger, level=level))
        self._response_hooks.append(LoggingResponseHook(logger=logger, level=level))
        self._error_hooks.append(LoggingErrorHook(logger=logger))
        return self

    def build(self) -> HttpClientConfig:
        values = dict(self._values)
        if self._headers:
            values["default_headers"] = {**self._base.default_headers, **self._headers}
        for name, added in (
            ("request_hooks", self._request_hooks),
            ("response_hooks", self._response_hooks),
            ("error_hooks", self._error_hooks),
        ):
            if added:
                values[name] = (*getattr(self._base, name), *added)
        return replace(self._base, **values)
