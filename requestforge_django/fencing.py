"""Credential version fencing: a token obtained with a credential is served only while that version is current.

Why: processes re-read definitions at most every 0.5 s, and a client object may be held
for as long as its owner likes. Without a fence, a process still holding the previous
secret could fetch a token with it *after* a change committed and store it under the
shared key, and every process would then serve it until it expired.

How, for a client whose ``AUTH["CREDENTIAL"]`` names an admin-edited ``Credential``:

* **The version.** ``Credential.version`` is raised by one in the ``UPDATE`` of every
  save. Its fence value is ``"<pk>.<version>"`` (a credential deleted and created again
  under the same name does not repeat an old value), or :data:`GONE` when no active
  credential has the name.
* **Published on commit.** After a save, a deactivation or a delete has committed, the
  saving process writes the fence value read back from the database under
  ``<KEY_PREFIX>:credential:<name>:version`` in the shared token cache
  (:func:`publish_credential_versions`, called by :mod:`.receivers`), with no expiry.
  That write is the instant from which the guarantee below holds (in autocommit it
  happens inside ``save()``, right after the ``UPDATE`` commits; in an atomic block,
  right after the block commits).
* **Every token records the version that obtained it** (``TokenData.credential_version``,
  set by :class:`CredentialTokenProvider`).
* **Serving:** :class:`FencedTokenStorage` reads the token and the published version in
  one cache round trip (``get_many``) and treats a token whose version differs from the
  published one as a miss. A thread handed a token by another thread's fetch checks it
  against what it read itself (:meth:`FencedTokenStorage.admits`).
* **Process memory, bounded.** Like every token, a fenced one is served from process
  memory between reads of the shared cache, but for at most :data:`MEMORY_LIMIT`
  (0.25 s) after the read that found its version published, and never after a read
  that found the version marked :data:`CHANGING`. Before a credential row is updated
  or deleted, :func:`prepare_credential_change` marks its version as changing and
  waits :data:`MEMORY_LIMIT`: when the change commits, no copy read before the mark
  is left, and none was taken since. So once the new version is published, no process
  serves a token of an older one, from the cache or from memory; and the hot path
  still reads the shared cache about four times a second, not on every call.
* **Storing:** after a fetch, :class:`CredentialTokenProvider` reads the published
  version again; if it moved while the token was being fetched, the token is dropped
  (never stored), the provider is rebuilt from the database and the fetch is made once
  more. Before fetching it compares the published version with the one it was built
  from and rebuilds itself when they differ, so a client object held across a change
  follows it (and one whose credential is gone fails, naming the credential).
* **Repair:** a published value that is missing (evicted, never published) or disagrees
  with the database after a fresh read is rewritten from the database by the process
  about to fetch.

Settings-defined clients with their secrets in settings (no ``CREDENTIAL``) are not
fenced: their secrets change only with a deploy. Limits: a change made with
``QuerySet.update()`` sends no signal and is not seen (as before); a change marker
whose transaction stays open longer than :data:`CHANGING_TTL` expires, and copies in
memory may then outlive that change by up to :data:`MEMORY_LIMIT`; a rolled-back change
leaves its marker until then (tokens are still served, just not kept in memory).

This module also derives every token key from names alone (:func:`client_token_key`,
:func:`pipeline_step_key`), so tokens can be dropped without building a client
(:func:`drop_tokens`): a deleted or deactivated credential cannot build its clients any
more, but their tokens must still go.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.core.cache import caches

from .http.exceptions import AuthenticationException, ConfigurationError
from .shared.errors import TokenStorageError
from .shared.status_records import SignalTokenObserver, describe_error
from .shared.token_storage import DjangoCacheTokenStorage
from .tokens.data import TokenData
from .tokens.interfaces import TokenProviderInterface
from .tokens.observer import notify
from .tokens.storage import TokenLock, TokenStorageInterface

if TYPE_CHECKING:
    from .registry import Definitions
    from .setting.specs import SettingsSpec

logger = logging.getLogger("requestforge_django")

__all__ = [
    "CHANGING",
    "GONE",
    "MEMORY_LIMIT",
    "CredentialFence",
    "CredentialTokenProvider",
    "FencedTokenStorage",
    "client_token_key",
    "credential_version_key",
    "current_credential_version",
    "drop_tokens",
    "pipeline_key_prefix",
    "pipeline_step_key",
    "prepare_credential_change",
    "publish_credential_versions",
]

#: The fence value of a credential that does not exist or is not active.
GONE = "gone"

#: Appended to the published version while a change is about to commit (see :func:`prepare_credential_change`).
CHANGING = "~changing"

#: Longest a process serves a fenced token from memory after reading it from the shared cache
#: (``local_ttl`` for other tokens); a credential change waits this long before it commits.
MEMORY_LIMIT = 0.25

#: How long a change marker lives if its change never commits (a rolled-back transaction).
CHANGING_TTL = 300

_CLOCK_MARGIN = 0.05

_UNSEEN = object()


# -- keys, from names alone ---------------------------------------------------------------------


def client_token_key(name: str) -> str:
    """The storage key of an OAuth client's token (``<KEY_PREFIX>:`` is added by the storage)."""
    return f"client:{name}"


