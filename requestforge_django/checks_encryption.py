"""System checks about secrets and definitions stored in the database.

* ``requestforge.E009``: ``ENCRYPTION_KEYS`` is missing or empty although something
  needs it: a client in settings names a ``CREDENTIAL`` (whose secrets live encrypted in
  the database), or the database already holds encrypted credential secrets. A project that keeps every
  secret in settings needs no key, so an absent setting stays valid and silent. Invalid
  keys are ``requestforge.E007`` (:mod:`~requestforge_django.validation`), not repeated.
* ``requestforge.E031``: a client or pipeline name is defined both in settings and in
  the database (the registry would use the settings one and ignore the row).
* ``requestforge.E043``: an active client definition would send its credential's
  secrets (or the tokens obtained with them) to an origin the credential is not bound to
  (``Credential.allowed_origins``); the registry refuses to build that client. Found
  here so an operator sees it before a request fails, e.g. after a credential manager
  removed an origin, or after a row was changed outside the admin.
* ``requestforge.W008``: a client's ``AUTH`` ``CREDENTIAL`` names no active credential:
  a settings client whose credential row does not exist or is inactive, or an active
  client definition whose credential was deactivated. ``get_client`` would raise
  ``ConfigurationError`` on first use; this says so at deploy time instead.

Why the database parts only run when ``databases`` is given (``manage.py check
--database default``, ``migrate``, the test runner): Django's contract is that a check
called without ``databases`` must not open a connection, so ``runserver`` and
``check`` keep working with the database down. They also tolerate a missing table
(migrations not applied yet): there is nothing stored, so nothing to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.core import checks

from .checks import CHECK_TAG
from .encryption import GENERATE_KEY_COMMAND, generate_key

__all__ = [
    "W_CREDENTIAL_MISSING",
    "E_CREDENTIAL_ORIGIN",
    "E_DEFINED_TWICE",
    "E_KEYS_MISSING",
    "check_credential_bindings",
    "check_credentials_exist",
    "check_definition_names",
    "check_encryption_keys",
    "register_encryption_checks",
]

from .validation import (  # one list of ids: validation.CHECKS
    AUTH_KEYS_BY_TYPE,
    E_CREDENTIAL_ORIGIN,
    E_DEFINED_TWICE,
    E_KEYS_MISSING,
    W_CREDENTIAL_MISSING,
    render_key,
)


def _raw_setting() -> Any:
    from .conf import requestforge_settings

    return requestforge_settings.raw


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


def _usable_aliases(model: Any, databases: Iterable[str] | None) -> Iterator[str]:
    """The aliases among ``databases`` that ``model`` is read from and whose table exists."""
    from django.db import connections, router

    if not databases:
        return
    alias = router.db_for_read(model)
    if alias not in databases:
        return
    if model._meta.db_table in connections[alias].introspection.table_names():
        yield alias


def _stored_secrets(databases: Iterable[str] | None) -> bool:
    """Whether a credential row holds an encrypted secret (which the keys are needed to read)."""
    from .models import Credential

    empty = dict.fromkeys(Credential.SECRET_FIELDS, "")
    return any(Credential._base_manager.using(alias).exclude(**empty).exists() for alias in _usable_aliases(Credential, databases))


def check_encryption_keys(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.E009``: keys are missing or empty while credentials need them."""
    raw = _raw_setting()
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


