"""``requestforge.E009``: the encryption keys are missing although stored secrets need them.

``ENCRYPTION_KEYS`` is missing or empty although something needs it: a client in
settings names a ``CREDENTIAL`` (whose secrets live encrypted in the database), or the
database already holds encrypted credential secrets. A project that keeps every secret
in settings needs no key, so an absent setting stays valid and silent. Invalid keys are
``requestforge.E007`` (:mod:`~requestforge_django.setting`), not repeated. Like the
checks of :mod:`.database`, the database part runs only when ``databases`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core import checks

from ..encryption import GENERATE_KEY_COMMAND, generate_key
from ..setting.ids import E_KEYS_MISSING
from .base import raw_setting, usable_aliases

__all__ = ["check_encryption_keys"]


def _credential_users(raw: Mapping[str, Any]) -> list[str]:
    """Settings clients whose AUTH names a CREDENTIAL."""
    clients = raw.get("CLIENTS")
    if not isinstance(clients, Mapping):
        return []
    return [
        str(name)
        for name, client in clients.items()
        if isinstance(client, Mapping) and isinstance(client.get("AUTH"), Mapping) and client["AUTH"].get("CREDENTIAL")
    ]


def _stored_secrets(databases: Iterable[str] | None) -> bool:
    """Whether a credential row holds an encrypted secret (which the keys are needed to read)."""
    from ..models import Credential

    empty = dict.fromkeys(Credential.SECRET_FIELDS, "")
    return any(Credential._base_manager.using(alias).exclude(**empty).exists() for alias in usable_aliases(Credential, databases))


def check_encryption_keys(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.E009``: keys are missing or empty while credentials need them."""
    raw = raw_setting()
    if not isinstance(raw, Mapping) or ("ENCRYPTION_KEYS" in raw and not isinstance(raw["ENCRYPTION_KEYS"], (list, tuple))):
        return []  # E001 / E003 already say what is wrong
    if raw.get("ENCRYPTION_KEYS"):
        return []
    users = _credential_users(raw)
    if users:
        names = ", ".join(f'"{user}"' for user in users)
        subject = f"client {names} uses" if len(users) == 1 else f"clients {names} use"
        why = f"{subject} AUTH CREDENTIAL, whose secrets are stored encrypted in the database"
    elif _stored_secrets(databases):
        why = "the database holds encrypted credential secrets"
    else:
        return []
    return [
        checks.Error(
            f'REQUESTFORGE["ENCRYPTION_KEYS"] is {"empty" if "ENCRYPTION_KEYS" in raw else "not set"}, but {why}; '
            "they can be neither saved nor read.",
            hint=f'Add REQUESTFORGE["ENCRYPTION_KEYS"] = ["{generate_key()}"] (a key generated just now; keep it secret, '
            f"e.g. in an environment variable), or generate one with: {GENERATE_KEY_COMMAND}",
            obj="REQUESTFORGE",
            id=E_KEYS_MISSING,
        )
    ]
