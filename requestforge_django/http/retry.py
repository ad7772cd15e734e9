"""Retry strategies as values (after urllib3's ``Retry``).

A strategy is an immutable description of *when* to retry and *how long* to wait;
the per-call state (which attempt this is) lives in :class:`RequestContext`, so one
strategy instance is shared by every thread of a client without locks.

``context.attempt`` is the number of retries already made (0 while the first attempt
is being judged); the client increments it.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random as _random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .exceptions import ConfigurationError, ConnectionException, SSLException, TimeoutException

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreaker
    from .messages import HttpRequest, HttpResponse, RequestContext

T = TypeVar("T")

#: Statuses that mean "try again later": throttled, or a gateway/upstream hiccup.
#: 500 is deliberately absent: it is usually a bug, and repeating it only adds load.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})
#: Defaults of the retry strategies, also the ``RETRY`` setting's (``setting.specs.RetrySpec`` imports them).
DEFAULT_MAX_RETRIES = 3
DEFAULT_BASE_DELAY = 0.5
DEFAULT_MULTIPLIER = 2.0
#: Cap of one delay (and of a ``Retry-After``) when none is given: an uncapped wait could park a thread indefinitely.
DEFAULT_MAX_DELAY = 30.0


def default_max_delay(base_delay: float) -> float:
    """The cap used when none is given: :data:`DEFAULT_MAX_DELAY`, or ``base_delay`` if that is longer."""
    return max(DEFAULT_MAX_DELAY, base_delay)


#: Transport failures worth repeating. ``SSLException`` subclasses ``ConnectionException``
#: but is excluded by the rules below: a bad certificate does not fix itself.
DEFAULT_RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (ConnectionException, TimeoutException)

#: Header that makes a non-idempotent request safe to repeat (the server deduplicates).
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


class RetryStrategyInterface(ABC):
    max_retries: int = 0

    @abstractmethod
    def should_retry(
        self,
        context: RequestContext,
        exception: BaseException | None = None,
        response: HttpResponse | None = None,
    ) -> bool:
        """Whether the attempt that just ended (with ``exception`` or ``response``) should be retried."""

    @abstractmethod
    def get_delay(self, context: RequestContext, response: HttpResponse | None = None) -> float:
        """Seconds to wait before the next attempt."""


class NoRetryStrategy(RetryStrategyInterface):
    max_retries = 0

    def should_retry(self, context: RequestContext, exception: BaseException | None = None, response: HttpResponse | None = None) -> bool:
        return False

    def get_delay(self, context: RequestContext, response: HttpResponse | None = None) -> float:
        return 0.0

    def __repr__(self) -> str:
        return "NoRetryStrategy()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoRetryStrategy)

    def __hash__(self) -> int:
        return hash(NoRetryStrategy)


# -- Retry-After ------------------------------------------------------------------

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks us to wait, or ``None`` if it is absent or unreadable.

    Accepts delay-seconds (``"120"``; a decimal is tolerated because some servers send
    one) and HTTP dates; a date in the past means "now", i.e. ``0.0``. Garbage yields
    ``None`` so the caller falls back to its own backoff instead of failing the call.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DECIMAL.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" parses as naive; HTTP dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


# -- validation helpers ---------------------------------------------------------


def _seconds(value: Any, field_name: str) -> float:
    """Normalise ``timedelta`` or a number to non-negative finite float seconds."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"must be a non-negative number of seconds, got {value!r}", field=field_name)
    return float(value)


def _non_negative_int(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"must be a non-negative integer, got {value!r}", field=field_name)
    return value


def _exception_types(value: Any, field_name: str, *, allow_empty: bool = True) -> tuple[type[BaseException], ...]:
    types = (value,) if isinstance(value, type) else tuple(value)
    if not allow_empty and not types:
        raise ConfigurationError("must name at least one exception type", field=field_name)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigurationError(f"must be exception types, got {item!r}", field=field_name)
    return types


