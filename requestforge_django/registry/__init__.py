"""The per-process registry: named clients, pipelines and token managers, built once.

``get_client("billing")`` is called on every request path, so it must be a dictionary
lookup after the first call; and the objects behind it are shared by every thread, so
building them must happen once even when twenty threads ask at the same time. The
:class:`Registry` therefore builds each name lazily, under a lock, and serves later calls
without locking.

The package holds one concept per module:

* :mod:`.loading`: where definitions come from (the ``REQUESTFORGE`` setting, then
  admin-edited rows, read **one name at a time** when first asked for, and every row at
  once only for the pages and commands that list them all: :meth:`Registry.definitions`);
* :mod:`.building`: specs to objects;
* :mod:`.changes`: the generation counter and change log in the shared cache;
* :mod:`.state`: what one process has resolved and built, and what a change makes it forget;
* this module: the lookups, and when to poll and forget.

When definitions change:

* ``override_settings`` / ``setting_changed``: :func:`conf.reload_requestforge_settings`
  calls :meth:`Registry.reset` through ``requestforge_settings.on_reload``;
* a definition or credential saved in any process: when its transaction commits, the
  saving process publishes the names that changed (:func:`bump_generation`): it raises
  the counter under ``<KEY_PREFIX>:generation`` in the shared cache and logs the names
  under that generation. Every process compares the counter with its own at most every
  :data:`GENERATION_CHECK_INTERVAL` seconds (one cache ``get``, on the first lookup after
  that interval) and, when it moved, reads the names logged since (one ``get_many``) and
  forgets only those: the changed clients and pipelines, the clients using a changed
  credential or pipeline. They are rebuilt when next asked for; every other object stays
  as it is, and its callers never wait for a rebuild. A process that cannot tell what
  changed forgets everything (see :mod:`.changes`). A process that is making calls serves
  a change within that interval of the commit, an idle one from its next call.

Every token is stored through one :class:`DjangoCacheTokenStorage` on the ``CACHE``
alias, so every process shares it; a client whose ``AUTH["CREDENTIAL"]`` names a
``Credential`` serves only tokens of the credential's current version
(:mod:`requestforge_django.fencing`). Token events reach the public signals through
:class:`SignalTokenObserver`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from ..http.client import HttpClient
from ..http.exceptions import ConfigurationError
from ..setting.conf import requestforge_settings
from ..setting.rules.subjects import auth_kind, subject_in, subject_problem
from ..setting.specs import ClientSpec, PipelineSpec
from ..tokens.pipeline import TokenFetchPipeline
from ..tokens.pipeline_manager import PipelineTokenManager
from .building import (
    build_circuit_breaker,
    build_client,
    build_hooks,
    build_oauth_manager,
    build_oauth_provider,
    build_pipeline,
    build_rate_limiter,
    build_retry_strategy,
    build_static_auth_hook,
    build_step,
    token_limits,
    token_request_timeout,
)
from .changes import EVERYTHING, UNREADABLE, Changes, follows, generation_key, publish_changes, read_changes, read_generation
from .exchange import UnboundSubjectError, ensure_subject_bound
from .loading import ClientEntry, Definitions, PipelineEntry, load_client, load_definitions, load_pipeline, resolve_credential
from .state import State, TokenSource, close_clients

logger = logging.getLogger("requestforge_django")

__all__ = [
    "GENERATION_CHECK_INTERVAL",
    "UNREADABLE",
    "Changes",
    "UnboundSubjectError",
    "Definitions",
    "Registry",
    "TokenSource",
    "UnknownNameError",
    "build_circuit_breaker",
    "build_hooks",
    "build_oauth_provider",
    "build_rate_limiter",
    "build_retry_strategy",
    "build_step",
    "bump_generation",
    "generation_key",
    "aget_client",
    "get_client",
    "get_pipeline",
    "get_token_manager",
    "load_definitions",
    "read_generation",
    "registry",
    "resolve_credential",
    "token_limits",
    "token_request_timeout",
]

#: Seconds between two reads of the shared generation value (per process).
GENERATION_CHECK_INTERVAL = 0.5

T = TypeVar("T")


class UnknownNameError(LookupError):
    """``get_client``/``get_pipeline``/``get_token_manager`` was given a name nobody defined."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(sorted(known))
        listed = ", ".join(repr(k) for k in self.known) or "(none)"
        super().__init__(f"No {kind} named {name!r}; known: {listed}. Define it in REQUESTFORGE or in the admin.")

    def __str__(self) -> str:
        return str(self.args[0])


