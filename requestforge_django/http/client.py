"""``HttpClient``: the request lifecycle, read top to bottom in :meth:`HttpClient.request`.

One call goes through:

1. request hooks (observers; each may return a modified copy of the request),
2. the origin check (a client with credentials sends them only to its BASE_URL origin and
   its trusted origins: any other destination is refused with ``UntrustedOriginException``
   before a token is fetched or a byte is sent; checked again by the transport after every
   hook, and for each redirect hop, see :mod:`.transport`), then the auth hook
   (credentials; its errors propagate),
3. the circuit breaker and the rate limiter (may refuse without touching the network),
4. the send (:mod:`.transport`),
5. 401 handling: if the auth hook recognises an auth error, it refreshes once and the
   request is sent once more (this is not counted as a retry),
6. the retry decision (the strategy, a value, looks at the attempt in the context),
7. response hooks on the final response, or error hooks on the exception raised.

Thread safety: each thread gets its own ``requests.Session`` (connection pool) the
first time it uses the client; configuration, strategies and hooks are shared values.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import requests

from .builtin_hooks import SENSITIVE_HEADERS_KEY
from .config import HttpClientConfig
from .exceptions import CircuitBreakerException, ConnectionException, HttpClientException, MaxRetryException, TimeoutException
from .fan_out import send_in_order
from .hooks import AuthHookInterface, acall, arefresh_auth, refresh_auth
from .messages import HttpMethod, HttpRequest, HttpResponse, RequestContext
from .secrets import Origin
from .transport import Transport
from .wire import RequestWire

if TYPE_CHECKING:
    from .async_transport import AsyncTransport
    from .rate_limit import RateLimiterInterface

logger = logging.getLogger("requestforge_django.http")

Params = Mapping[str, Any] | None
Headers = Mapping[str, str] | None
Timeout = float | tuple[float, float] | None


class HttpClient:
    """A thread-safe HTTP client built from a frozen :class:`HttpClientConfig`."""

    def __init__(
        self,
        config: HttpClientConfig | None = None,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or HttpClientConfig()
        self._wire = RequestWire(self.config)
        self._transport = Transport(self.config, self._wire)
        self._shared_session = session
        self._local = threading.local()
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._sessions_lock = threading.Lock()
        self._generation = 0
        self._sleep = sleep
        self._executor_lock = threading.Lock()
        self._executor: Any = None
        self._async_transport: AsyncTransport | None = None

    # -- sessions ----------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """This thread's session (created on first use; recreated after :meth:`close`)."""
        if self._shared_session is not None:
            return self._shared_session
        local = self._local
        session = getattr(local, "session", None)
        if session is None or local.generation != self._generation:
            session = self._transport.create_session()
            with self._sessions_lock:
                self._sessions.add(session)
                local.session, local.generation = session, self._generation
        return session

    def close(self) -> None:
        """Close the sessions of every thread and the ``request_many`` workers.

        The client stays usable: a thread that calls it again gets a fresh session.
        """
        with self._sessions_lock:
            sessions = list(self._sessions)
            self._sessions = weakref.WeakSet()
            self._generation += 1
        for session in sessions:
            session.close()
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def absolute_url(self, url: str) -> str:
        """The URL a request for ``url`` goes to: relative URLs are joined to the base URL."""
        return self._wire.absolute_url(url)

    def trusts(self, url: str) -> bool:
        """Whether ``url`` (relative or absolute) is on the base URL's origin or a trusted one."""
        return self.config.trusts(self.absolute_url(url))

    # -- verbs ------------------------------------------------------------------
    def get(self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None) -> HttpResponse:
        return self._verb(HttpMethod.GET, url, params, headers, timeout)

    def head(self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None) -> HttpResponse:
        return self._verb(HttpMethod.HEAD, url, params, headers, timeout)

    def options(self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None) -> HttpResponse:
        return self._verb(HttpMethod.OPTIONS, url, params, headers, timeout)

    def delete(
        self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None, json_data: Any = None
    ) -> HttpResponse:
        return self._verb(HttpMethod.DELETE, url, params, headers, timeout, json_data)

    def post(
        self, url: str, json_data: Any = None, data: Any = None, params: Params = None, headers: Headers = None, timeout: Timeout = None
    ) -> HttpResponse:
        return self._verb(HttpMethod.POST, url, params, headers, timeout, json_data, data)

    def put(
        self, url: str, json_data: Any = None, data: Any = None, params: Params = None, headers: Headers = None, timeout: Timeout = None
    ) -> HttpResponse:
        return self._verb(HttpMethod.PUT, url, params, headers, timeout, json_data, data)

    def patch(
        self, url: str, json_data: Any = None, data: Any = None, params: Params = None, headers: Headers = None, timeout: Timeout = None
    ) -> HttpResponse:
        return self._verb(HttpMethod.PATCH, url, params, headers, timeout, json_data, data)

    def _verb(
        self, method: HttpMethod, url: str, params: Params, headers: Headers, timeout: Timeout, json_data: Any = None, data: Any = None
    ) -> HttpResponse:
        return self.request(HttpRequest(method, url, headers or {}, params, json_data, data, timeout))

    # -- the lifecycle ----------------------------------------------------------------
    def request(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` through hooks, auth, breaker, retries; return the final response."""
        strategy = self.config.retry_strategy
        context = self._new_context(request)
        try:
            while True:
                outgoing, response, error = self._attempt(request, context)
                if response is not None and self._should_refresh_auth(outgoing, response, context):
                    continue
                if not strategy.should_retry(context, exception=error, response=response):
                    break
                delay = strategy.get_delay(context, response=response)
                context.increment_attempt()
                if delay > 0:
                    self._sleep(delay)
            return self._final(context, response, error)
        except Exception as exc:
            self._run_error_hooks(exc, context)
            raise

    def _new_context(self, request: HttpRequest) -> RequestContext:
        context = RequestContext(request, max_retries=self.config.retry_strategy.max_retries)
        if self.config.sensitive_headers:
            context.metadata[SENSITIVE_HEADERS_KEY] = self.config.sensitive_headers
        return context

    def _final(self, context: RequestContext, response: HttpResponse | None, error: HttpClientException | None) -> HttpResponse:
        """The outcome of the last attempt: the response through the response hooks, or the error to raise."""
        if context.attempt and self.config.retry_strategy.should_retry(RequestContext(context.request), exception=error, response=response):
            # The last attempt failed the way earlier ones did: retries are exhausted.
            raise self._exhausted(context, error, response)
        if error is not None:
            raise error
        response = cast(HttpResponse, response)  # no error: a response
        return self._run_response_hooks(response, context) if self.config.response_hooks else response

    def _attempt(
        self, request: HttpRequest, context: RequestContext
    ) -> tuple[HttpRequest, HttpResponse | None, HttpClientException | None]:
        """One send: hooks, auth, guards, transport. Transport failures are returned, not raised."""
        config = self.config
        outgoing = self._run_request_hooks(request, context)
        self._wire.check_destination(outgoing)
        auth = config.auth_hook
        if auth is not None and auth.should_authenticate(outgoing):
            outgoing = auth.before_request(outgoing, context)
        if config.rate_limiter is not None:
            config.rate_limiter.acquire()
        breaker = config.effective_circuit_breaker
        if breaker is not None and not breaker.allow_request():
            raise self._breaker_open(breaker, outgoing)
        response: HttpResponse | None = None
        error: HttpClientException | None = None
        try:
            response = self._transport.send(self.session, outgoing, context.started_at)
        except HttpClientException as exc:
            error = exc  # a transport failure: the retry decision sees it
        except BaseException:
            if breaker is not None:
                breaker.record_ignored()  # frees a half-open probe slot
            raise
        if breaker is not None:
            getattr(breaker, breaker_verdict(response, error))()
        return outgoing, response, error

    def _breaker_open(self, breaker: Any, outgoing: HttpRequest) -> CircuitBreakerException:
        return CircuitBreakerException(
            f"Circuit breaker{' ' + breaker.name if breaker.name else ''} is open",
            retry_after=breaker.retry_after,
            method=outgoing.method.value,
            url=self._wire.absolute_url(outgoing.url),
        )

    def _wants_auth_refresh(self, sent: HttpRequest, response: HttpResponse, context: RequestContext) -> bool:
        """Whether this is the call's first auth error that the auth hook may recover from (marks the call)."""
        auth = self.config.auth_hook
        if auth is None or context.auth_retried or not auth.is_auth_error(response) or not auth.should_authenticate(sent):
            return False
        context.auth_retried = True
        return True

    def _should_refresh_auth(self, sent: HttpRequest, response: HttpResponse, context: RequestContext) -> bool:
        """On the first auth error of a call, let the auth hook refresh; ``True`` means send again."""
        if not self._wants_auth_refresh(sent, response, context):
            return False
        return refresh_auth(cast(AuthHookInterface, self.config.auth_hook), context)

    def _exhausted(self, context: RequestContext, error: HttpClientException | None, response: HttpResponse | None) -> MaxRetryException:
        request = context.request
        last = f"HTTP {response.status_code}" if response is not None else type(error).__name__
        return MaxRetryException(
            f"Gave up after {context.attempt + 1} attempts (last: {last})",
            attempts=context.attempt + 1,
            last_exception=error,
            last_response=response,
            method=request.method.value,
            url=self._wire.absolute_url(request.url),
        )

    # -- async (Django's a-prefix convention; see docs/async.md) ------------------------------
    @property
    def async_transport(self) -> AsyncTransport:
        """The ``aiohttp`` transport (created on first async use; needs the ``async`` extra)."""
        transport = self._async_transport
        if transport is None:
            from .async_transport import AsyncTransport

            transport = self._async_transport = AsyncTransport(self.config, self._wire)
        return transport

    async def aclose(self) -> None:
        """Close this event loop's connections; the client stays usable (a later call reconnects)."""
        if self._async_transport is not None:
            await self._async_transport.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aget(self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.GET, url, headers or {}, params, None, None, timeout))

    async def ahead(self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.HEAD, url, headers or {}, params, None, None, timeout))

    async def aoptions(self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.OPTIONS, url, headers or {}, params, None, None, timeout))

    async def adelete(
        self, url: str, params: Params = None, headers: Headers = None, timeout: Timeout = None, json_data: Any = None
    ) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.DELETE, url, headers or {}, params, json_data, None, timeout))

    async def apost(
        self, url: str, json_data: Any = None, data: Any = None, params: Params = None, headers: Headers = None, timeout: Timeout = None
    ) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.POST, url, headers or {}, params, json_data, data, timeout))

    async def aput(
        self, url: str, json_data: Any = None, data: Any = None, params: Params = None, headers: Headers = None, timeout: Timeout = None
    ) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.PUT, url, headers or {}, params, json_data, data, timeout))

    async def apatch(
        self, url: str, json_data: Any = None, data: Any = None, params: Params = None, headers: Headers = None, timeout: Timeout = None
    ) -> HttpResponse:
        return await self.arequest(HttpRequest(HttpMethod.PATCH, url, headers or {}, params, json_data, data, timeout))

    async def arequest(self, request: HttpRequest) -> HttpResponse:
        """:meth:`request` on the event loop: the same lifecycle, in the same order, without blocking the loop.

        The send is awaited here, not in a helper: while a call waits for the partner, the
        fewer frames of ours on its coroutine stack, the less every resumption costs.
        """
        strategy = self.config.retry_strategy
        context = self._new_context(request)
        transport = self.async_transport
        try:
            while True:
                outgoing, target, breaker = await self._abefore_send(request, context)
                response: HttpResponse | None = None
                error: HttpClientException | None = None
                try:
                    response = await transport.send(outgoing, context.started_at, target)
                except HttpClientException as exc:
                    error = exc  # a transport failure: the retry decision sees it
                except BaseException:
                    if breaker is not None:
                        breaker.record_ignored_nowait()  # frees a half-open probe slot; never awaits, never blocks the loop
                    raise
                if breaker is not None:
                    verdict = breaker_verdict(response, error)
                    await acall(breaker, f"a{verdict}", verdict)
                if (
                    response is not None
                    and self._wants_auth_refresh(outgoing, response, context)
                    and await arefresh_auth(cast(AuthHookInterface, self.config.auth_hook), context)
                ):
                    continue
                if not strategy.should_retry(context, exception=error, response=response):
                    break
                delay = strategy.get_delay(context, response=response)
                context.increment_attempt()
                if delay > 0:
                    await asyncio.sleep(delay)
            return self._final(context, response, error)
        except Exception as exc:
            self._run_error_hooks(exc, context)
            raise

    async def _abefore_send(
        self, request: HttpRequest, context: RequestContext
    ) -> tuple[HttpRequest, tuple[str, Origin | None] | None, Any]:
        """The first half of :meth:`_attempt`, awaited: hooks, origin check, auth, limiter, breaker.

        Returns the request to send, its wire URL if the origin check worked it out (unless
        the auth hook moved the request), and the breaker guarding the send.
        """
        config = self.config
        outgoing = self._run_request_hooks(request, context) if config.request_hooks else request
        checked = self._wire.check_destination(outgoing)
        url, params = outgoing.url, outgoing.params
        auth = config.auth_hook
        if auth is not None and auth.should_authenticate(outgoing):
            before = getattr(type(auth), "abefore_request", None)
            if before is AuthHookInterface.abefore_request:
                outgoing = auth.before_request(outgoing, context)  # the interface's default: the sync method, inline
            elif before is not None:
                outgoing = await auth.abefore_request(outgoing, context)
            else:  # a duck-typed hook written for the sync path only: it may block, so off the loop
                outgoing = await asyncio.to_thread(auth.before_request, outgoing, context)
        if config.rate_limiter is not None:
            await acall(config.rate_limiter, "aacquire", "acquire")
        breaker = config.effective_circuit_breaker
        if breaker is not None and not await acall(breaker, "aallow_request", "allow_request"):
            raise self._breaker_open(breaker, outgoing)
        return outgoing, checked if outgoing.url is url and outgoing.params is params else None, breaker

    async def arequest_many(
        self,
        requests: Iterable[HttpRequest],
        max_concurrency: int = 10,
        fail_fast: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[HttpResponse | Exception]:
        """Send ``requests`` with at most ``max_concurrency`` in flight; results in input order.

        A fixed set of ``max_concurrency`` worker tasks pulls from the input, so memory is
        bounded by the concurrency, not by the number of requests (a generator is read lazily).
        A failed request's slot holds its exception; with ``fail_fast`` the first failure
        stops new sends and is raised once the sends in flight have finished.
        ``on_progress(done, total)`` is called after each request (``total`` is ``-1`` while the
        input is an iterator of unknown length).
        """
        return await send_in_order(self.arequest, requests, max_concurrency, fail_fast, on_progress)

    # -- hooks (observers: a failing hook is logged and skipped) -------------------------
    def _run_request_hooks(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        for hook in self.config.request_hooks:
            try:
                request = hook.before_request(request, context)
            except Exception:
                logger.exception("Request hook %s failed; continuing without it", type(hook).__name__)
        return request

    def _run_response_hooks(self, response: HttpResponse, context: RequestContext) -> HttpResponse:
        for hook in self.config.response_hooks:
            try:
                response = hook.after_response(response, context)
            except Exception:
                logger.exception("Response hook %s failed; continuing without it", type(hook).__name__)
        return response

    def _run_error_hooks(self, error: Exception, context: RequestContext) -> None:
        for hook in self.config.error_hooks:
            try:
                hook.on_error(error, context)
            except Exception:
                logger.exception("Error hook %s failed; continuing without it", type(hook).__name__)

    # -- concurrency -------------------------------------------------------------------------
    def request_many(
        self,
        requests: Iterable[HttpRequest],
        max_workers: int = 10,
        fail_fast: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        *,
        rate_limiter: RateLimiterInterface | None = None,
    ) -> list[HttpResponse | Exception]:
        """Send ``requests`` with at most ``max_workers`` in flight; results in input order.

        A failed request's slot holds its exception; with ``fail_fast`` the first failure
        stops new sends and is raised once the sends in flight have finished.
        ``on_progress(done, total)`` is called after each request, in order, from the
        worker that finished it. The client's rate limiter applies to every attempt as
        always; ``rate_limiter`` adds one for this batch only (a permit per request).
        The calling thread is one of the workers (see :mod:`.concurrency`).
        """
        from .concurrency import run_concurrently

        return run_concurrently(
            self, list(requests), max_workers=max_workers, fail_fast=fail_fast, on_progress=on_progress, rate_limiter=rate_limiter
        )

    def _start_workers(self, work: Callable[[], None], count: int) -> None:
        """Run ``work`` on ``count`` threads of a long-lived pool, so workers (and their
        sessions' connections) survive between calls.

        Submitting under the lock means a concurrent resize or :meth:`close` can never
        leave us submitting to a pool that was just shut down.
        """
        from concurrent.futures import ThreadPoolExecutor

        with self._executor_lock:
            executor = self._executor
            if executor is None or executor._max_workers < count:
                if executor is not None:
                    executor.shutdown(wait=False)  # its threads finish what they run, then exit
                executor = self._executor = ThreadPoolExecutor(max_workers=max(count, 4), thread_name_prefix="requestforge")
            for _ in range(count):
                executor.submit(work)

    def __repr__(self) -> str:
        return f"HttpClient(base_url={self.config.base_url!r}{', name=' + repr(self.config.name) if self.config.name else ''})"


def breaker_verdict(response: HttpResponse | None, error: HttpClientException | None) -> str:
    """What one send tells a circuit breaker, as the name of its ``record_*`` method (both paths use it).

    A refused or timed-out connection and a 5xx answer are failures; any other transport
    error (a bad URL or body, too many redirects) is not a verdict on the partner's health.
    """
    if isinstance(error, (ConnectionException, TimeoutException)) or (response is not None and response.status_code >= 500):
        return "record_failure"
    return "record_ignored" if error is not None else "record_success"


def request_results(results: Sequence[HttpResponse | Exception]) -> list[HttpResponse]:
    """Raise the first captured exception of ``request_many`` results, else return the responses."""
    for result in results:
        if isinstance(result, Exception):
            raise result
    return list(results)  # type: ignore[arg-type]
