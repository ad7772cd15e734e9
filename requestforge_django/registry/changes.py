"""How a change of definitions or credentials reaches every process: a generation counter and a change log.

Both live in the shared cache (the ``CACHE`` alias, beside the tokens):

* ``<KEY_PREFIX>:generation`` holds a counter, raised by one for every published change
  (one per committed transaction, see :mod:`requestforge_django.receivers`);
* ``<KEY_PREFIX>:changes:<n>`` holds what changed at generation ``n``: the names of the
  clients, pipelines and credentials saved or deleted (:class:`Changes`). Entries
  expire after :data:`CHANGE_LOG_TTL`, and a process never reads more than
  :data:`CHANGE_LOG_SIZE` of them.

A process remembers the generation its objects are built from. When it polls (see
:data:`~requestforge_django.registry.GENERATION_CHECK_INTERVAL`) and the counter moved,
it reads the entries in between in one ``get_many`` and forgets only the names they
list. When it cannot know what changed (an entry is missing or expired, it fell more than
:data:`CHANGE_LOG_SIZE` changes behind, the counter went back because the cache lost
it, or the value is not a counter), it forgets everything, as it did before change logs.

Publishing allocates ``n`` with ``incr`` and claims the entry with ``add``: on a cache
whose ``incr`` is not atomic (the database and file caches), two processes may be given
the same ``n``; the one whose ``add`` fails takes the next number, so no change is lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..setting.specs import SettingsSpec

logger = logging.getLogger("requestforge_django")

__all__ = [
    "CHANGE_LOG_SIZE",
    "CHANGE_LOG_TTL",
    "EVERYTHING",
    "UNREADABLE",
    "Changes",
    "change_key",
    "follows",
    "generation_key",
    "publish_changes",
    "read_changes",
    "read_generation",
]

#: Most changes a process catches up with name by name; further behind, it forgets everything.
CHANGE_LOG_SIZE = 1000

#: Seconds a change log entry is kept (a process idle for longer forgets everything on its next call).
CHANGE_LOG_TTL = 24 * 3600

#: What :func:`read_generation` returns when the cache cannot be read: keep what is built.
UNREADABLE = "<unreadable>"

_CLAIM_ATTEMPTS = 20


@dataclass(frozen=True)
class Changes:
    """Names of what changed; ``everything`` when that is unknown (every name is then forgotten)."""

    clients: frozenset[str] = frozenset()
    pipelines: frozenset[str] = frozenset()
    credentials: frozenset[str] = frozenset()
    everything: bool = False

    @classmethod
    def of(cls, *, clients: Iterable[str] = (), pipelines: Iterable[str] = (), credentials: Iterable[str] = ()) -> Changes:
        return cls(frozenset(clients), frozenset(pipelines), frozenset(credentials))

    def __or__(self, other: Changes) -> Changes:
        return Changes(
            self.clients | other.clients,
            self.pipelines | other.pipelines,
            self.credentials | other.credentials,
            self.everything or other.everything,
        )

    def __bool__(self) -> bool:
        return self.everything or bool(self.clients or self.pipelines or self.credentials)

    def to_entry(self) -> dict[str, Any]:
        if self.everything:
            return {"everything": True}
        return {"clients": sorted(self.clients), "pipelines": sorted(self.pipelines), "credentials": sorted(self.credentials)}

    @classmethod
    def from_entry(cls, entry: Any) -> Changes:
        if not isinstance(entry, dict) or entry.get("everything"):
            return EVERYTHING
        names: list[Any] = [entry.get(key) for key in ("clients", "pipelines", "credentials")]
        if not all(isinstance(value, list) and all(isinstance(n, str) for n in value) for value in names):
            return EVERYTHING
        clients, pipelines, credentials = names
        return cls.of(clients=clients, pipelines=pipelines, credentials=credentials)


#: Every name: what a process assumes when it cannot tell what changed.
EVERYTHING = Changes(everything=True)


def generation_key(spec: SettingsSpec) -> str:
    return f"{spec.key_prefix}:generation"


def change_key(spec: SettingsSpec, generation: int) -> str:
    return f"{spec.key_prefix}:changes:{generation}"


def read_generation(spec: SettingsSpec) -> str | None:
    """The shared generation value (``None`` if never bumped, :data:`UNREADABLE` if the cache is down)."""
    from django.core.cache import caches

    try:
        value = caches[spec.cache].get(generation_key(spec))
    except Exception as exc:
        logger.warning("Could not read the definitions generation from cache %r (%s)", spec.cache, type(exc).__name__)
        return UNREADABLE
    return None if value is None else str(value)


def _counter(value: str | None) -> int | None:
    """The counter of a generation value: 0 for never bumped, ``None`` for a value that is not a counter."""
    if value is None:
        return 0
    return int(value) if value.isdigit() else None


def follows(generation: str, previous: str | None) -> bool:
    """Whether ``generation`` is the one right after ``previous``."""
    after, before = _counter(generation), _counter(previous)
    return after is not None and before is not None and after == before + 1


def read_changes(spec: SettingsSpec, since: str | None, until: str | None) -> Changes:
    """What changed from generation ``since`` to ``until`` (:data:`EVERYTHING` when the log cannot tell)."""
    start, stop = _counter(since), _counter(until)
    if start is None or stop is None or stop < start or stop - start > CHANGE_LOG_SIZE:
        return EVERYTHING
    if stop == start:
        return Changes()
    from django.core.cache import caches

    keys = [change_key(spec, n) for n in range(start + 1, stop + 1)]
    try:
        entries = caches[spec.cache].get_many(keys)
    except Exception as exc:
        logger.warning("Could not read the definitions change log from cache %r (%s)", spec.cache, type(exc).__name__)
        return EVERYTHING
    changes = Changes()
    for key in keys:
        if key not in entries:
            return EVERYTHING  # expired, evicted, or being written: assume the worst
        changes = changes | Changes.from_entry(entries[key])
    return changes


def publish_changes(spec: SettingsSpec, changes: Changes) -> str:
    """Raise the shared generation and log ``changes`` under it; the new generation value.

    Raises what the cache raises (the caller logs it: the other processes keep their objects).
    """
    from django.core.cache import caches

    cache = caches[spec.cache]
    key = generation_key(spec)
    entry = changes.to_entry()
    for _ in range(_CLAIM_ATTEMPTS):
        try:
            generation = int(cache.incr(key))
        except ValueError:  # never bumped, or evicted: start the counter
            cache.add(key, 0, timeout=None)
            try:
                generation = int(cache.incr(key))
            except ValueError:  # a cache that keeps nothing (DummyCache): nobody can be told anything
                value = uuid.uuid4().hex
                cache.set(key, value, timeout=None)
                return value
        except Exception:
            current = cache.get(key)  # raises too when the cache is down
            if current is None or _counter(str(current)) is not None:
                raise
            cache.set(key, 0, timeout=None)  # not a counter (an older release's value): start one
            continue
        if cache.add(change_key(spec, generation), entry, timeout=CHANGE_LOG_TTL):
            return str(generation)
        # Another process was given the same number (a non-atomic ``incr``): take the next one.
    value = uuid.uuid4().hex  # not a counter: every process forgets everything, which is always right
    cache.set(key, value, timeout=None)
    return value