class _Missing(Exception):
    """Raised under the lock when a name is not defined; turned into :class:`UnknownNameError` outside it.

    The error lists every known name, which needs every definition: that is read only on
    this error path, and without holding the lock.
    """

    def __init__(self, error: Callable[[Definitions], UnknownNameError]) -> None:
        self.error = error


def bump_generation(*, clients: Iterable[str] = (), pipelines: Iterable[str] = (), credentials: Iterable[str] = ()) -> str | None:
    """Tell every process that database definitions or credentials changed (they catch up within GENERATION_CHECK_INTERVAL).

    Name what changed (the receivers do): other processes then forget only those names
    and what uses them. Without names, everything is assumed to have changed. This
    process forgets them at once. If the cache is unreachable the others cannot be told:
    that is logged as an error and ``None`` returned (the save itself stands).
    """
    changes = Changes.of(clients=clients, pipelines=pipelines, credentials=credentials) or EVERYTHING
    spec = requestforge_settings.spec
    value: str | None
    try:
        value = publish_changes(spec, changes)
    except Exception as exc:
        logger.error(
            "Could not publish a definitions change through cache %r (%s); other processes keep the old definitions until restarted",
            spec.cache,
            type(exc).__name__,
        )
        value = None
    registry.forget(changes, published=value)
    return value


