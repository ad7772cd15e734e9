"""Where tokens live between fetches, and how fetchers in many processes take turns.

A storage keeps plain :class:`TokenData` per key. A storage shared by many processes
(Redis through the Django cache) also offers :meth:`TokenStorageInterface.lock`, a
lease-style lock: it expires by itself after ``timeout`` seconds so a crashed holder
never blocks the others for long, and it is released only by its owner.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .data import TokenData


@runtime_checkable
class TokenLock(Protocol):
    """A lease on one key, shared by every process that uses the same storage."""

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lease; with ``blocking`` wait up to ``timeout`` seconds (``None``: the lease timeout)."""

    def release(self) -> None:
        """Give the lease back if this object still owns it (a no-op after expiry or takeover)."""

    def __enter__(self) -> bool: ...

    def __exit__(self, *exc_info: object) -> None: ...


class TokenStorageInterface(ABC):
    """Keeps tokens by key. Implementations must be safe to call from many threads."""

    @abstractmethod
    def get(self, key: str) -> TokenData | None:
        """The stored token, or ``None`` (also when the stored value is unreadable)."""

    @abstractmethod
    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        """Store ``token``; it may be dropped after ``ttl`` seconds (default: until it expires)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget ``key``; deleting a missing key is fine."""

    def exists(self, key: str) -> bool:
        return self.get(key) is not None

    def admits(self, token: TokenData) -> bool:
        """Whether ``token``, handed over by another thread's fetch, may still be served by this thread.

        A thread waiting for another thread's fetch receives that token without reading
        the storage; a storage that may refuse to serve a stored token (the Django
        layer's credential fence) says here whether it would serve this one, judged by
        what this thread last read. Default: yes.
        """
        return True

    def memory_allowance(self, token: TokenData) -> float | None:
        """For how many more seconds this thread may serve ``token`` from process memory without reading again.

        Asked right after a token was read, stored or handed over; ``None`` (the
        default) leaves it to the cache's ``local_ttl``, ``0`` forbids keeping it. A
        storage that may stop serving a token it holds (the Django layer's credential
        fence) bounds how long another process's copy can outlive that decision.
        """
        return None

    def lock(self, key: str, timeout: float) -> TokenLock | None:
        """A cross-process lease for ``key``, or ``None`` if this storage is private to one process.

        ``None`` is right for in-memory storages: the token manager's own in-process
        lock already makes a single flight there.
        """
        return None


class InMemoryTokenStorage(TokenStorageInterface):
    """Tokens in a dict: one process only (tests, scripts, single-process services)."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenData] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> TokenData | None:
        return self._tokens.get(key)

    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        with self._lock:
            self._tokens[key] = token

    def delete(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def __repr__(self) -> str:
        return f"InMemoryTokenStorage(keys={len(self._tokens)})"
