"""The framework-free HTTP core: imports only the standard library and ``requests``.

Everything here works in a plain Python process with no Django settings.
"""

from .auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook, CompositeAuthHook
from .builtin_hooks import (
    AuthorizationHook,
    CorrelationIdHook,
    LoggingErrorHook,
    LoggingRequestHook,
    LoggingResponseHook,
    RateLimitInfo,
    RateLimitResponseHook,
)
from .circuit_breaker import CircuitBreaker, CircuitState
from .client import HttpClient
from .config import HttpClientConfig, HttpClientConfigBuilder
from .declarative import delete, get, http_client, patch, post, put, service_client, set_client_resolver
from .exceptions import (
    AuthenticationException,
    CircuitBreakerException,
    ConfigurationError,
    ConnectionException,
    HttpClientException,
    HttpStatusException,
    MaxRetryException,
    RateLimitExceeded,
    ResponseParseException,
    SSLException,
    TimeoutException,
)
from .hooks import AuthHookInterface, ErrorHookInterface, RequestHookInterface, ResponseHookInterface
from .messages import HttpMethod, HttpRequest, HttpResponse, RequestContext
from .rate_limit import RateLimiter, RateLimiterInterface
from .retry import (
    CircuitBreakerRetryStrategy,
    ExponentialBackoffRetryStrategy,
    NoRetryStrategy,
    RetryPolicy,
    RetryStrategyInterface,
    SimpleRetryStrategy,
)

__all__ = [
    "ApiKeyAuthHook",
    "AuthHookInterface",
    "AuthenticationException",
    "AuthorizationHook",
    "BasicAuthHook",
    "BearerTokenAuthHook",
    "CircuitBreaker",
    "CircuitBreakerException",
    "CircuitBreakerRetryStrategy",
    "CircuitState",
    "CompositeAuthHook",
    "ConfigurationError",
    "ConnectionException",
    "CorrelationIdHook",
    "ErrorHookInterface",
    "ExponentialBackoffRetryStrategy",
    "HttpClient",
    "HttpClientConfig",
    "HttpClientConfigBuilder",
    "HttpClientException",
    "HttpMethod",
    "HttpRequest",
    "HttpResponse",
    "HttpStatusException",
    "LoggingErrorHook",
    "LoggingRequestHook",
    "LoggingResponseHook",
    "MaxRetryException",
    "NoRetryStrategy",
    "RateLimitExceeded",
    "RateLimitInfo",
    "RateLimitResponseHook",
    "RateLimiter",
    "RateLimiterInterface",
    "RequestContext",
    "RequestHookInterface",
    "ResponseHookInterface",
    "ResponseParseException",
    "RetryPolicy",
    "RetryStrategyInterface",
    "SSLException",
    "SimpleRetryStrategy",
    "TimeoutException",
    "delete",
    "get",
    "http_client",
    "patch",
    "post",
    "put",
    "service_client",
    "set_client_resolver",
]
