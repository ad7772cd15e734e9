"""Encryption of secrets stored in the database, with the keys of ``REQUESTFORGE["ENCRYPTION_KEYS"]``.

Why dedicated keys rather than ``SECRET_KEY``: ``SECRET_KEY`` is rotated for reasons
(sessions, password reset links) that have nothing to do with stored credentials, and a
derived key would silently turn every stored secret into garbage on such a rotation.
Here the first key encrypts and every key decrypts (a ``MultiFernet``), so keys are
rotated deliberately: put the new key first, run ``manage.py requestforge_rotate_keys``,
then drop the old one.

The ``MultiFernet`` is built once per process and dropped when the settings reload
(``override_settings`` in tests, :meth:`RequestforgeSettings.on_reload`).

Error messages name keys only by :func:`fingerprint` (8 hex digits of their SHA-256),
never by value, and never contain plaintext or ciphertext.

``cryptography`` is imported on first use, so that importing the models (and so the
app) works without it for projects that store no secrets in the database.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from .setting.conf import requestforge_settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = [
    "GENERATE_KEY_COMMAND",
    "DecryptionError",
    "EncryptionError",
    "EncryptionKeysMissing",
    "InvalidEncryptionKey",
    "decrypt",
    "encrypt",
    "ensure_keys",
    "fingerprint",
    "generate_key",
    "reset",
]

#: A shell command printing a new key (also in check hints and error messages).
GENERATE_KEY_COMMAND = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class EncryptionError(Exception):
    """Base class: secrets in the database cannot be encrypted or decrypted."""


class EncryptionKeysMissing(EncryptionError, ImproperlyConfigured):
    """``ENCRYPTION_KEYS`` is not set or empty, but a secret must be encrypted or decrypted."""

    def __init__(self) -> None:
        super().__init__(
            'REQUESTFORGE["ENCRYPTION_KEYS"] is not set or empty, so secrets stored in the database cannot be '
            f"encrypted or decrypted (requestforge.E009). Generate a key with: {GENERATE_KEY_COMMAND}"
        )


class InvalidEncryptionKey(EncryptionError, ImproperlyConfigured):
    """An ``ENCRYPTION_KEYS`` entry is not a Fernet key (the value is never shown)."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(
            f'REQUESTFORGE["ENCRYPTION_KEYS"][{index}] is not a Fernet key (44 characters of url-safe base64 '
            f"encoding 32 bytes); the value is not shown (requestforge.E007)."
        )


class DecryptionError(EncryptionError):
    """A stored value cannot be decrypted with any key of the current key set.

    Names the row (``model``, ``pk``), the ``field`` and the fingerprints of the keys
    that were tried, so an operator knows which row to fix and which key set was in
    use; it never contains the ciphertext, the plaintext or a key.
    """

    def __init__(self, model: str | None = None, pk: Any = None, field: str | None = None, fingerprints: Sequence[str] = ()) -> None:
        self.model = model
        self.pk = pk
        self.field = field
        self.fingerprints = tuple(fingerprints)
        where = f"{model or 'value'}"
        if pk is not None:
            where += f" pk={pk}"
        if field:
            where += f' field "{field}"'
        keys = ", ".join(self.fingerprints) or "(none)"
        super().__init__(
            f"Cannot decrypt {where} with the current ENCRYPTION_KEYS (fingerprints: {keys}): it was encrypted with "
            "a key that is not in the key set, or it is corrupt. Add the key it was encrypted with after the first "
            "one and run manage.py requestforge_rotate_keys, or enter the secret again."
        )


def generate_key() -> str:
    """A new random Fernet key (what ``Fernet.generate_key()`` returns), without needing ``cryptography``."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def fingerprint(key: str | bytes) -> str:
    """A short non-secret id of a key (first 8 hex digits of its SHA-256), for messages and logs."""
    raw = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    return hashlib.sha256(raw).hexdigest()[:8]


# -- the per-process MultiFernet ------------------------------------------------------------

_lock = threading.Lock()
_state: tuple[MultiFernet, tuple[str, ...]] | None = None


def _configured_keys() -> list[str | bytes]:
    keys = requestforge_settings.ENCRYPTION_KEYS
    if not keys:
        raise EncryptionKeysMissing()
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        raise ImproperlyConfigured('REQUESTFORGE["ENCRYPTION_KEYS"] must be a list of Fernet keys (requestforge.E003).')
    return list(keys)


def _build() -> tuple[MultiFernet, tuple[str, ...]]:
    keys = _configured_keys()
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError as exc:
        raise EncryptionError('Encrypting secrets needs the "cryptography" package: pip install "requestforge-django[crypto]".') from exc
    fernets = []
    for index, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise InvalidEncryptionKey(index) from None
    return MultiFernet(fernets), tuple(fingerprint(key) for key in keys)


def _get() -> tuple[MultiFernet, tuple[str, ...]]:
    global _state
    state = _state
    if state is None:
        with _lock:
            if _state is None:
                _state = _build()
            state = _state
    return state


def reset() -> None:
    """Forget the cached key set (called on every settings reload)."""
    global _state
    with _lock:
        _state = None


requestforge_settings.on_reload(reset)


# -- public operations ----------------------------------------------------------------------


def ensure_keys() -> tuple[str, ...]:
    """Fingerprints of the configured keys; raises :class:`EncryptionKeysMissing` / :class:`InvalidEncryptionKey`."""
    return _get()[1]


def encrypt(plaintext: str) -> str:
    """Fernet ciphertext of ``plaintext`` with the first key (a new random IV each time)."""
    multi, _ = _get()
    return multi.encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(ciphertext: str, *, model: str | None = None, pk: Any = None, field: str | None = None) -> str:
    """Plaintext of ``ciphertext``, trying every key; raises :class:`DecryptionError` naming the given row."""
    multi, fingerprints = _get()
    from cryptography.fernet import InvalidToken

    try:
        return multi.decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError, TypeError):
        raise DecryptionError(model, pk, field, fingerprints) from None
