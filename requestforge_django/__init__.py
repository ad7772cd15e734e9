"""requestforge_django: outbound service-to-service HTTP for Django.

Public names are importable from here but loaded on first use, so that
``import requestforge_django.http`` in a process without Django settings pulls in
neither Django nor the token layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_HTTP = "requestforge_django.http"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "HttpClient",
            "HttpClientConfig",
            "HttpClientConfigBuilder",
            "HttpRequest",
            "HttpResponse",
            "HttpMethod",
            "RequestContext",
            "NoRetryStrategy",
            "SimpleRetryStrategy",
            "ExponentialBackoffRetryStrategy",
            "CircuitBreakerRetryStrategy",
            "CircuitBreaker",
            "CircuitState",
            "RetryPolicy",
            "RetryStrategyInterface",
            "RequestHookInterface",
            "ResponseHookInterface",
            "ErrorHookInterface",
            "AuthHookInterface",
            "LoggingRequestHook",
            "LoggingResponseHook",
            "LoggingErrorHook",
            "CorrelationIdHook",
            "AuthorizationHook",
            "RateLimitResponseHook",
            "ApiKeyAuthHook",
            "BasicAuthHook",
            "BearerTokenAuthHook",
            "CompositeAuthHook",
            "HttpClientException",
            "ConnectionException",
            "TimeoutException",
            "SSLException",
            "HttpStatusException",
            "ResponseParseException",
            "AuthenticationException",
            "MaxRetryException",
            "CircuitBreakerException",
            "ConfigurationError",
            "RateLimitExceeded",
            "RateLimiter",
            "http_client",
            "service_client",
            "get",
            "post",
            "put",
            "patch",
            "delete",
        ],
        _HTTP,
    ),
    **dict.fromkeys(
        [
            "TokenData",
            "FetchContext",
            "TokenManager",
            "TokenProviderInterface",
            "TokenStorageInterface",
            "InMemoryTokenStorage",
            "ClientCredentialsTokenProvider",
            "PasswordGrantTokenProvider",
            "TokenFetchPipeline",
            "PipelineTokenProvider",
            "TokenFetcherInterface",
            "HeaderTokenFetcher",
            "BodyTokenFetcher",
            "TokenAuthHook",
            "PipelineTokenManager",
        ],
        "requestforge_django.tokens",
    ),
    "DjangoCacheTokenStorage": "requestforge_django.shared",
    **dict.fromkeys(["aget_client", "get_client", "get_pipeline", "get_token_manager", "UnknownNameError"], "requestforge_django.registry"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'requestforge_django' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