def pipeline_key_prefix(pipeline: str) -> str:
    """The key prefix of a pipeline's step tokens."""
    return f"pipeline:{pipeline}"


def pipeline_step_key(pipeline: str, step: str) -> str:
    """The storage key of one pipeline step's token."""
    return f"{pipeline_key_prefix(pipeline)}:{step}"


def credential_version_key(key_prefix: str, credential: str) -> str:
    """The cache key under which the current version of credential ``credential`` is published."""
    return f"{key_prefix}:credential:{credential}:version"


# -- the version in the database, and publishing it ---------------------------------------------------


def current_credential_version(name: str) -> str:
    """The fence value the database holds for credential ``name``: ``"<pk>.<version>"``, or :data:`GONE`."""
    from .models import Credential

    row = Credential.objects.filter(name=name, is_active=True).values_list("pk", "version").first()
    return GONE if row is None else f"{row[0]}.{row[1]}"


def publish_credential_versions(names: Iterable[str], settings: SettingsSpec | None = None) -> dict[str, str]:
    """Write each credential's current fence value (read from the database) to the shared cache.

    Called once a credential change has committed. A cache that cannot be written is
    logged as an error: the processes that fetch next repair the value from the
    database (see the module doc). Returns what was published, by name.
    """
    if settings is None:
        from .setting.conf import requestforge_settings

        settings = requestforge_settings.spec
    published: dict[str, str] = {}
    for name in sorted(set(names)):
        value = current_credential_version(name)
        try:
            caches[settings.cache].set(credential_version_key(settings.key_prefix, name), value, timeout=None)
        except Exception as exc:
            logger.error(
                "Could not publish version %s of credential %r in cache %r (%s); the next token fetch repairs it",
                value,
                name,
                settings.cache,
                type(exc).__name__,
            )
            continue
        published[name] = value
        logger.info("Credential %r is now at version %s; tokens of other versions are no longer served", name, value)
    return published


def prepare_credential_change(names: Iterable[str], settings: SettingsSpec | None = None) -> float:
    """Before a credential change commits: make sure no copy of its tokens held in a process's memory outlives it.

    Marks each published version as :data:`CHANGING` (it is still served, but no process
    keeps it in memory any more), then waits :data:`MEMORY_LIMIT`, by which time every
    copy read before the mark has expired. Nothing to wait for when no version is
    published (or the credential is already gone or changing). Returns the seconds waited.
    """
    if settings is None:
        from .setting.conf import requestforge_settings

        settings = requestforge_settings.spec
    marked = False
    for name in sorted(set(names)):
        key = credential_version_key(settings.key_prefix, name)
        try:
            cache = caches[settings.cache]
            value = cache.get(key)
            if value is None or str(value) == GONE or str(value).endswith(CHANGING):
                continue
            cache.set(key, f"{value}{CHANGING}", timeout=CHANGING_TTL)
        except Exception as exc:
            logger.error("Could not mark credential %r as changing in cache %r (%s)", name, settings.cache, type(exc).__name__)
            continue
        marked = True
    if not marked:
        return 0.0
    waited = MEMORY_LIMIT + _CLOCK_MARGIN
    time.sleep(waited)  # not a guess: every process stops keeping these tokens MEMORY_LIMIT after it last read them
    return waited