class Registry:
    """Builds and caches the named objects of this process; see the module docstring.

    Three locks, so that a caller of a built object never waits for another name:
    ``_lock`` is held while building (one build at a time, so each object is built once),
    ``_poll_lock`` while reading the shared generation, and ``_store_lock`` for a moment to
    change what is kept. A build that started before a change was applied is handed to
    its caller but not kept (it may have read what changed), so the next lookup rebuilds.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._state: State | None = None
        self._checked_at = 0.0

    # -- public lookups ----------------------------------------------------------------------------

    def get_client(self, name: str) -> HttpClient:
        """The :class:`HttpClient` named ``name`` (built on first use, then shared by every thread)."""
        state = self._current()
        client = state.clients.get(name)
        if client is None:
            client = self._lookup(state, state.clients, name, self._build_client)
        return client

    def get_pipeline(self, name: str) -> TokenFetchPipeline:
        """The :class:`TokenFetchPipeline` named ``name``; its step tokens live in the shared cache."""
        state = self._current()
        pipeline = state.pipelines.get(name)
        if pipeline is None:
            pipeline = self._lookup(state, state.pipelines, name, self._build_pipeline)
        return pipeline

    def get_token_manager(self, name: str) -> TokenSource:
        """The token source of client or pipeline ``name``.

        A client with ``client_credentials`` or ``password`` auth: its
        :class:`TokenManager`. A client with ``pipeline`` auth, or a pipeline name: a
        :class:`PipelineTokenManager` over that pipeline (clients sharing a pipeline
        share it too).
        """
        state = self._current()
        manager = state.managers.get(name)
        if manager is None:
            manager = self._lookup(state, state.managers, name, self._build_manager)
        return manager

    def client_spec(self, name: str) -> ClientSpec | None:
        """The spec of client ``name`` as this process knows it (read when first asked for), ``None`` if not defined."""
        state = self._current()
        with self._lock:
            return self._client_spec(state, name)

    def pipeline_spec(self, name: str) -> PipelineSpec | None:
        """The spec of pipeline ``name`` as this process knows it (read when first asked for), ``None`` if not defined."""
        state = self._current()
        with self._lock:
            return self._pipeline_spec(state, name)

    def definitions(self) -> Definitions:
        """Every definition, settings and database (read at once when first asked for, and again after a change).

        For the pages and commands that list every name; lookups by name never need it.
        """
        state = self._current()
        snapshot = state.definitions
        if snapshot is not None:
            return snapshot
        changed = state.changed
        loaded = load_definitions(state.settings, state.generation)  # no lock held: lookups go on meanwhile
        with self._store_lock:
            if state.definitions is None and state.changed == changed and self._state is state:
                state.definitions = loaded
            return state.definitions or loaded

    def forget(self, changes: Changes, *, published: str | None = None) -> None:
        """Forget the objects ``changes`` names (everything for :data:`~.changes.EVERYTHING`); rebuilt when asked for.

        ``published``: the generation under which this process just published ``changes``;
        when it follows the one this process is at, nothing else can have changed in between.
        """
        if changes.everything:
            self.reset()
            return
        with self._store_lock:
            state = self._state
            dropped = state.forget(changes) if state is not None else []
            if state is not None and published is not None and follows(published, state.generation):
                state.generation = published
        close_clients(dropped)

    def reset(self) -> None:
        """Forget everything built; the next lookup rebuilds from the current definitions."""
        with self._store_lock:
            state, self._state = self._state, None
            self._checked_at = 0.0
        if state is not None:
            state.close()

    # -- the shared generation ------------------------------------------------------------------------

    def _current(self) -> State:
        state = self._state
        now = time.monotonic()
        if state is not None and now - self._checked_at < GENERATION_CHECK_INTERVAL:
            return state
        with self._poll_lock:
            state = self._state
            if state is not None and now - self._checked_at < GENERATION_CHECK_INTERVAL:
                return state
            spec = requestforge_settings.spec
            generation = read_generation(spec)
            if state is not None and generation in (state.generation, UNREADABLE):
                self._checked_at = now
                return state
            changes = EVERYTHING if state is None else read_changes(spec, state.generation, generation)
            if state is not None:
                logger.info("Definitions changed (generation %s): %s", generation, _describe(changes))
            dropped: Iterable[HttpClient] = ()
            with self._store_lock:
                if state is None or self._state is not state or changes.everything:
                    old, state = self._state, State(spec, generation)
                    self._state = state
                    dropped = list(old.clients.values()) if old is not None else ()
                else:
                    dropped = state.forget(changes)
                    state.generation = generation
                self._checked_at = now
        close_clients(dropped)
        return state

    # -- resolving names (with ``_lock`` held) --------------------------------------------------------

    def _client_spec(self, state: State, name: str) -> ClientSpec | None:
        entry = state.client_entries.get(name)
        if entry is None:
            changed = state.changed
            snapshot = state.definitions
            if snapshot is not None:  # an undefined name is not kept: the snapshot does not say what it waits for
                spec = snapshot.clients.get(name)
                entry = replace(ClientEntry.of(spec, snapshot.sources.get(name)), cacheable=spec is not None)
            else:
                entry = load_client(state.settings, name, lambda pipeline: self._pipeline_spec(state, pipeline))
            with self._store_lock:
                state.remember_client(name, entry if state.changed == changed else replace(entry, cacheable=False))
        return entry.spec

    def _pipeline_spec(self, state: State, name: str) -> PipelineSpec | None:
        entry = state.pipeline_entries.get(name)
        if entry is None:
            changed = state.changed
            snapshot = state.definitions
            if snapshot is not None:
                entry = PipelineEntry(snapshot.pipelines.get(name), snapshot.sources.get(name))
            else:
                entry = load_pipeline(state.settings, name)
            with self._store_lock:
                if entry.cacheable and state.changed == changed:
                    state.pipeline_entries[name] = entry
        return entry.spec

    def _from_database(self, state: State, name: str) -> bool:
        entry = state.client_entries.get(name)
        if entry is not None:
            return entry.source == "database"
        snapshot = state.definitions
        if snapshot is not None:
            return snapshot.sources.get(name) == "database"
        return name not in state.settings.clients  # resolved but not kept (a change came in): not a settings client

    # -- building (with ``_lock`` held) -----------------------------------------------------------------

    def _lookup(self, state: State, store: dict[str, T], name: str, build: Callable[[State, str], T]) -> T:
        try:
            return self._build_once(state, store, name, build)
        except _Missing as missing:
            raise missing.error(self.definitions()) from None

    def _build_once(self, state: State, store: dict[str, T], name: str, build: Callable[[State, str], T]) -> T:
        with self._lock:
            value = store.get(name)
            if value is None:
                changed = state.changed
                value = build(state, name)
                with self._store_lock:
                    if self._state is state and state.changed == changed:
                        store[name] = value
            return value

    def _build_client(self, state: State, name: str) -> HttpClient:
        spec = self._client_spec(state, name)
        if spec is None:
            raise _Missing(lambda definitions: UnknownNameError("client", name, definitions.clients))
        auth_hook = None
        if spec.auth is not None:
            auth = resolve_credential(spec.auth, name, database_client=spec if self._from_database(state, name) else None)
            auth_hook = build_static_auth_hook(auth)
            if auth_hook is None:
                manager = self._build_once(state, state.managers, name, self._build_manager)
                auth_hook = manager.auth_hook(excluded_paths=auth.excluded_paths, auth_error_statuses=auth.rejected_statuses)
        return build_client(spec, state.settings, auth_hook)

    def _build_pipeline(self, state: State, name: str) -> TokenFetchPipeline:
        spec = self._pipeline_spec(state, name)
        if spec is None:
            raise _Missing(lambda definitions: UnknownNameError("pipeline", name, definitions.pipelines))
        return build_pipeline(name, spec, state.settings, state.storage)

    def _build_manager(self, state: State, name: str) -> TokenSource:
        spec = self._client_spec(state, name)
        if spec is None:
            if self._pipeline_spec(state, name) is not None:
                return self._build_once(state, state.pipeline_managers, name, self._pipeline_manager)
            raise _Missing(lambda definitions: UnknownNameError("token-backed client or pipeline", name, definitions.token_names()))
        auth = spec.auth
        if auth is None or not auth.uses_tokens:
            shown = "no AUTH" if auth is None else f'AUTH TYPE "{auth.type}"'
            kind = f"token-backed client or pipeline (client {name!r} has {shown})"
            raise _Missing(lambda definitions: UnknownNameError(kind, name, definitions.token_names()))
        if auth.type == "pipeline":
            assert auth.pipeline is not None
            return self._build_once(state, state.pipeline_managers, auth.pipeline, self._pipeline_manager)
        from_database = self._from_database(state, name)
        subject = None
        if auth.type == "token_exchange" and auth.subject_token_from is not None:
            subject = self._subject_source(state, name, auth.subject_token_from, from_database=from_database)
        return build_oauth_manager(spec, state.settings, state.storage, from_database=from_database, subject_source=subject)

    def _subject_source(self, state: State, name: str, subject: str, *, from_database: bool) -> TokenSource:
        """The token source of ``SUBJECT_TOKEN_FROM`` (its own manager: cache and single flight), checked first.

        Refused (``ConfigurationError``) when it names nothing that obtains tokens or the
        exchanges form a cycle (E052/E053: a database definition may have changed since the
        checks ran), and for a database client, when the exchange would send the subject
        token to an origin its source does not already send it to (:func:`.exchange.ensure_subject_bound`).
        """

        def kind_of(other: str) -> str | None:
            spec = self._client_spec(state, other)
            if spec is None:
                return "token" if self._pipeline_spec(state, other) is not None else None
            return auth_kind(spec)

        problem = subject_problem(name, subject, kind_of, subject_in(lambda other: self._client_spec(state, other)))
        if problem is not None:
            check_id, detail, _ = problem
            raise ConfigurationError(f'client "{name}": AUTH SUBJECT_TOKEN_FROM {detail} ({check_id})', field="AUTH.SUBJECT_TOKEN_FROM")
        if from_database:
            spec = self._client_spec(state, name)
            assert spec is not None and spec.auth is not None  # the client being built
            ensure_subject_bound(
                name,
                spec.auth,
                lambda other: self._client_spec(state, other),
                lambda other: self._pipeline_spec(state, other),
                lambda other: self._from_database(state, other),
            )
        return self._build_once(state, state.managers, subject, self._build_manager)

    def _pipeline_manager(self, state: State, name: str) -> PipelineTokenManager:
        pipeline = self._build_once(state, state.pipelines, name, self._build_pipeline)
        spec = self._pipeline_spec(state, name)
        assert spec is not None  # the pipeline was just built from it
        return PipelineTokenManager(pipeline, spec.refresh_from_step)

    def __repr__(self) -> str:
        state = self._state
        if state is None:
            return "<Registry (nothing built)>"
        return f"<Registry clients={sorted(state.clients)} pipelines={sorted(state.pipelines)}>"


def _describe(changes: Changes) -> str:
    if changes.everything:
        return "reloading every definition"
    parts = [
        f"{kind} {', '.join(sorted(names))}"
        for kind, names in (("clients", changes.clients), ("pipelines", changes.pipelines), ("credentials", changes.credentials))
        if names
    ]
    return "; ".join(parts) or "nothing this process uses"


#: The per-process registry (the app's only global state besides the settings object).
registry = Registry()
requestforge_settings.on_reload(registry.reset)


def get_client(name: str) -> HttpClient:
    """The configured :class:`HttpClient` named ``name``; see :meth:`Registry.get_client`."""
    return registry.get_client(name)


async def aget_client(name: str) -> HttpClient:
    """:func:`get_client` for async code: the same object, looked up off the event loop.

    The first lookup of a name may read client definitions from the database; that happens
    in a worker thread (``sync_to_async(thread_sensitive=False)``), never on the loop.
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(get_client, thread_sensitive=False)(name)


def get_pipeline(name: str) -> TokenFetchPipeline:
    """The configured :class:`TokenFetchPipeline` named ``name``; see :meth:`Registry.get_pipeline`."""
    return registry.get_pipeline(name)


def get_token_manager(name: str) -> TokenSource:
    """The token source of client or pipeline ``name``; see :meth:`Registry.get_token_manager`."""
    return registry.get_token_manager(name)
