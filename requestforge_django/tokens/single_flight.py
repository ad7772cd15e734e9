"""The single-flight token cache: one fetch per key, however many threads and processes ask.

Both :class:`~requestforge_django.tokens.manager.TokenManager` and every step of a
:class:`~requestforge_django.tokens.pipeline.TokenFetchPipeline` go through this class,
so the rules below hold the same way for an OAuth token and for a pipeline step.

How a read works (:meth:`SingleFlightTokenCache.get`):

1. **Hit, lock-free.** The storage holds a token that is not expired and not yet due
   for renewal: return it. No lock, no lease; this is the path of almost every call.
2. **Refresh-ahead.** The token is valid but inside the refresh-ahead window. Exactly
   one caller renews it: a non-blocking attempt at this process's flight for the key,
   then a non-blocking attempt at the storage lease. The winner fetches; everybody
   else (other threads, other processes) returns the still-valid token at once, so
   nobody waits while a valid token exists. If the renewal fails the valid token is
   served (stale-if-error), the failure is reported to the observer and logged, and
   no further renewal is attempted for ``refresh_retry_interval`` seconds, so an
   endpoint that is down is not hammered by every request of the window.
3. **Miss (no token, or expired).** Inside the process the first caller becomes the
   *leader* of a flight; the other threads wait on the flight's future and receive
   its result, or its exception (so a failing endpoint costs one failed fetch per
   flight, not one per waiting thread). Across processes the leader takes the
   storage's lease (:meth:`TokenStorageInterface.lock`); leaders of other processes
   poll the storage with a short backoff (5 ms doubling to 50 ms) and return the token
   as soon as it appears, or take the lease when it is released or expires. After
   acquiring the lease the leader reads the storage again (double-check), so a token
   stored meanwhile is reused, never fetched twice.

**Recently read, kept locally.** A hit in a shared storage (Redis) costs a network
round trip and a decode on every call. The cache therefore remembers, per process, the
token it last read or stored for a key and serves it without asking the storage for up
to ``local_ttl`` seconds (default 1 s), as long as it is valid and not due. Only the
lock-free hit path uses this memory: every decision to fetch, every double-check under
the lease and every forced refresh reads the storage itself. The price is that a token
invalidated by *another* process is still served here for up to ``local_ttl``; a token
the partner has revoked answers 401 and is replaced at once through :meth:`refresh`.
``local_ttl=0`` turns this off.

Forced refreshes (:meth:`SingleFlightTokenCache.refresh`) use the same flights, with
"a valid token *different from the one being replaced*" as the condition for reuse:
ten threads that force a refresh of the same token together cause one fetch, and a
thread that forces a refresh after another replaced the token gets the replacement.

Nothing is half-written: a failed fetch stores nothing and deletes nothing, except a
token the server has explicitly *rejected* (``rejected=True``), which is removed so it
is never sent again. Tokens are stored with ``ttl`` = seconds until expiry plus
``storage_grace``.

The lock-free read and the lease give the guarantees; the in-process flight is an
optimisation that keeps the threads of one process from competing for the lease.
A thread that receives another thread's token (a flight's result) without reading the
storage serves it only if the storage :meth:`~.storage.TokenStorageInterface.admits` it,
and a storage may keep a token in this memory for less than ``local_ttl``, or not at all
(:meth:`~.storage.TokenStorageInterface.memory_allowance`): the Django layer's
credential fence uses both so that no token of an older credential version is served
once a change has committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from ..http.exceptions import AuthenticationException
from .data import Clock, TokenData, system_clock
from .observer import TokenObserver, notify
from .storage import InMemoryTokenStorage, TokenLock, TokenStorageInterface

logger = logging.getLogger("requestforge_django.tokens")

#: First and largest pause while polling the storage for a token another process fetches.
POLL_INITIAL: float = 0.005
POLL_MAX: float = 0.05


class FetchReason(str, Enum):
    """Why a fetch function is being called; it decides e.g. whether a provider forgets its own cache."""

    MISSING = "missing"  #: nothing stored for the key
    EXPIRED = "expired"  #: the stored token has expired
    REFRESH_AHEAD = "refresh_ahead"  #: the stored token is valid but due for renewal
    FORCED = "forced"  #: a caller asked for a newer token than the current one
    REJECTED = "rejected"  #: the server rejected the current token (e.g. HTTP 401)


#: ``fetch(current, reason)``: obtain a new token. ``current`` is what the storage held
#: when the fetch was decided (under the lease), possibly expired, or ``None``.
FetchFunction = Callable[[TokenData | None, FetchReason], TokenData]

#: ``accept(token, now)``: whether a stored token satisfies the caller.
_Accept = Callable[[TokenData | None, datetime], bool]


class _Current:
    def __repr__(self) -> str:
        return "CURRENT"


#: Sentinel for :meth:`SingleFlightTokenCache.refresh`: replace whatever is stored now.
CURRENT = _Current()


@dataclass(frozen=True)
class RenewResult:
    """What :meth:`SingleFlightTokenCache.renew_if_due` did: the token now cached and one of
    ``"fresh"`` (nothing to do), ``"renewed"``, ``"busy"`` (another process is renewing
    it) or ``"failed"`` (renewal failed, the still-valid token stays)."""

    token: TokenData
    status: str


@dataclass(frozen=True)
class _Outcome:
    token: TokenData
    fetched: bool
    failed: bool = False  #: a renewal was tried and failed; ``token`` is the still-valid old one
    busy: bool = False  #: another process holds the lease (it is renewing)


class SingleFlightTokenCache:
    """Tokens by key in a storage, fetched at most once at a time per key (see the module doc).

    One instance serves many keys; share it (or the object owning it) between the
    threads of a process. ``clock`` drives every expiry decision and is injectable
    for tests; ``sleep`` is only used while polling for another process's fetch.
    """

    def __init__(
        self,
        storage: TokenStorageInterface,
        *,
        refresh_ahead: float = 60.0,
        lock_timeout: float = 30.0,
        observer: TokenObserver | None = None,
        clock: Clock | None = None,
        storage_grace: float = 30.0,
        refresh_retry_interval: float = 5.0,
        local_ttl: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        run_renewal: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        if not isinstance(storage, TokenStorageInterface):
            raise TypeError(f"storage must implement TokenStorageInterface, got {type(storage).__name__}")
        for name, value, minimum in (
            ("refresh_ahead", refresh_ahead, 0.0),
            ("storage_grace", storage_grace, 0.0),
            ("refresh_retry_interval", refresh_retry_interval, 0.0),
            ("local_ttl", local_ttl, 0.0),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be a number >= {minimum}, got {value!r}")
        if not isinstance(lock_timeout, (int, float)) or isinstance(lock_timeout, bool) or lock_timeout <= 0:
            raise ValueError(f"lock_timeout must be a positive number of seconds, got {lock_timeout!r}")
        self._storage = storage
        self._refresh_ahead = float(refresh_ahead)
        self._lock_timeout = float(lock_timeout)
        self._observer = observer
        self._clock: Clock = clock or system_clock
        self._grace = float(storage_grace)
        self._retry_interval = timedelta(seconds=refresh_retry_interval)
        self._sleep = sleep
        self._mutex = threading.Lock()
        self._flights: dict[str, Future[_Outcome]] = {}
        self._ahead_not_before: dict[str, datetime] = {}
        self._local_ttl = timedelta(seconds=local_ttl)
        self._run_renewal = run_renewal or _in_background
        self._recent: dict[str, tuple[TokenData, datetime]] = {}  # key -> (token, served from memory until)

    # -- configuration ---------------------------------------------------------------

    @property
    def storage(self) -> TokenStorageInterface:
        return self._storage

    @property
    def refresh_ahead(self) -> float:
        return self._refresh_ahead

    @property
    def lock_timeout(self) -> float:
        return self._lock_timeout

    @property
    def observer(self) -> TokenObserver | None:
        return self._observer

    def now(self) -> datetime:
        return self._clock()

    # -- reading ------------------------------------------------------------------------

    def peek(self, key: str) -> TokenData | None:
        """The stored token (possibly expired) without fetching anything."""
        return self._storage.get(key)

    def is_due(self, token: TokenData, now: datetime | None = None) -> bool:
        """Whether ``token`` is inside its refresh-ahead window.

        The window is ``refresh_ahead`` seconds, but never more than half the token's
        lifetime: a 30-second token with a 60-second window would otherwise be
        "due" from birth and renewed on every call.
        """
        due_at = self._due_at(token)
        return due_at is not None and (now if now is not None else self._clock()) >= due_at

    def _due_at(self, token: TokenData) -> datetime | None:
        """When :meth:`is_due` starts to hold for ``token`` (``None``: never)."""
        if token.expires_at is None:
            return None
        window = self._refresh_ahead
        lifetime = token.lifetime
        if lifetime is not None and lifetime > 0:
            window = min(window, lifetime / 2.0)
        return token.expires_at - timedelta(seconds=window)

    def get(self, key: str, fetch: FetchFunction, *, service_name: str | None = None, step: str | None = None) -> TokenData:
        """A valid token for ``key``, fetching it (single-flight) when missing, expired or due.

        Raises what ``fetch`` raised (normally :class:`AuthenticationException`) only
        when no valid token can be served; ``service_name``/``step`` label the errors
        this class raises itself (waiting timeouts).
        """
        now = self._clock()
        remembered = self._memory_hit(key, now)
        if remembered is not None:
            return remembered
        token = self._storage.get(key)
        if token is not None and not token.is_expiring(0.0, now):
            if not self.is_due(token, now):
                self._remember(key, token, now)
                return token
            return self._remember(key, self._refresh_ahead_once(key, fetch, token, now))
        return self._remember(key, self._obtain(key, fetch, self._accept_valid, None, False, service_name, step))

    def memory_hit(self, key: str) -> TokenData | None:
        """The token :meth:`get` would serve from this process's memory right now, without any I/O; else ``None``.

        For callers that must not block (the ``a``-methods on an event loop): a ``None``
        means "ask :meth:`get`", which may read the storage or fetch.
        """
        now = self._clock()
        token = self._memory_hit(key, now)
        if token is None and type(self._storage) is InMemoryTokenStorage:
            stored = self._storage.get(key)  # a dict read: memory too
            if stored is not None and not stored.is_expiring(0.0, now) and not self.is_due(stored, now):
                token = self._remember(key, stored, now)
        return token

    def _memory_hit(self, key: str, now: datetime) -> TokenData | None:
        recent = self._recent.get(key)
        if recent is not None and now < recent[1]:  # ``until`` already folds in expiry and refresh-ahead
            return recent[0]
        return None

    def refresh(
        self,
        key: str,
        fetch: FetchFunction,
        *,
        stale: TokenData | _Current | None = CURRENT,
        rejected: bool = False,
        service_name: str | None = None,
        step: str | None = None,
    ) -> TokenData:
        """A valid token for ``key`` that is not ``stale``, fetching one (single-flight) if needed.

        ``stale`` is the token to replace (default: whatever is stored at call time).
        If the storage already holds a different valid token (another caller replaced
        it, perhaps in another process), that token is returned without fetching.
        Concurrent refreshes of the same stale token share one fetch.

        With ``rejected=True`` the server has refused ``stale``: if the fetch fails and
        ``stale`` is still stored, it is deleted so it is never sent again. Without it,
        a failed forced refresh leaves the current token in place and raises.
        """
        if isinstance(stale, _Current):
            stale = self._storage.get(key)
        replaced = stale

        def accept(token: TokenData | None, now: datetime) -> bool:
            return self._accept_valid(token, now) and token != replaced

        self._forget(key)
        return self._remember(key, self._obtain(key, fetch, accept, replaced, rejected, service_name, step, forced=True))

    def renew_if_due(self, key: str, fetch: FetchFunction, *, service_name: str | None = None, step: str | None = None) -> RenewResult:
        """Fetch ``key``'s token now if it is missing, expired or due; otherwise leave it alone.

        For the warm-up task (:mod:`requestforge_django.tasks`): unlike :meth:`get`, a
        due token is renewed *in the calling thread*, under the same lease as the
        request path, so beat, workers and web processes never fetch it twice. If
        another process holds the lease it is renewing the token already, and this
        call reports ``"busy"`` instead of waiting. A failed renewal of a still-valid
        token keeps it in place and reports ``"failed"`` (the observer has heard of
        the error); a failure with no valid token to fall back on raises.
        """
        now = self._clock()
        stored = self._storage.get(key)
        if stored is not None and not stored.is_expiring(0.0, now):
            if not self.is_due(stored, now):
                return RenewResult(stored, "fresh")
            outcome = self._lead_ahead(key, fetch, stored)
            if outcome.fetched:
                self._remember(key, outcome.token)
            status = "renewed" if outcome.fetched else "busy" if outcome.busy else "failed" if outcome.failed else "fresh"
            return RenewResult(outcome.token, status)
        token = self._obtain(key, fetch, self._accept_valid, None, False, service_name, step)
        return RenewResult(self._remember(key, token), "renewed" if token != stored else "fresh")

    # -- writing -----------------------------------------------------------------------

    def invalidate(self, key: str, reason: str = "manual") -> None:
        """Delete the token under ``key`` (in every process sharing the storage) and tell the observer why."""
        self._forget(key)
        self._storage.delete(key)
        with self._mutex:
            self._ahead_not_before.pop(key, None)
        logger.info("Invalidated token %s (%s)", key, reason)
        notify(self._observer, "on_invalidated", key, reason)

    def store(self, key: str, token: TokenData) -> None:
        """Store ``token`` with ttl = time to expiry + grace, and tell the observer it was obtained."""
        left = token.seconds_left(self._clock())
        ttl = None if left is None else max(left, 0.0) + self._grace
        self._storage.set(key, token, ttl)
        if left is None:
            logger.info("Obtained token %s (no expiry)", key)
        else:
            logger.info("Obtained token %s (expires in %.0f s)", key, left)
        notify(self._observer, "on_obtained", key, token)

    # -- internals -----------------------------------------------------------------------

    def _remember(self, key: str, token: TokenData, now: datetime | None = None) -> TokenData:
        """Keep ``token`` as this process's recent read of ``key`` (see the module doc).

        ``now`` is when the read began (default: now). The storage may shorten the
        memory (:meth:`~.storage.TokenStorageInterface.memory_allowance`), down to not
        keeping the token at all.
        """
        if self._local_ttl:
            until = (now if now is not None else self._clock()) + self._local_ttl
            allowance = self._storage.memory_allowance(token)
            if allowance is not None:
                until = min(until, self._clock() + timedelta(seconds=allowance))
            # Served from memory only while valid and not due (is_due implies expiring, so
            # the due time is the earlier bound): the hot path then compares one time.
            due_at = self._due_at(token)
            if due_at is not None:
                until = min(until, due_at)
            if allowance is None or allowance > 0:
                self._recent[key] = (token, until)
            else:
                self._recent.pop(key, None)
        return token

    def _forget(self, key: str) -> None:
        self._recent.pop(key, None)

    def _accept_valid(self, token: TokenData | None, now: datetime) -> bool:
        return token is not None and not token.is_expiring(0.0, now)

    def _refresh_ahead_once(self, key: str, fetch: FetchFunction, current: TokenData, now: datetime) -> TokenData:
        """Start renewing a valid-but-due token unless it is being renewed; return ``current`` at once.

        The renewal runs in the background (``run_renewal``), so not even the caller
        that noticed the window waits for the token endpoint.
        """
        with self._mutex:
            if key in self._flights:
                return current  # this process is already fetching the key
            not_before = self._ahead_not_before.get(key)
            if not_before is not None and now < not_before:
                return current  # a renewal failed moments ago, or another process is renewing
            flight: Future[_Outcome] = Future()
            self._flights[key] = flight
        self._run_renewal(lambda: self._renew(key, fetch, current, flight))
        if flight.done() and flight.exception() is None and self._storage.admits(flight.result().token):
            return flight.result().token  # a synchronous runner already has the answer
        return current

    def _renew(self, key: str, fetch: FetchFunction, current: TokenData, flight: Future[_Outcome]) -> None:
        outcome: _Outcome | None = None
        error: BaseException | None = None
        try:
            outcome = self._lead_ahead(key, fetch, current)
        except BaseException as exc:
            error = exc
            logger.warning("Renewing token %s failed unexpectedly (%s)", key, _describe(exc))
        finally:
            if outcome is not None and outcome.fetched:
                self._remember(key, outcome.token)
            backoff = None
            if error is not None or (outcome is not None and outcome.failed):
                backoff = self._retry_interval
            elif outcome is not None and outcome.busy:
                backoff = min(self._retry_interval, _LEASE_BUSY_BACKOFF)
            with self._mutex:
                if backoff is None:
                    self._ahead_not_before.pop(key, None)
                else:
                    self._ahead_not_before[key] = self._clock() + backoff
            self._finish(key, flight, outcome, error)

    def _lead_ahead(self, key: str, fetch: FetchFunction, current: TokenData) -> _Outcome:
        lease: TokenLock | None = None
        try:
            lease = self._storage.lock(key, self._lock_timeout)
            if lease is not None and not lease.acquire(blocking=False):
                return _Outcome(current, fetched=False, busy=True)  # another process is renewing it
            stored = self._storage.get(key)
        except Exception as exc:
            # A storage hiccup must not fail a caller who holds a valid token: renew later.
            if lease is not None:
                lease.release()
            logger.warning("Could not start renewing token %s (%s); serving the cached token", key, _describe(exc))
            return _Outcome(current, fetched=False, failed=True)
        try:
            now = self._clock()
            if self._accept_valid(stored, now) and not self.is_due(stored, now):  # type: ignore[arg-type]
                return _Outcome(stored, fetched=False)  # type: ignore[arg-type]  # renewed meanwhile
            reason = self._reason(stored, now, FetchReason.REFRESH_AHEAD)
            return self._fetch_and_store(key, fetch, stored, reason, stale=None, rejected=False, serve_stale=True)
        finally:
            if lease is not None:
                lease.release()

    def _obtain(
        self,
        key: str,
        fetch: FetchFunction,
        accept: _Accept,
        stale: TokenData | None,
        rejected: bool,
        service_name: str | None,
        step: str | None,
        *,
        forced: bool = False,
    ) -> TokenData:
        """Join this process's flight for ``key`` or lead a new one, until ``accept`` is satisfied."""
        # A leader needs at most the lease wait plus one fetch (which should fit in the lease).
        deadline = time.monotonic() + 2 * self._lock_timeout + 1.0
        while True:
            with self._mutex:
                flight = self._flights.get(key)
                leading = flight is None
                if flight is None:
                    flight = self._flights[key] = Future()
            if leading:
                outcome: _Outcome | None = None
                error: BaseException | None = None
                try:
                    outcome = self._lead(key, fetch, accept, stale, rejected, service_name, step, forced=forced)
                    return outcome.token
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._finish(key, flight, outcome, error)
            try:
                outcome = flight.result(timeout=max(deadline - time.monotonic(), 0.0))
            except FutureTimeout:
                raise AuthenticationException(
                    f"Timed out waiting for another thread to fetch token {key!r}", service_name=service_name, step=step
                ) from None
            usable = accept(outcome.token, self._clock()) or (outcome.fetched and not forced)
            if usable and self._storage.admits(outcome.token):
                # A token fetched for us is used even if its lifetime is zero: fetching again would loop.
                return outcome.token
            # The flight produced something we cannot use (e.g. it was a refresh-ahead that
            # returned the old token, or it reused the token we want replaced): go again.

    def _lead(
        self,
        key: str,
        fetch: FetchFunction,
        accept: _Accept,
        stale: TokenData | None,
        rejected: bool,
        service_name: str | None,
        step: str | None,
        *,
        forced: bool,
    ) -> _Outcome:
        stored = self._storage.get(key)
        if accept(stored, self._clock()):
            return _Outcome(stored, fetched=False)  # type: ignore[arg-type]  # a flight just finished
        lease = self._storage.lock(key, self._lock_timeout)
        if lease is not None:
            found = self._wait_for_lease(key, lease, accept, service_name, step)
            if found is not None:
                return _Outcome(found, fetched=False)
        try:
            if lease is not None:
                stored = self._storage.get(key)  # double-check under the lease
                if accept(stored, self._clock()):
                    return _Outcome(stored, fetched=False)  # type: ignore[arg-type]
            if forced:
                reason = FetchReason.REJECTED if rejected else FetchReason.FORCED
            else:
                reason = self._reason(stored, self._clock(), FetchReason.EXPIRED)
            return self._fetch_and_store(key, fetch, stored, reason, stale=stale, rejected=rejected, serve_stale=False)
        finally:
            if lease is not None:
                lease.release()

    def _wait_for_lease(self, key: str, lease: TokenLock, accept: _Accept, service_name: str | None, step: str | None) -> TokenData | None:
        """Take the lease (``None``) or return the token another process stored meanwhile."""
        deadline = time.monotonic() + self._lock_timeout + 1.0
        pause = POLL_INITIAL
        while True:
            if lease.acquire(blocking=False):
                return None
            stored = self._storage.get(key)
            if accept(stored, self._clock()):
                return stored
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The lease expires by itself after lock_timeout; still held means the storage's lock is broken.
                raise AuthenticationException(
                    f"Timed out after {self._lock_timeout + 1.0:.1f} s waiting for another process to fetch token {key!r}",
                    service_name=service_name,
                    step=step,
                )
            self._sleep(min(pause, remaining))
            pause = min(pause * 2, POLL_MAX)

    def _fetch_and_store(
        self,
        key: str,
        fetch: FetchFunction,
        current: TokenData | None,
        reason: FetchReason,
        *,
        stale: TokenData | None,
        rejected: bool,
        serve_stale: bool,
    ) -> _Outcome:
        try:
            token = fetch(current, reason)
            if not isinstance(token, TokenData):
                raise TypeError(f"token fetch for {key!r} returned {type(token).__name__}, not TokenData")
        except Exception as exc:
            notify(self._observer, "on_refresh_error", key, exc)
            now = self._clock()
            if serve_stale and current is not None and self._accept_valid(current, now):
                logger.warning(
                    "Renewing token %s failed (%s); serving the cached token, valid for %.0f s more",
                    key,
                    _describe(exc),
                    current.seconds_left(now) or 0.0,
                )
                return _Outcome(current, fetched=False, failed=True)
            logger.warning("Fetching token %s failed (%s: %s)", key, reason.value, _describe(exc))
            if rejected and stale is not None and self._storage.get(key) == stale:
                self.invalidate(key, "rejected")  # never send a token the server refused again
            raise
        self.store(key, token)
        return _Outcome(token, fetched=True)

    @staticmethod
    def _reason(stored: TokenData | None, now: datetime, valid_reason: FetchReason) -> FetchReason:
        if stored is None:
            return FetchReason.MISSING
        if stored.is_expiring(0.0, now):
            return FetchReason.EXPIRED
        return valid_reason

    def _finish(self, key: str, flight: Future[_Outcome], outcome: _Outcome | None, error: BaseException | None) -> None:
        with self._mutex:
            if self._flights.get(key) is flight:
                del self._flights[key]
        if outcome is not None:
            flight.set_result(outcome)
        else:
            flight.set_exception(error or RuntimeError("token flight ended without a result"))

    def __repr__(self) -> str:
        return f"SingleFlightTokenCache(storage={self._storage!r}, refresh_ahead={self._refresh_ahead}, lock_timeout={self._lock_timeout})"


#: How long to leave a due token alone after finding another process renewing it.
_LEASE_BUSY_BACKOFF = timedelta(seconds=1)


def _in_background(job: Callable[[], None]) -> None:
    """Run a refresh-ahead renewal on a daemon thread (renewals are rare: one per token lifetime)."""
    threading.Thread(target=job, name="requestforge-token-renewal", daemon=True).start()


def _describe(exc: BaseException) -> str:
    """A log-safe description: our exceptions never contain tokens; others are named by type only."""
    if isinstance(exc, AuthenticationException):
        return str(exc)
    return type(exc).__name__
