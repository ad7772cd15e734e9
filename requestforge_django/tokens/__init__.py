"""The framework-free token lifecycle: tokens, managers, providers, pipelines.

Imports only the standard library, ``requests`` and :mod:`requestforge_django.http`;
never Django (the Django layer plugs in through :class:`TokenStorageInterface` and
:class:`TokenObserver`).
"""

from .auth_hook import TokenAuthHook
from .data import Clock, TokenData, system_clock
from .fetchers import BaseHttpTokenFetcher, BodyTokenFetcher, HeaderTokenFetcher
from .interfaces import FetchContext, TokenFetcherInterface, TokenProviderInterface, TokenSource
from .manager import TokenManager
from .observer import CallbackTokenObserver, TokenObserver
from .pipeline import PipelineConfigurationError, PipelineTokenProvider, TokenFetchPipeline
from .pipeline_manager import PipelineTokenManager
from .providers import ClientCredentialsTokenProvider, OAuth2TokenProvider, PasswordGrantTokenProvider
from .single_flight import CURRENT, FetchReason, RenewResult, SingleFlightTokenCache
from .storage import InMemoryTokenStorage, TokenLock, TokenStorageInterface

__all__ = [
    "BaseHttpTokenFetcher",
    "BodyTokenFetcher",
    "CURRENT",
    "CallbackTokenObserver",
    "ClientCredentialsTokenProvider",
    "Clock",
    "FetchContext",
    "FetchReason",
    "HeaderTokenFetcher",
    "InMemoryTokenStorage",
    "OAuth2TokenProvider",
    "PasswordGrantTokenProvider",
    "PipelineConfigurationError",
    "PipelineTokenManager",
    "PipelineTokenProvider",
    "RenewResult",
    "SingleFlightTokenCache",
    "TokenAuthHook",
    "TokenData",
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
