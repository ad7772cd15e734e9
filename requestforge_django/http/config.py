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
from urllib.parse import urlsplit

from .circuit_breaker import DEFAULT_FAILURE_THRESHOLD, DEFAULT_RECOVERY_TIMEOUT
from .exceptions import ConfigurationError
from .hooks import AuthHookInterface, ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from .masking import is_sensitive_name, mask_headers, mask_url
from .retry import DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRIES, NoRetryStrategy, RetryStrategyInterface
from .secrets import Origin, Secret

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreaker
    from .rate_limit import RateLimiter

Timeout = float | tuple[float, float]

#: What a redirect hop to an origin outside the client's trust does (see :class:`HttpClientConfig`).
CROSS_ORIGIN_REDIRECTS: tuple[str, ...] = ("strip", "refuse")
#: Defaults of :class:`HttpClientConfig`, also the client setting's (``setting.specs.ClientSpec`` imports them).
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_REDIRECTS = 30
DEFAULT_POOL_CONNECTIONS = 10
DEFAULT_POOL_MAXSIZE = 10


def parse_origin(value: str | Origin) -> Origin:
    """``"https://host[:port]"`` as an :class:`Origin`; a path, query, fragment or userinfo is a :class:`ConfigurationError`.

    An origin is only scheme, host and port: anything more would suggest the trust is
    narrower than it is (credentials go to the whole origin), so it is refused rather
    than silently dropped. A lone trailing ``/`` is accepted.
    """
    if isinstance(value, Origin):
        return value
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"must be an origin string such as 'https://api.example.com', got {type(value).__name__}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigurationError(f"{value!r} is not a valid origin (scheme://host[:port])") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{value!r} must be http:// or https:// followed by a host, e.g. 'https://api.example.com'")
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigurationError(f"{value!r} must be scheme://host[:port] only, without user, path, query or fragment")
    origin = Origin.of(value)
    if origin is None:  # pragma: no cover - the checks above admit only what Origin.of parses
        raise ConfigurationError(f"{value!r} is not a valid origin (scheme://host[:port])")
    return origin


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class HttpClientConfig:
    """Everything an :class:`HttpClient` needs, validated on creation."""

    base_url: str = ""
    default_timeout: Timeout = DEFAULT_TIMEOUT
    default_headers: Mapping[str, str] = field(default_factory=_empty)
    verify_ssl: bool | str = True
    client_cert: str | tuple[str, str] | None = None
    allow_redirects: bool = True
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    retry_strategy: RetryStrategyInterface = field(default_factory=NoRetryStrategy)
    circuit_breaker: CircuitBreaker | None = None
    rate_limiter: RateLimiter | None = None
    auth_hook: AuthHookInterface | None = None
    request_hooks: tuple[RequestHookInterface, ...] = ()
    response_hooks: tuple[ResponseHookInterface, ...] = ()
    error_hooks: tuple[ErrorHookInterface, ...] = ()
    pool_connections: int = DEFAULT_POOL_CONNECTIONS
    pool_maxsize: int = DEFAULT_POOL_MAXSIZE
    pool_block: bool = False
    trust_env: bool = True
    proxies: Mapping[str, str] | None = None
    sensitive_headers: frozenset[str] = frozenset()
    name: str = ""
    #: Origins (``scheme://host[:port]``) besides BASE_URL's that may receive this client's credentials.
    trusted_origins: tuple[str, ...] = ()
    #: A redirect to an untrusted origin: ``"strip"`` follows it without any credential, ``"refuse"`` raises.
    cross_origin_redirects: str = "strip"
    #: Largest response body read (decoded bytes); ``None`` = no limit. Above it: :class:`ResponseParseException`.
    max_response_bytes: int | None = None
    #: Deadline in seconds for one send: every redirect hop and the body read; ``None`` = per-read timeouts only.
    total_timeout: float | None = None
    #: BASE_URL's origin plus the trusted ones: where credentials may go (derived, not a constructor argument).
    credential_origins: frozenset[Origin] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        if not isinstance(self.default_headers, MappingProxyType):
            object.__setattr__(
                self,
                "default_headers",
                MappingProxyType({str(k): v if isinstance(v, Secret) else str(v) for k, v in dict(self.default_headers or {}).items()}),
            )
        if self.proxies is not None and not isinstance(self.proxies, MappingProxyType):
            object.__setattr__(self, "proxies", MappingProxyType(dict(self.proxies)))
        for name in ("request_hooks", "response_hooks", "error_hooks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        # A default header given as a Secret is sensitive by its value, whatever its name:
        # masked in reprs and to_curl, stripped on a redirect out of the client's trust.
        secret_valued = (name for name, value in self.default_headers.items() if isinstance(value, Secret))
        object.__setattr__(self, "sensitive_headers", frozenset(h.lower() for h in (*self.sensitive_headers, *secret_valued)))
        self._validate()
        object.__setattr__(self, "trusted_origins", self._normalized_origins())
        base = Origin.of(self.base_url) if self.base_url else None
        trusted = frozenset(Origin.of(origin) for origin in self.trusted_origins)
        object.__setattr__(self, "credential_origins", trusted | {base} if base is not None else trusted)

    def _normalized_origins(self) -> tuple[str, ...]:
        origins = self.trusted_origins
        if isinstance(origins, (str, Origin)):
            origins = (origins,)
        normalized: list[str] = []
        for index, value in enumerate(origins):
            try:
                text = str(parse_origin(value))
            except ConfigurationError as exc:
                raise ConfigurationError(exc.message, field=f"trusted_origins[{index}]") from None
            if text not in normalized:
                normalized.append(text)
        return tuple(normalized)

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
        if self.cross_origin_redirects not in CROSS_ORIGIN_REDIRECTS:
            raise ConfigurationError(f"must be 'strip' or 'refuse', got {self.cross_origin_redirects!r}", field="cross_origin_redirects")
        if self.max_response_bytes is not None and (
            not isinstance(self.max_response_bytes, int) or isinstance(self.max_response_bytes, bool) or self.max_response_bytes < 1
        ):
            raise ConfigurationError(f"must be a positive integer or None, got {self.max_response_bytes!r}", field="max_response_bytes")
        if self.total_timeout is not None:
            _validate_timeout(self.total_timeout, "total_timeout")
            if isinstance(self.total_timeout, tuple):
                raise ConfigurationError("must be a positive number of seconds", field="total_timeout")
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

    @property
    def has_credentials(self) -> bool:
        """Whether this client adds credentials of its own: an auth hook, or a secret default header.

        Such a client sends requests only to :attr:`credential_origins`; a client without
        credentials may call any URL.
        """
        if self.auth_hook is not None:
            return True
        extra = self.sensitive_headers
        return any(is_sensitive_name(name, extra) or isinstance(value, Secret) for name, value in self.default_headers.items())

    def trusts(self, url: str) -> bool:
        """Whether the absolute ``url`` is on BASE_URL's origin or a trusted origin (may receive credentials)."""
        origin = Origin.of(url)
        return origin is not None and origin in self.credential_origins

    def __repr__(self) -> str:
        # Hand-written so secrets never print: secret default headers (by name, including
        # sensitive_headers) and proxy passwords are masked, the auth hook shows its own masked repr.
        fields = []
        for name in self.__dataclass_fields__:
            if name == "credential_origins":
                continue
            value = getattr(self, name)
            if name == "default_headers":
                value = mask_headers(value, self.sensitive_headers)
            elif name == "proxies" and value is not None:
                value = {scheme: mask_url(url) for scheme, url in value.items()}
            fields.append(f"{name}={value!r}")
        return f"HttpClientConfig({', '.join(fields)})"


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
        self._headers: dict[str, str | Secret] = {}
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

    def with_redirects(self, allow: bool = True, max_redirects: int = DEFAULT_MAX_REDIRECTS) -> HttpClientConfigBuilder:
        self._values["allow_redirects"] = allow
        self._values["max_redirects"] = max_redirects
        return self

    def with_pool_size(
        self, connections: int = DEFAULT_POOL_CONNECTIONS, maxsize: int = DEFAULT_POOL_MAXSIZE, block: bool = False
    ) -> HttpClientConfigBuilder:
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

    # -- trust boundary and limits -------------------------------------------
    def with_trusted_origins(self, *origins: str | Origin | Iterable[str | Origin]) -> HttpClientConfigBuilder:
        """Origins (``"https://host[:port]"``) besides BASE_URL's that may receive this client's credentials.

        Accepts origins as arguments or one iterable of them; adds to those already set.
        """
        flat: list[str | Origin] = []
        for origin in origins:
            if isinstance(origin, (str, Origin)):
                flat.append(origin)
            else:
                flat.extend(origin)
        self._values["trusted_origins"] = (*self._values.get("trusted_origins", self._base.trusted_origins), *flat)
        return self

    def with_cross_origin_redirects(self, mode: str) -> HttpClientConfigBuilder:
        """``"strip"`` (default): follow a redirect to an untrusted origin without credentials; ``"refuse"``: raise."""
        self._values["cross_origin_redirects"] = mode
        return self

    def with_max_response_bytes(self, limit: int | None) -> HttpClientConfigBuilder:
        """Refuse (``ResponseParseException``) a response body larger than ``limit`` bytes; read no further."""
        self._values["max_response_bytes"] = limit
        return self

    def with_total_timeout(self, seconds: float | None) -> HttpClientConfigBuilder:
        """An overall deadline for one send (all redirect hops and the body), on top of the per-read timeout."""
        self._values["total_timeout"] = seconds
        return self

    # -- headers and static credentials ---------------------------------------
    def with_header(self, name: str, value: str | Secret) -> HttpClientConfigBuilder:
        self._headers[name] = value
        return self

    def with_headers(self, headers: Mapping[str, str | Secret]) -> HttpClientConfigBuilder:
        self._headers.update(headers)
        return self

    def with_sensitive_headers(self, names: Iterable[str]) -> HttpClientConfigBuilder:
        """Extra header names to mask in logs, ``repr`` and ``to_curl()``."""
        self._values["sensitive_headers"] = frozenset(self._values.get("sensitive_headers", frozenset())) | frozenset(names)
        return self

    def with_bearer_token(self, token: str | Secret, excluded_paths: Iterable[str] = ()) -> HttpClientConfigBuilder:
        from .auth import BearerTokenAuthHook

        return self.with_auth_hook(BearerTokenAuthHook(token, excluded_paths=tuple(excluded_paths)))

    def with_api_key(
        self, api_key: str | Secret, header_name: str = "X-API-Key", excluded_paths: Iterable[str] = ()
    ) -> HttpClientConfigBuilder:
        from .auth import ApiKeyAuthHook

        self.with_sensitive_headers([header_name])
        return self.with_auth_hook(ApiKeyAuthHook(api_key, header_name=header_name, excluded_paths=tuple(excluded_paths)))

    def with_basic_auth(self, username: str, password: str | Secret, excluded_paths: Iterable[str] = ()) -> HttpClientConfigBuilder:
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
        max_retries: int = DEFAULT_MAX_RETRIES,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
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

    def with_circuit_breaker(
        self, failure_threshold: int | CircuitBreaker = DEFAULT_FAILURE_THRESHOLD, recovery_timeout: float = DEFAULT_RECOVERY_TIMEOUT
    ) -> HttpClientConfigBuilder:
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
