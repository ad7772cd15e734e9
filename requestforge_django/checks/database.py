"""System checks about client and pipeline definitions and credentials stored in the database.

* ``requestforge.E031``: a client or pipeline name is defined both in settings and in
  the database (the registry would use the settings one and ignore the row).
* ``requestforge.E043``: an active client definition would send its credential's
  secrets (or the tokens obtained with them) to an origin the credential is not bound to
  (``Credential.allowed_origins``); the registry refuses to build that client. Found
  here so an operator sees it before a request fails, e.g. after a credential manager
  removed an origin, or after a row was changed outside the admin. Also: an active
  ``token_exchange`` client definition would send the token of its
  ``SUBJECT_TOKEN_FROM`` to an origin that source does not already send its secrets or
  tokens to (the rule of :mod:`requestforge_django.registry.exchange`); the registry
  raises ``UnboundSubjectError`` for it. Found here for a row saved before the rule
  existed, or whose source changed after it was saved.
* ``requestforge.W008``: a client's ``AUTH`` ``CREDENTIAL`` names no active credential:
  a settings client whose credential row does not exist or is inactive, or an active
  client definition whose credential was deactivated. ``get_client`` would raise
  ``ConfigurationError`` on first use; this says so at deploy time instead.

Why they only run when ``databases`` is given (``manage.py check --database default``,
``migrate``, the test runner): Django's contract is that a check called without
``databases`` must not open a connection, so ``runserver`` and ``check`` keep working
with the database down. They also tolerate a missing table (migrations not applied
yet): there is nothing stored, so nothing to report. The same holds for E009
(:mod:`.encryption`), which reads the database too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core import checks

from ..setting.ids import E_CREDENTIAL_ORIGIN, E_DEFINED_TWICE, W_CREDENTIAL_MISSING
from ..setting.keys import AUTH_KEYS_BY_TYPE
from ..setting.problems import render_key
from .base import raw_setting, usable_aliases

__all__ = ["check_credential_bindings", "check_credentials_exist", "check_definition_names", "check_subject_bindings"]


def check_definition_names(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.E031``: a client or pipeline name is defined in settings and in the database."""
    from ..models import ClientDefinition, PipelineDefinition, settings_names

    if not databases or not isinstance(raw_setting(), Mapping):
        return []
    messages: list[Any] = []
    for model, section, what in ((ClientDefinition, "CLIENTS", "client"), (PipelineDefinition, "PIPELINES", "pipeline")):
        in_settings = settings_names(section)
        if not in_settings:
            continue
        for alias in usable_aliases(model, databases):
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
    from ..models import ClientDefinition, settings_names, unbound_destinations

    if not databases:
        return []
    shadowed = settings_names("CLIENTS")  # E031: the settings entry is used, the row is not
    messages: list[Any] = []
    for alias in usable_aliases(ClientDefinition, databases):
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


def check_subject_bindings(app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """``requestforge.E043``: an active token_exchange definition sends its subject token where its source does not.

    Reads the definitions as the registry would (settings first, then active rows) and
    applies :func:`~requestforge_django.registry.exchange.ensure_subject_bound` to each
    database exchange: nothing is built, no discovery document fetched, no secret quoted.
    A source that names nothing is left to E052 (the registry reports that first).
    """
    from ..models import ClientDefinition, settings_names
    from ..registry.exchange import UnboundSubjectError, ensure_subject_bound
    from ..registry.loading import load_definitions
    from ..setting.conf import requestforge_settings

    if not databases or not isinstance(raw_setting(), Mapping):
        return []
    aliases = list(usable_aliases(ClientDefinition, databases))
    if not aliases:
        return []
    try:
        spec = requestforge_settings.spec
    except Exception:  # an invalid setting: the settings check reports it
        return []
    known = load_definitions(spec, None)
    messages: list[Any] = []
    for alias in aliases:
        rows = (
            ClientDefinition._base_manager.using(alias)
            .filter(is_active=True, auth_type="token_exchange")
            .exclude(subject_token_from="")
            .exclude(name__in=settings_names("CLIENTS"))  # E031: the settings entry is used, the row is not
            .order_by("name")
            .values_list("pk", "name")
        )
        for pk, name in rows:
            client = known.clients.get(name)
            auth = client.auth if client is not None else None
            subject = auth.subject_token_from if auth is not None else None
            if auth is None or subject is None or (subject not in known.clients and subject not in known.pipelines):
                continue
            try:
                ensure_subject_bound(
                    name, auth, known.clients.get, known.pipelines.get, lambda other: known.sources.get(other) == "database"
                )
            except UnboundSubjectError as exc:
                endpoint = "AUTH.TOKEN_URL" if auth.token_url else "AUTH.ISSUER"
                allowed = ", ".join(exc.allowed) or "none"
                messages.append(
                    checks.Error(
                        f'Client definition "{name}" (pk={pk}) would send the token of "{subject}" ({exc.field}) to {exc.origin} '
                        f'({endpoint}) for token exchange, not an origin "{subject}" sends its secrets or tokens to ({allowed}); '
                        "get_client raises UnboundSubjectError and nothing is sent.",
                        hint=f'Point {endpoint} at an origin "{subject}" already sends its secrets or tokens to, or choose another '
                        "SUBJECT_TOKEN_FROM; for a database source with a credential, a user with change permission on credentials "
                        "may add the origin to that credential's allowed origins.",
                        obj=f'REQUESTFORGE client "{name}"',
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
    from ..models import ClientDefinition, Credential, settings_names

    if not databases:
        return []
    messages: list[Any] = []
    wanted = _settings_credentials(raw_setting())
    for alias in usable_aliases(Credential, databases) if wanted else ():
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
    for alias in usable_aliases(ClientDefinition, databases):
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