def _statuses(value: Iterable[Any], field_name: str) -> frozenset[int]:
    statuses = frozenset(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ConfigurationError(f"must be HTTP status codes (int 100-599), got {status!r}", field=field_name)
    return statuses


def _as_seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _exponential(base: float, multiplier: float, attempt: int, cap: float) -> float:
    """``min(cap, base * multiplier**attempt)`` without overflowing on absurd attempt numbers."""
    try:
        return min(cap, base * multiplier**attempt)
    except OverflowError:
        return cap


# -- strategies -----------------------------------------------------------------


class _RetryRules(RetryStrategyInterface):
    """The rules every built-in strategy shares; subclasses only decide their own delay.

    Not a dataclass itself so each concrete strategy can declare its fields in its own
    documented order; the attributes below are provided by those fields.
    """

    max_retries: int
    max_delay: float
    retry_on_status: frozenset[int]
    retry_on_exceptions: tuple[type[BaseException], ...]
    retry_non_idempotent: bool
    respect_retry_after: bool

    def _validate_common(self) -> None:
        _non_negative_int(self.max_retries, "max_retries")
        object.__setattr__(self, "max_delay", _seconds(self.max_delay, "max_delay"))
        object.__setattr__(self, "retry_on_status", _statuses(self.retry_on_status, "retry_on_status"))
        object.__setattr__(self, "retry_on_exceptions", _exception_types(self.retry_on_exceptions, "retry_on_exceptions"))

    def should_retry(
        self,
        context: RequestContext,
        exception: BaseException | None = None,
        response: HttpResponse | None = None,
    ) -> bool:
        if context.attempt >= self.max_retries:
            return False
        if not self._may_repeat(context.request):
            return False
        if exception is not None:
            return self._retryable_exception(exception)
        if response is not None:
            return response.status_code in self.retry_on_status
        return False

    def _may_repeat(self, request: HttpRequest) -> bool:
        # Repeating a POST whose first attempt may have reached the server could charge
        # a card twice; only do it when the caller said it is safe.
        return request.method.is_idempotent or self.retry_non_idempotent or request.header(IDEMPOTENCY_KEY_HEADER) is not None

    def _retryable_exception(self, exception: BaseException) -> bool:
        if not isinstance(exception, self.retry_on_exceptions):
            return False
        if isinstance(exception, SSLException):
            # Matched through ConnectionException: a certificate error will fail again.
            # Retried only if the caller listed SSLException (or a subclass) explicitly.
            return any(issubclass(kind, SSLException) for kind in self.retry_on_exceptions)
        return True

    def get_delay(self, context: RequestContext, response: HttpResponse | None = None) -> float:
        """``Retry-After`` if the server sent a readable one, else the strategy's backoff; both capped by ``max_delay``."""
        if self.respect_retry_after and response is not None:
            requested = parse_retry_after(response.header("Retry-After"))
            if requested is not None:
                return min(requested, self.max_delay)
        return min(self._backoff(context.attempt), self.max_delay)

    @abstractmethod
    def _backoff(self, attempt: int) -> float:
        """The strategy's own delay before retry number ``attempt + 1``."""


@dataclass(frozen=True)
class SimpleRetryStrategy(_RetryRules):
    """Retry after a fixed ``delay``; ``max_delay`` caps what a ``Retry-After`` header may ask for."""

    max_retries: int = 3
    delay: float = 1.0
    retry_on_status: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_on_exceptions: tuple[type[BaseException], ...] = DEFAULT_RETRY_EXCEPTIONS
    retry_non_idempotent: bool = False
    respect_retry_after: bool = True
    max_delay: float = DEFAULT_MAX_DELAY

    def __post_init__(self) -> None:
        self._validate_common()
        object.__setattr__(self, "delay", _seconds(self.delay, "delay"))
        if self.max_delay < self.delay:
            raise ConfigurationError(f"must be >= delay ({self.delay}), got {self.max_delay}", field="max_delay")

    def _backoff(self, attempt: int) -> float:
        return self.delay


@dataclass(frozen=True)
class ExponentialBackoffRetryStrategy(_RetryRules):
    """Exponential backoff with "full jitter" (AWS architecture blog, 2015).

    The delay before retry ``n + 1`` is ``uniform(0, min(max_delay, base_delay * multiplier**n))``;
    randomising over the whole range spreads clients that failed together so they do
    not come back together. With ``jitter=False`` the cap value itself is used.
    ``random`` is injectable for tests and ignored by equality and ``repr``.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: bool = True
    retry_on_status: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_on_exceptions: tuple[type[BaseException], ...] = DEFAULT_RETRY_EXCEPTIONS
    retry_non_idempotent: bool = False
    respect_retry_after: bool = True
    random: Callable[[float, float], float] = field(default=_random.uniform, compare=False, repr=False)
    #: What :meth:`aexecute` awaits between attempts (``asyncio.sleep``); injectable like ``sleep``.
    asleep: Callable[[float], Awaitable[object]] = field(default=asyncio.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._validate_common()
        object.__setattr__(self, "base_delay", _seconds(self.base_delay, "base_delay"))
        if self.max_delay < self.base_delay:
            raise ConfigurationError(f"must be >= base_delay ({self.base_delay}), got {self.max_delay}", field="max_delay")
        multiplier = self.multiplier
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not math.isfinite(multiplier) or multiplier < 1:
            raise ConfigurationError(f"must be a number >= 1, got {multiplier!r}", field="multiplier")
        object.__setattr__(self, "multiplier", float(multiplier))

    def _backoff(self, attempt: int) -> float:
        cap = _exponential(self.base_delay, self.multiplier, attempt, self.max_delay)
        return self.random(0.0, cap) if self.jitter else cap


@dataclass(frozen=True)
class CircuitBreakerRetryStrategy(RetryStrategyInterface):
    """Wrap ``inner`` so retries stop as soon as ``circuit_breaker`` opens.

    Retrying into an open circuit only produces ``CircuitBreakerException`` after a
    pointless sleep. The client finds ``circuit_breaker`` on the strategy and guards
    every attempt with it, so a strategy alone is enough to configure both.
    """

    circuit_breaker: CircuitBreaker
    inner: RetryStrategyInterface = field(default_factory=NoRetryStrategy)

    def __post_init__(self) -> None:
        from .circuit_breaker import CircuitBreaker

        if not isinstance(self.circuit_breaker, CircuitBreaker):
            raise ConfigurationError(f"must be a CircuitBreaker, got {self.circuit_breaker!r}", field="circuit_breaker")
        if not isinstance(self.inner, RetryStrategyInterface):
            raise ConfigurationError(f"must implement RetryStrategyInterface, got {self.inner!r}", field="inner")

    @property
    def max_retries(self) -> int:  # type: ignore[override]
        return self.inner.max_retries

    def should_retry(
        self,
        context: RequestContext,
        exception: BaseException | None = None,
        response: HttpResponse | None = None,
    ) -> bool:
        from .circuit_breaker import CircuitState

        if self.circuit_breaker.state is CircuitState.OPEN:
            return False
        return self.inner.should_retry(context, exception=exception, response=response)

    def get_delay(self, context: RequestContext, response: HttpResponse | None = None) -> float:
        return self.inner.get_delay(context, response=response)


# -- RetryPolicy ------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Retry any callable (not only an HTTP call) with exponential backoff (:meth:`execute`, or :meth:`aexecute` from a coroutine).

    For work that is not an :class:`HttpClient` call (a cache refresh, a token
    exchange done by hand). ``max_attempts`` counts the first try; delays are stored
    as float seconds whether given as ``timedelta`` or number. ``sleep``, ``asleep`` and
    ``random`` are injectable so tests never sleep; they are ignored by equality and ``repr``.
    """

    max_attempts: int = 3
    base_delay: timedelta | float = timedelta(seconds=1)
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    max_delay: timedelta | float | None = None
    jitter: bool = False
    sleep: Callable[[float], object] = field(default=time.sleep, compare=False, repr=False)
    random: Callable[[float, float], float] = field(default=_random.uniform, compare=False, repr=False)
    #: What :meth:`aexecute` awaits between attempts (``asyncio.sleep``); injectable like ``sleep``.
    asleep: Callable[[float], Awaitable[object]] = field(default=asyncio.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(f"must be an integer >= 1, got {self.max_attempts!r}", field="max_attempts")
        object.__setattr__(self, "base_delay", _seconds(self.base_delay, "base_delay"))
        if self.max_delay is not None:
            max_delay = _seconds(self.max_delay, "max_delay")
            if max_delay < _seconds(self.base_delay, "base_delay"):
                raise ConfigurationError(f"must be >= base_delay ({self.base_delay}), got {max_delay}", field="max_delay")
            object.__setattr__(self, "max_delay", max_delay)
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on, "retry_on", allow_empty=False))

    def delay_for(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based): ``base * 2**attempt``, capped; no jitter."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"attempt must be a non-negative integer, got {attempt!r}")
        cap = math.inf if self.max_delay is None else _as_seconds(self.max_delay)
        return _exponential(_as_seconds(self.base_delay), 2.0, attempt, cap)

    def execute(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func`` until it returns, retrying only exceptions listed in ``retry_on``.

        Anything else propagates at once (retrying a ``TypeError`` never helps); when
        the attempts run out, the last exception propagates unchanged.
        """
        for attempt in range(self.max_attempts):
            try:
                return func(*args, **kwargs)
            except self.retry_on:
                if attempt + 1 >= self.max_attempts:
                    raise
            delay = self.delay_for(attempt)
            self.sleep(self.random(0.0, delay) if self.jitter else delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    @overload
    async def aexecute(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T: ...
    @overload
    async def aexecute(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    async def aexecute(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """:meth:`execute` for the async path: ``func`` may be a coroutine function; waits with ``asyncio.sleep``.

        It awaits ``asleep`` (``asyncio.sleep``) between attempts; the sync ``sleep`` is
        not used here, since it would block the event loop.
        """
        for attempt in range(self.max_attempts):
            try:
                result = func(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result
            except self.retry_on:
                if attempt + 1 >= self.max_attempts:
                    raise
            delay = self.delay_for(attempt)
            await self.asleep(self.random(0.0, delay) if self.jitter else delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def as_strategy(self) -> ExponentialBackoffRetryStrategy:
        """The equivalent strategy for an :class:`HttpClient` (``max_retries = max_attempts - 1``).

        The HTTP rules still apply on top: only idempotent requests are retried, the
        default statuses are retried, ``SSLException`` is not, and without a
        ``max_delay`` the strategy caps delays (and ``Retry-After``) at 30 seconds,
        because an uncapped ``Retry-After`` could park a thread indefinitely.
        """
        base = _as_seconds(self.base_delay)
        max_delay = _as_seconds(self.max_delay) if self.max_delay is not None else default_max_delay(base)
        return ExponentialBackoffRetryStrategy(
            max_retries=self.max_attempts - 1,
            base_delay=base,
            max_delay=max_delay,
            multiplier=2.0,
            jitter=self.jitter,
            retry_on_exceptions=self.retry_on,
            random=self.random,
        )