class CredentialFence:
    """The published version of one credential, as seen from one process (thread-safe).

    A published value is a version (``"<pk>.<version>"``), :data:`GONE`, or a version
    followed by :data:`CHANGING` while a change is about to commit: that version is
    still served, but no process keeps its tokens in memory any more. What each thread
    read last (value, whether it allows memory, and when the read began) decides
    :meth:`admits` and :meth:`memory_allowance` for that thread.
    """

    def __init__(self, credential: str, *, cache_alias: str, key_prefix: str) -> None:
        self.credential = credential
        self.cache_alias = cache_alias
        self.key = credential_version_key(key_prefix, credential)
        self._seen = threading.local()

    def read(self) -> str | None:
        """The published version, without a change marker (``None``: nothing published); raises :class:`TokenStorageError`."""
        started = time.monotonic()
        try:
            value = caches[self.cache_alias].get(self.key)
        except Exception as exc:
            raise TokenStorageError(
                "Could not read the credential version", cache_alias=self.cache_alias, key=self.key, operation="get", original=exc
            ) from exc
        return self.note(value, started)

    def note(self, value: Any, started: float) -> str | None:
        """Remember ``value``, read from the cache in a read begun at ``started`` (monotonic), as this thread's last read."""
        text = None if value is None else str(value)
        version = text[: -len(CHANGING)] if text is not None and text.endswith(CHANGING) else text
        self._seen.value = version
        self._seen.memory_until = started + MEMORY_LIMIT if version is not None and version == text and version != GONE else None
        return version

    def admits(self, token: TokenData) -> bool:
        """Whether ``token`` belongs to the version this thread last read (``True`` before any read)."""
        seen = getattr(self._seen, "value", _UNSEEN)
        return seen is _UNSEEN or token.credential_version == seen

    def memory_allowance(self, token: TokenData) -> float:
        """Seconds this thread may keep ``token`` in memory: up to :data:`MEMORY_LIMIT` after a read that allowed it."""
        until: float | None = getattr(self._seen, "memory_until", None)
        if until is None or token.credential_version != getattr(self._seen, "value", _UNSEEN):
            return 0.0
        return max(until - time.monotonic(), 0.0)

    def publish_if_missing(self, value: str) -> bool:
        """Publish ``value`` unless a version is published already (the registry does this when it builds a client).

        A credential saved before this version of the library, or whose entry was
        evicted, then has a version from the client's first use; a cache that cannot be
        reached is left for the token calls to report.
        """
        try:
            added = bool(caches[self.cache_alias].add(self.key, value, timeout=None))
        except Exception as exc:
            logger.warning("Could not publish the version of credential %r (%s)", self.credential, type(exc).__name__)
            return False
        if added:
            logger.info("Credential %r: published version %s (the cache had nothing)", self.credential, value)
        return added

    def repair(self, published: str | None, value: str) -> None:
        """Publish ``value`` (what the database says) in place of ``published`` (missing or out of date)."""
        cache = caches[self.cache_alias]
        try:
            if published is None:
                cache.add(self.key, value, timeout=None)
            else:
                cache.set(self.key, value, timeout=None)
        except Exception as exc:
            raise TokenStorageError(
                "Could not publish the credential version", cache_alias=self.cache_alias, key=self.key, operation="set", original=exc
            ) from exc
        logger.info("Credential %r: published version %s (the cache had %s)", self.credential, value, published or "nothing")

    def __repr__(self) -> str:
        return f"CredentialFence(credential={self.credential!r}, key={self.key!r})"


# -- serving only the current version ---------------------------------------------------------------


class FencedTokenStorage(TokenStorageInterface):
    """A :class:`DjangoCacheTokenStorage` that serves a token only while its credential version is published.

    ``get`` reads the token and the published version in one round trip; a token of
    another version reads as a miss. Writes, deletes and leases go to the wrapped
    storage unchanged.
    """

    def __init__(self, storage: DjangoCacheTokenStorage, fence: CredentialFence) -> None:
        self._storage = storage
        self.fence = fence

    def get(self, key: str) -> TokenData | None:
        started = time.monotonic()
        token, published = self._storage.get_with(key, self.fence.key)
        version = self.fence.note(published, started)
        if token is None or token.credential_version != version:
            return None
        return token

    def admits(self, token: TokenData) -> bool:
        return self.fence.admits(token)

    def memory_allowance(self, token: TokenData) -> float:
        return self.fence.memory_allowance(token)

    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        self._storage.set(key, token, ttl)

    def delete(self, key: str) -> None:
        self._storage.delete(key)

    def lock(self, key: str, timeout: float) -> TokenLock | None:
        return self._storage.lock(key, timeout)

    def __repr__(self) -> str:
        return f"FencedTokenStorage({self._storage!r}, credential={self.fence.credential!r})"


# -- fetching with the current version ---------------------------------------------------------------


