"""Multi-step token pipelines (device token -> app token -> user token) and their provider.

Every step's token is cached under ``"<cache_key_prefix>:<step>"`` through the same
:class:`~.single_flight.SingleFlightTokenCache` as :class:`TokenManager` uses, so each
step is fetched once however many threads and processes execute the pipeline, is
renewed ahead of expiry by one caller, and keeps being served if a renewal fails
while it is still valid. A step's cache lifetime is its ``ttl`` or the token's own
expiry, whichever is shorter (the cached token's ``expires_at`` is capped to it).

Failure of a step raises :class:`AuthenticationException` with ``service_name`` =
the pipeline's name and ``step`` = the step; nothing is cached for it and the
tokens of earlier steps are untouched. A step's token that cannot be sent in a header
(:func:`~.data.validate_token`) is such a failure, whatever the fetcher.

``execute(force_refresh=True)`` means "every step's token must be newer than the one
cached when I called". Concurrent forced executions therefore share one fetch per
step (the later callers find a token different from the one they wanted replaced
and reuse it), while a forced execution that starts after another finished fetches
again. :meth:`TokenFetchPipeline.refresh_from` does the same for one step and its
dependents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..http.exceptions import AuthenticationException
from .async_flight import AsyncFlights
from .data import Clock, TokenData, system_clock, validate_token
from .due_hold import DueTokenHold
from .interfaces import FetchContext, TokenFetcherInterface, TokenProviderInterface
from .observer import TokenObserver
from .single_flight import FetchReason, RenewResult, SingleFlightTokenCache
from .storage import InMemoryTokenStorage, TokenStorageInterface


class PipelineConfigurationError(ValueError):
    """The steps of a pipeline do not fit together (duplicate names, unknown or late dependencies, cycles)."""


class TokenFetchPipeline:
    """Runs token fetch steps in order, each cached and single-flight (see the module doc).

    ``name`` labels errors and logs (default: ``cache_key_prefix`` or ``"pipeline"``).
    With ``validate_dependencies`` (default) every dependency must be an earlier step;
    without it, the order is only checked when a step actually has to be fetched.
    Duplicate step names are always rejected (they would share a cache entry).
    """

    def __init__(
        self,
        steps: Sequence[TokenFetcherInterface],
        storage: TokenStorageInterface | None = None,
        cache_key_prefix: str = "",
        validate_dependencies: bool = True,
        *,
        refresh_ahead: float = 60.0,
        lock_timeout: float = 30.0,
        local_ttl: float = 1.0,
        run_renewal: Callable[[Callable[[], None]], None] | None = None,
        observer: TokenObserver | None = None,
        clock: Clock | None = None,
        name: str | None = None,
    ) -> None:
        self._steps: tuple[TokenFetcherInterface, ...] = tuple(steps)
        if not isinstance(cache_key_prefix, str):
            raise PipelineConfigurationError("cache_key_prefix must be a string")
        self._prefix = cache_key_prefix
        self._name = name or cache_key_prefix or "pipeline"
        self._by_name = _index_steps(self._steps)
        if validate_dependencies:
            _validate_dependencies(self._steps, self._by_name)
        self._dependents = _transitive_dependents(self._steps)
        self._clock: Clock = clock or system_clock
        self._cache = SingleFlightTokenCache(
            storage if storage is not None else InMemoryTokenStorage(),
            refresh_ahead=refresh_ahead,
            lock_timeout=lock_timeout,
            observer=observer,
            clock=self._clock,
            local_ttl=local_ttl,
            run_renewal=run_renewal,
        )
        self._flights: AsyncFlights[TokenData] = AsyncFlights()
        self._keys = tuple(self.step_cache_key(step.name) for step in self._steps)
        # The final token while a step is renewed, kept for asyncio callers (see aexecute).
        self._hold = DueTokenHold(self._cache, local_ttl)

    # -- description -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def steps(self) -> tuple[TokenFetcherInterface, ...]:
        return self._steps

    @property
    def step_names(self) -> list[str]:
        """Step names in execution order."""
        return [step.name for step in self._steps]

    @property
    def storage(self) -> TokenStorageInterface:
        return self._cache.storage

    @property
    def cache_key_prefix(self) -> str:
        return self._prefix

    @property
    def cache(self) -> SingleFlightTokenCache:
        return self._cache

    @property
    def due_hold(self) -> DueTokenHold:
        """The final token held for asyncio callers while a step is renewed (see :meth:`aexecute`).

        Forced refreshes and invalidations of this pipeline drop it themselves; an
        adaptor that answers a rejection without them (:class:`PipelineTokenManager`)
        drops it through :meth:`DueTokenHold.dropped`.
        """
        return self._hold

    def get_step(self, name: str) -> TokenFetcherInterface | None:
        return self._by_name.get(name)

    def step_cache_key(self, name: str) -> str:
        """The storage key of step ``name``'s token."""
        self._require(name)
        return f"{self._prefix}:{name}" if self._prefix else name

    def dependents_of(self, name: str) -> tuple[str, ...]:
        """Steps that depend on ``name``, directly or transitively, in execution order."""
        self._require(name)
        return tuple(n for n in self.step_names if n in self._dependents[name])

    def peek_step(self, name: str) -> TokenData | None:
        """The cached token of step ``name`` (possibly expired), without fetching."""
        return self._cache.peek(self.step_cache_key(name))

    # -- execution ---------------------------------------------------------------------------

    def execute(self, force_refresh: bool = False) -> TokenData:
        """Run the steps (cached ones are skipped) and return the last step's token.

        ``force_refresh``: every step is re-fetched unless another caller already
        replaced the token this call started with (see the module doc).
        """
        return self._run(frozenset(self._by_name) if force_refresh else frozenset())

    async def aexecute(self, force_refresh: bool = False) -> TokenData:
        """:meth:`execute` without blocking the event loop.

        When every step's token is in this process's memory (valid, not due) the last
        one is returned at once; otherwise one task per loop runs :meth:`execute` in a
        worker thread (single-flight across threads and processes as usual) and the
        loop's other tasks share its result or its exception.

        **Refresh-ahead without a thread per call.** A step inside its refresh-ahead
        window is never in that memory, so while any step is renewed every call would
        cost a worker thread and a read of the storage. So when the worker thread comes
        back with valid tokens of which one is due, the final token is *held* for the
        loop's tasks for at most ``local_ttl`` (less if the storage allows less, never
        past any step's expiry), as :meth:`TokenManager.aget_token` does
        (:class:`~.due_hold.DueTokenHold`). The steps' memory is served first, so a
        renewed final token wins as soon as it is there; a forced refresh or an
        invalidation of any step drops the held one.
        """
        if force_refresh:
            return await self._flights.run(("execute", True), lambda: self.execute(True))
        token = self.token_in_memory()
        if token is not None:
            return token
        return await self._flights.run(("execute", False), self._execute_for_loop)

    def token_in_memory(self) -> TokenData | None:
        """The token :meth:`aexecute` would return at once (no I/O, nothing awaited); else ``None``.

        For callers on an event loop that check before awaiting (the auth hook, through
        :meth:`PipelineTokenManager.token_in_memory`, on every call).
        """
        token: TokenData | None = None
        for key in self._keys:
            token = self._cache.memory_hit(key)
            if token is None:
                return self._hold.token()
        return token

    def _execute_for_loop(self) -> TokenData:
        """:meth:`execute` in a worker thread, holding the final token for the loop while a step is due (see :meth:`aexecute`)."""
        return self._hold.read(lambda: self._run_steps(frozenset()))

    def refresh_from(self, step_name: str | None = None) -> TokenData:
        """Re-fetch ``step_name`` and every step depending on it (all steps if ``None``); others come from the cache."""
        if step_name is None:
            return self._run(frozenset(self._by_name))
        return self._run(frozenset((step_name, *self.dependents_of(step_name))))

    def invalidate_step(self, step_name: str, reason: str = "manual") -> None:
        """Forget step ``step_name``'s token and, transitively, those of the steps depending on it."""
        with self._hold.dropped():
            for name in (step_name, *self.dependents_of(step_name)):
                self._cache.invalidate(self.step_cache_key(name), reason)

    def invalidate_all(self, reason: str = "manual") -> None:
        """Forget every step's token."""
        with self._hold.dropped():
            for key in self._keys:
                self._cache.invalidate(key, reason)

    def renew_due(self) -> dict[str, RenewResult]:
        """Renew, in order and in this thread, every step that is missing, expired or due.

        The warm-up task's entry point: a due step is renewed under the storage lease
        (so no other process fetches it too), and its dependents then see the new
        token. Returns what happened per step; raises when a step has no valid token
        and cannot fetch one (later steps are then not attempted).
        """
        context = FetchContext(clock=self._clock)
        results: dict[str, RenewResult] = {}
        for step in self._steps:

            def fetch(current: TokenData | None, reason: FetchReason, step: TokenFetcherInterface = step) -> TokenData:
                return self._fetch_step(step, context)

            result = self._cache.renew_if_due(self.step_cache_key(step.name), fetch, service_name=self._name, step=step.name)
            results[step.name] = result
            context.add_token(step.name, result.token)
        return results

    def _run(self, forced: frozenset[str]) -> TokenData:
        if not forced:
            return self._run_steps(forced)[-1]
        with self._hold.dropped():
            return self._run_steps(forced)[-1]

    def _run_steps(self, forced: frozenset[str]) -> list[TokenData]:
        """Every step's token, in order (the final one last), re-fetching the ``forced`` steps."""
        # The tokens a forced run must replace are those cached when the call started.
        stale = {name: self._cache.peek(self.step_cache_key(name)) for name in forced}
        context = FetchContext(clock=self._clock)
        tokens: list[TokenData] = []
        for step in self._steps:
            key = self.step_cache_key(step.name)

            def fetch(current: TokenData | None, reason: FetchReason, step: TokenFetcherInterface = step) -> TokenData:
                return self._fetch_step(step, context)

            if step.name in forced:
                token = self._cache.refresh(key, fetch, stale=stale[step.name], service_name=self._name, step=step.name)
            else:
                token = self._cache.get(key, fetch, service_name=self._name, step=step.name)
            context.add_token(step.name, token)
            tokens.append(token)
        if not tokens:
            raise PipelineConfigurationError(f"pipeline {self._name!r} has no steps")
        return tokens

    def _fetch_step(self, step: TokenFetcherInterface, context: FetchContext) -> TokenData:
        missing = [dep for dep in step.depends_on if dep not in context]
        if missing:
            raise PipelineConfigurationError(
                f"pipeline {self._name!r}: step {step.name!r} needs {', '.join(map(repr, missing))}, which did not run before it"
            )
        try:
            token = step.fetch(context)
        except AuthenticationException as exc:
            raise self._step_error(step, exc) from exc
        except Exception as exc:
            raise AuthenticationException(
                f"step failed ({type(exc).__name__})", service_name=self._name, step=step.name, original=exc
            ) from exc
        if not isinstance(token, TokenData):
            raise AuthenticationException(f"step returned {type(token).__name__}, not TokenData", service_name=self._name, step=step.name)
        try:
            validate_token(token)
        except AuthenticationException as exc:
            raise AuthenticationException(exc.message, service_name=self._name, step=step.name) from None
        if step.ttl is not None:
            token = token.expiring_no_later_than(self._clock() + step.ttl)
        return token

    def _step_error(self, step: TokenFetcherInterface, exc: AuthenticationException) -> AuthenticationException:
        """The fetcher's error, relabelled with this pipeline and step (the original kept as cause)."""
        return AuthenticationException(
            exc.message,
            service_name=self._name,
            step=step.name,
            status_code=exc.status_code,
            error=exc.error,
            error_description=exc.error_description,
            method=exc.method,
            url=exc.url,
            original=exc.original or exc,
        )

    def _require(self, name: str) -> None:
        if name not in self._by_name:
            raise PipelineConfigurationError(f"pipeline {self._name!r} has no step {name!r} (steps: {', '.join(self.step_names)})")

    def __repr__(self) -> str:
        return f"TokenFetchPipeline(name={self._name!r}, steps={self.step_names!r}, storage={self.storage!r})"