def check_definition_names(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.E031``: a client or pipeline name is defined in settings and in the database."""
    from .models import ClientDefinition, PipelineDefinition, settings_names

    if not databases or not isinstance(_raw_setting(), Mapping):
        return []
    messages: list[Any] = []
    for model, section, what in ((ClientDefinition, "CLIENTS", "client"), (PipelineDefinition, "PIPELINES", "pipeline")):
        in_settings = settings_names(section)
        if not in_settings:
            continue
        for alias in _usable_aliases(model, databases):
            clashes = model._base_manager.using(alias).filter(name__in=in_settings).order_by("name").values_list("pk", "name")
            for pk, name in clashes:
                messages.append(
                    checks.Error(
                        f'REQUESTFORGE["{section}"]["{name}"] is also defined in the database ({model._meta.verbose_name} '
                        f"pk={pk}); a name may be defined in settings or in the database, not both. The settings entry is used.",
                        hint=f"Rename or delete the {model._meta.verbose_name} in the admin, or remove the settings entry.",
                        obj=f'REQUESTFORGE {what} "{name}"',
                        id=E_DEFINED_TWICE,
                    )
                )
    return messages


def check_credential_bindings(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.E043``: an active client definition reaches an origin its credential is not bound to."""
    from .models import ClientDefinition, settings_names, unbound_destinations

    if not databases:
        return []
    shadowed = settings_names("CLIENTS")  # E031: the settings entry is used, the row is not
    messages: list[Any] = []
    for alias in _usable_aliases(ClientDefinition, databases):
        rows = (
            ClientDefinition._base_manager.using(alias)
            .filter(is_active=True, credential__isnull=False)
            .exclude(name__in=shadowed)
            .select_related("credential")
            .order_by("name")
        )
        for definition in rows:
            credential = definition.credential
            unbound = unbound_destinations(credential, definition.credential_destinations())
            if not unbound:
                continue
            reached = ", ".join(f"{origin} ({key})" for key, origin in unbound)
            allowed = ", ".join(credential.allowed_origin_set()) or "none"
            messages.append(
                checks.Error(
                    f'Client definition "{definition.name}" (pk={definition.pk}) would send credential "{credential.name}" to '
                    f"{reached}, not among the credential's allowed origins ({allowed}); get_client raises "
                    "UnboundCredentialError and nothing is sent.",
                    hint="A user with change permission on credentials adds the origin to the credential's allowed origins, "
                    "or the definition is changed to use an allowed origin.",
                    obj=f'REQUESTFORGE client "{definition.name}"',
                    id=E_CREDENTIAL_ORIGIN,
                )
            )
    return messages


def _settings_credentials(raw: Any) -> dict[str, str]:
    """``{client: credential name}`` of settings clients whose AUTH TYPE takes a CREDENTIAL and names one."""
    clients = raw.get("CLIENTS") if isinstance(raw, Mapping) else None
    if not isinstance(clients, Mapping):
        return {}
    named: dict[str, str] = {}
    for name, client in clients.items():
        auth = client.get("AUTH") if isinstance(client, Mapping) else None
        if not isinstance(name, str) or not isinstance(auth, Mapping):
            continue
        credential = auth.get("CREDENTIAL")
        if isinstance(credential, str) and credential.strip() and "CREDENTIAL" in AUTH_KEYS_BY_TYPE.get(str(auth.get("TYPE")), ()):
            named[name] = credential
    return named


def check_credentials_exist(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.W008``: a client's AUTH CREDENTIAL names no active credential row."""
    from .models import ClientDefinition, Credential, settings_names

    if not databases:
        return []
    messages: list[Any] = []
    wanted = _settings_credentials(_raw_setting())
    for alias in _usable_aliases(Credential, databases) if wanted else ():
        found = dict(Credential._base_manager.using(alias).filter(name__in=set(wanted.values())).values_list("name", "is_active"))
        for client, credential in sorted(wanted.items()):
            if found.get(credential):
                continue
            state = "is not active" if credential in found else f'does not exist in database "{alias}"'
            messages.append(
                checks.Warning(
                    f'{render_key(("CLIENTS", client, "AUTH", "CREDENTIAL"))} names credential "{credential}", which {state}; '
                    f'get_client("{client}") raises ConfigurationError and nothing is sent.',
                    hint=f'Create the credential "{credential}" in the admin (Requestforge > Credentials) or mark it active, or fix '
                    "CREDENTIAL. A warning, not an error: a new database starts without "
                    "credentials, and a credential may be created after the deploy (a test database too: create it in the test setup).",
                    obj=f'REQUESTFORGE client "{client}"',
                    id=W_CREDENTIAL_MISSING,
                )
            )
    shadowed = settings_names("CLIENTS")  # E031: the settings entry is used, the row is not
    for alias in _usable_aliases(ClientDefinition, databases):
        rows = (
            ClientDefinition._base_manager.using(alias)
            .filter(is_active=True, credential__is_active=False)
            .exclude(name__in=shadowed)
            .select_related("credential")
            .order_by("name")
        )
        for definition in rows:
            if not definition.uses_credential():
                continue
            messages.append(
                checks.Warning(
                    f'Client definition "{definition.name}" (pk={definition.pk}) uses credential "{definition.credential.name}", '
                    f'which is not active; get_client("{definition.name}") raises ConfigurationError and nothing is sent.',
                    hint="Mark the credential active in the admin, choose another credential, or deactivate the client definition.",
                    obj=f'REQUESTFORGE client "{definition.name}"',
                    id=W_CREDENTIAL_MISSING,
                )
            )
    return messages


def register_encryption_checks() -> None:
    """Register the database checks under the ``requestforge`` tag (and ``database``); idempotent."""
    checks.register(check_encryption_keys, CHECK_TAG, checks.Tags.database)
    checks.register(check_definition_names, CHECK_TAG, checks.Tags.database)
    checks.register(check_credential_bindings, CHECK_TAG, checks.Tags.database)
    checks.register(check_credentials_exist, CHECK_TAG, checks.Tags.database)