class CredentialTokenProvider(TokenProviderInterface):
    """Fetches with the provider built from the credential's current version, and tags each token with it.

    ``version_of()`` reads the fence value from the database, ``build()`` builds the
    provider from the credential as it is now (it reads the credential again, so it is
    called *after* ``version_of``: a token can be labelled older than its secret,
    which only costs a refetch, never newer). ``provider``/``version`` are what the
    registry built the client with.
    """

    #: Attempts of one fetch: the second follows a change that committed during the first.
    ATTEMPTS = 2

    def __init__(
        self,
        fence: CredentialFence,
        provider: TokenProviderInterface,
        version: str,
        *,
        version_of: Callable[[], str],
        build: Callable[[], TokenProviderInterface],
        service_name: str,
    ) -> None:
        self.fence = fence
        self._provider = provider
        self._version = version
        self._version_of = version_of
        self._build = build
        self._service_name = service_name
        self._lock = threading.Lock()

    @property
    def service_name(self) -> str:
        return self._service_name

    @property
    def version(self) -> str:
        """The credential version the current provider was built from."""
        return self._version

    def fetch_token(self) -> TokenData:
        return self._run(lambda provider, version: provider.fetch_token())

    def refresh_token(self, current: TokenData) -> TokenData:
        def obtain(provider: TokenProviderInterface, version: str) -> TokenData:
            if current.credential_version != version:  # its refresh token belongs to another version
                return provider.fetch_token()
            return provider.refresh_token(current)

        return self._run(obtain)

    def invalidate(self) -> None:
        self._provider.invalidate()

    def close(self) -> None:
        _close(self._provider)

    def _run(self, obtain: Callable[[TokenProviderInterface, str], TokenData]) -> TokenData:
        for _ in range(self.ATTEMPTS):
            provider, version = self._provider_for(self.fence.read())
            token = obtain(provider, version)
            if not isinstance(token, TokenData):
                return token  # the manager refuses it, naming the provider
            if self.fence.read() == version:
                return replace(token, credential_version=version)
            logger.info(
                "Credential %r changed while %s fetched a token with version %s; the token is dropped and fetched again",
                self.fence.credential,
                self._service_name,
                version,
            )
        raise AuthenticationException(
            f'credential "{self.fence.credential}" changed again while a token was being fetched; nothing was stored, try again',
            service_name=self._service_name,
        )

    def _provider_for(self, published: str | None) -> tuple[TokenProviderInterface, str]:
        """The provider of the published version, rebuilt from the database when that moved."""
        with self._lock:
            if published is not None and published == self._version and published != GONE:
                return self._provider, self._version
            version = self._version_of()
            if version != published:
                self.fence.repair(published, version)
            if version == GONE:
                raise AuthenticationException(
                    f'credential "{self.fence.credential}" does not exist or is not active; create or activate it in the admin',
                    service_name=self._service_name,
                )
            if version != self._version:
                try:
                    provider = self._build()
                except ConfigurationError as exc:
                    raise AuthenticationException(str(exc), service_name=self._service_name) from None
                except Exception as exc:
                    raise AuthenticationException(
                        f'could not use credential "{self.fence.credential}" ({describe_error(exc)})', service_name=self._service_name
                    ) from None
                old, self._provider, self._version = self._provider, provider, version
                logger.info("%s: rebuilt from credential %r version %s", self._service_name, self.fence.credential, version)
                _close(old)
            return self._provider, self._version

    def __repr__(self) -> str:
        credential, version = self.fence.credential, self._version
        return f"CredentialTokenProvider(service_name={self._service_name!r}, credential={credential!r}, version={version!r})"


def _close(provider: Any) -> None:
    close = getattr(provider, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:  # closing a connection pool must not fail a fetch
            logger.warning("Could not close a replaced token provider (%s)", type(exc).__name__)


# -- dropping tokens by name ---------------------------------------------------------------------------


def drop_tokens(
    definitions: Definitions,
    *,
    clients: Iterable[str] = (),
    pipelines: Iterable[str] = (),
    steps: Iterable[tuple[str, str]] = (),
    reason: str,
) -> list[str]:
    """Delete the shared tokens of OAuth clients and of pipeline steps, from their names alone.

    Nothing is built: the keys follow from the names, so a client whose credential was
    deleted or deactivated loses its token too. For each of ``pipelines`` every step
    ``definitions`` lists is dropped, plus the ``(pipeline, step)`` pairs of ``steps``
    (steps already deleted). Each dropped key is reported like ``invalidate_token()``
    does (signal ``token_invalidated`` with ``reason``, status record). A key that cannot
    be deleted is logged and the others are still dropped. Returns the labels dropped.
    """
    settings = definitions.settings
    storage = DjangoCacheTokenStorage(cache_alias=settings.cache, key_prefix=settings.key_prefix)
    targets: dict[str, dict[str, str | None]] = {name: {client_token_key(name): None} for name in clients}
    pairs = [(name, step.name) for name in pipelines if name in definitions.pipelines for step in definitions.pipelines[name].steps]
    for pipeline, step in [*pairs, *steps]:
        targets.setdefault(pipeline, {})[pipeline_step_key(pipeline, step)] = step
    dropped: list[str] = []
    for name, keys in targets.items():
        observer = SignalTokenObserver(name, keys, cache_alias=settings.cache, key_prefix=settings.key_prefix)
        for key, step_name in keys.items():
            try:
                storage.delete(key)
            except Exception as exc:
                logger.warning("Could not drop token %s after a change (%s)", key, describe_error(exc))
                continue
            logger.info("Invalidated token %s (%s)", key, reason)
            notify(observer, "on_invalidated", key, reason)
            dropped.append(f"{name}/{step_name}" if step_name else name)
    return dropped