class PipelineTokenProvider(TokenProviderInterface):
    """A pipeline as a :class:`TokenProviderInterface`, so a :class:`TokenManager` can serve its final token.

    Layering: the manager caches the final token under its own key, and the pipeline
    caches it as its last step; both expire together (the step's TTL caps the token's
    ``expires_at``). When the manager's token is invalidated or rejected (a 401), the
    manager calls :meth:`invalidate`, which invalidates ``refresh_from_step`` and its
    dependents (or every step), so the next fetch really goes to the server instead of
    returning the same cached last-step token.
    """

    def __init__(self, pipeline: TokenFetchPipeline, service_name: str, refresh_from_step: str | None = None) -> None:
        if not isinstance(service_name, str) or not service_name:
            raise ValueError("service_name must be a non-empty string")
        if refresh_from_step is not None and pipeline.get_step(refresh_from_step) is None:
            raise PipelineConfigurationError(f"refresh_from_step {refresh_from_step!r} is not a step of pipeline {pipeline.name!r}")
        self._pipeline = pipeline
        self._service_name = service_name
        self._refresh_from_step = refresh_from_step

    @property
    def service_name(self) -> str:
        return self._service_name

    @property
    def pipeline(self) -> TokenFetchPipeline:
        return self._pipeline

    @property
    def refresh_from_step(self) -> str | None:
        return self._refresh_from_step

    def fetch_token(self) -> TokenData:
        """The pipeline's final token (cached steps are reused)."""
        return self._pipeline.execute()

    def refresh_token(self, current: TokenData) -> TokenData:
        """Re-fetch ``refresh_from_step`` and its dependents (or every step), single-flight."""
        return self._pipeline.refresh_from(self._refresh_from_step)

    def invalidate(self) -> None:
        if self._refresh_from_step is not None:
            self._pipeline.invalidate_step(self._refresh_from_step)
        else:
            self._pipeline.invalidate_all()

    def __repr__(self) -> str:
        return (
            f"PipelineTokenProvider(service_name={self._service_name!r}, pipeline={self._pipeline.name!r}, "
            f"refresh_from_step={self._refresh_from_step!r})"
        )


