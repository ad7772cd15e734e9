"""The framework-free token lifecycle: tokens, managers, providers, pipelines.

Imports only the standard library, ``requests`` and :mod:`requestforge_django.http`;
never Django (the Django layer plugs in through :class:`TokenStorageInterface` and
:class:`TokenObserver`).
"""

from .auth_hook import TokenAuthHook
from .client_auth import CLIENT_AUTH_METHODS, ClientAuthentication
from .data import Clock, TokenData, system_clock
from .discovery import DiscoveryCache, DiscoveryException, ServerMetadata
from .fetchers import BaseHttpTokenFetcher, BodyTokenFetcher, HeaderTokenFetcher
from .interfaces import FetchContext, TokenFetcherInterface, TokenProviderInterface, TokenSource
from .jwt_bearer import GrantAssertion, JwtBearerTokenProvider
from .manager import TokenManager
from .observer import CallbackTokenObserver, TokenObserver
from .pipeline import PipelineConfigurationError, PipelineTokenProvider, TokenFetchPipeline
from .pipeline_manager import PipelineTokenManager
from .providers import ClientCredentialsTokenProvider, OAuth2TokenProvider, PasswordGrantTokenProvider
from .signing import SigningKey
from .single_flight import CURRENT, FetchReason, RenewResult, SingleFlightTokenCache
from .storage import InMemoryTokenStorage, TokenLock, TokenStorageInterface
from .token_exchange import TokenExchangeException, TokenExchangeTokenProvider

__all__ = [
    "CLIENT_AUTH_METHODS",
    "BaseHttpTokenFetcher",
    "BodyTokenFetcher",
    "CURRENT",
    "CallbackTokenObserver",
    "ClientAuthentication",
    "ClientCredentialsTokenProvider",
    "Clock",
    "DiscoveryCache",
    "DiscoveryException",
    "FetchContext",
    "FetchReason",
    "GrantAssertion",
    "HeaderTokenFetcher",
    "InMemoryTokenStorage",
    "JwtBearerTokenProvider",
    "OAuth2TokenProvider",
    "PasswordGrantTokenProvider",
    "PipelineConfigurationError",
    "PipelineTokenManager",
    "PipelineTokenProvider",
    "RenewResult",
    "ServerMetadata",
    "SigningKey",
    "SingleFlightTokenCache",
    "TokenAuthHook",
    "TokenData",
    "TokenExchangeException",
    "TokenExchangeTokenProvider",
    "TokenFetchPipeline",
    "TokenFetcherInterface",
    "TokenLock",
    "TokenManager",
    "TokenObserver",
    "TokenProviderInterface",
    "TokenSource",
    "TokenStorageInterface",
    "system_clock",
]