# -- step validation --------------------------------------------------------------------------


def _index_steps(steps: Sequence[TokenFetcherInterface]) -> dict[str, TokenFetcherInterface]:
    if not steps:
        raise PipelineConfigurationError("a pipeline needs at least one step")
    by_name: dict[str, TokenFetcherInterface] = {}
    for position, step in enumerate(steps):
        if not isinstance(step, TokenFetcherInterface):
            raise PipelineConfigurationError(f"step #{position} ({type(step).__name__}) does not implement TokenFetcherInterface")
        name = getattr(step, "name", None)
        if not isinstance(name, str) or not name:
            raise PipelineConfigurationError(f"step #{position} ({type(step).__name__}) has no name")
        if name in by_name:
            raise PipelineConfigurationError(f"duplicate step name {name!r}")
        depends_on = getattr(step, "depends_on", ())
        if isinstance(depends_on, str) or not all(isinstance(d, str) for d in depends_on):
            raise PipelineConfigurationError(f"step {name!r}: depends_on must be a tuple of step names, got {depends_on!r}")
        by_name[name] = step
    return by_name


def _validate_dependencies(steps: Sequence[TokenFetcherInterface], by_name: dict[str, TokenFetcherInterface]) -> None:
    for step in steps:
        for dep in step.depends_on:
            if dep not in by_name:
                raise PipelineConfigurationError(f"step {step.name!r} depends on unknown step {dep!r}")
    cycle = _find_cycle(steps)
    if cycle:
        raise PipelineConfigurationError(f"dependency cycle between steps: {' -> '.join(cycle)} (first: step {cycle[0]!r})")
    seen: set[str] = set()
    for step in steps:
        for dep in step.depends_on:
            if dep not in seen:
                raise PipelineConfigurationError(f"step {step.name!r} depends on {dep!r}, which comes after it; list {dep!r} first")
        seen.add(step.name)


def _find_cycle(steps: Sequence[TokenFetcherInterface]) -> list[str] | None:
    graph = {step.name: tuple(step.depends_on) for step in steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in graph.get(name, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep in graph and dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in graph:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def _transitive_dependents(steps: Iterable[TokenFetcherInterface]) -> dict[str, frozenset[str]]:
    direct: dict[str, set[str]] = {step.name: set() for step in steps}
    for step in steps:
        for dep in step.depends_on:
            direct.setdefault(dep, set()).add(step.name)
    result: dict[str, frozenset[str]] = {}
    for name in direct:
        found: set[str] = set()
        todo = list(direct[name])
        while todo:
            current = todo.pop()
            if current not in found and current != name:
                found.add(current)
                todo.extend(direct.get(current, ()))
        result[name] = frozenset(found)
    return result
