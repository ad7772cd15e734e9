"""Where definitions come from: the ``REQUESTFORGE`` setting, then admin-edited rows, one name at a time.

A name defined in settings is served from the validated settings spec and never looked
up in the database (``requestforge.E031``: a name in both keeps the settings entry). Any
other name is read from the database when first asked for (:func:`load_client`,
:func:`load_pipeline`: one query each, plus the credential when the client is built), and
parsed by the same :mod:`~requestforge_django.setting` rules as a settings entry.
:func:`load_definitions` reads every definition at once, for the pages and commands that
list them all (admin, ``requestforge_status``, warm-up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ..http.exceptions import ConfigurationError
from ..setting.specs import AUTH_TYPES, OAUTH_AUTH_TYPES, AssertionSpec, AuthSpec, ClientSpec, PipelineSpec, SettingsSpec

logger = logging.getLogger("requestforge_django")

__all__ = [
    "ClientEntry",
    "Definitions",
    "PipelineEntry",
    "load_client",
    "load_definitions",
    "load_pipeline",
    "resolve_credential",
]

#: The auth types whose clients obtain tokens themselves (from a token endpoint).
OAUTH_TYPES: tuple[str, ...] = tuple(t for t in AUTH_TYPES if t in OAUTH_AUTH_TYPES)


@dataclass(frozen=True)
class Definitions:
    """Every client and pipeline this process knows, with where each one is defined."""

    settings: SettingsSpec
    clients: Mapping[str, ClientSpec] = field(default_factory=lambda: MappingProxyType({}))
    pipelines: Mapping[str, PipelineSpec] = field(default_factory=lambda: MappingProxyType({}))
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # name -> "settings" | "database"
    generation: str | None = None

    def token_names(self) -> list[str]:
        """Clients whose auth obtains tokens from a token endpoint (the OAuth TYPEs), then pipelines."""
        oauth = [n for n, c in self.clients.items() if c.auth is not None and c.auth.type in OAUTH_TYPES]
        return [*oauth, *self.pipelines]


@dataclass(frozen=True)
class ClientEntry:
    """One client name as this process resolved it: its spec (``None``: not defined) and what it depends on.

    ``pipeline``, ``credential`` and ``subject`` (``SUBJECT_TOKEN_FROM``) are the names its
    ``AUTH`` refers to, kept even when the definition could not be parsed (a pipeline
    created later makes it valid).
    """

    spec: ClientSpec | None
    source: str | None = None  # "settings" | "database"
    pipeline: str | None = None
    credential: str | None = None
    cacheable: bool = True  # False when the database could not be read: ask again next time
    subject: str | None = None

    @classmethod
    def of(cls, spec: ClientSpec | None, source: str | None) -> ClientEntry:
        auth = spec.auth if spec is not None else None
        if auth is None:
            return cls(spec, source)
        return cls(spec, source, auth.pipeline, auth.credential, subject=auth.subject_token_from)


@dataclass(frozen=True)
class PipelineEntry:
    """One pipeline name as this process resolved it (``spec`` ``None``: not defined)."""

    spec: PipelineSpec | None
    source: str | None = None
    cacheable: bool = True


_UNREADABLE_DATABASE = object()


def load_client(spec: SettingsSpec, name: str, pipeline: Callable[[str], PipelineSpec | None]) -> ClientEntry:
    """Client ``name``: the settings entry, else the active database definition (``pipeline`` resolves AUTH PIPELINE)."""
    if name in spec.clients:
        return ClientEntry.of(spec.clients[name], "settings")
    raw = _database_call("database_client", name)
    if raw is _UNREADABLE_DATABASE:
        return ClientEntry(None, cacheable=False)
    if raw is None:
        return ClientEntry(None)
    auth = raw.get("AUTH") if isinstance(raw.get("AUTH"), Mapping) else {}
    wanted, credential, subject = auth.get("PIPELINE"), auth.get("CREDENTIAL"), auth.get("SUBJECT_TOKEN_FROM")
    wanted = wanted if isinstance(wanted, str) else None
    credential = credential if isinstance(credential, str) else None
    subject = subject if isinstance(subject, str) else None
    known = [wanted] if wanted is not None and pipeline(wanted) is not None else []
    from ..setting.validate import parse_client

    try:
        parsed = parse_client(name, raw, pipelines=known, default_timeout=spec.default_timeout)
    except Exception as exc:
        logger.error("Ignoring database client %r: %s", name, exc)
        return ClientEntry(None, None, wanted, credential, subject=subject)
    return ClientEntry(parsed, "database", wanted, credential, subject=subject)


def load_pipeline(spec: SettingsSpec, name: str) -> PipelineEntry:
    """Pipeline ``name``: the settings entry, else the active database definition."""
    if name in spec.pipelines:
        return PipelineEntry(spec.pipelines[name], "settings")
    raw = _database_call("database_pipeline", name)
    if raw is _UNREADABLE_DATABASE:
        return PipelineEntry(None, cacheable=False)
    if raw is None:
        return PipelineEntry(None)
    from ..setting.validate import parse_pipeline

    try:
        return PipelineEntry(parse_pipeline(name, raw, refresh_ahead=spec.refresh_ahead), "database")
    except Exception as exc:
        logger.error("Ignoring database pipeline %r: %s", name, exc)
        return PipelineEntry(None)


def _database_call(loader_name: str, name: str) -> Any:
    """``models.<loader_name>(name)``; ``None`` without the models, :data:`_UNREADABLE_DATABASE` on a fault."""
    try:
        from .. import models
    except ImportError:
        return None
    loader = getattr(models, loader_name, None)
    if loader is None:
        return None
    try:
        return loader(name)
    except Exception as exc:
        _report_database_fault(exc, models)
        return _UNREADABLE_DATABASE


def load_definitions(spec: SettingsSpec, generation: str | None) -> Definitions:
    """Settings entries plus active database definitions (a name defined in both keeps the settings one)."""
    from ..setting.validate import parse_client, parse_pipeline

    clients: dict[str, ClientSpec] = dict(spec.clients)
    pipelines: dict[str, PipelineSpec] = dict(spec.pipelines)
    sources = {name: "settings" for name in (*clients, *pipelines)}
    raw_clients, raw_pipelines = _database_definitions()
    for name, raw in raw_pipelines.items():
        if name in pipelines:
            logger.error("Pipeline %r is defined in settings and in the database; using settings (requestforge.E031)", name)
            continue
        try:
            pipelines[name] = parse_pipeline(name, raw, refresh_ahead=spec.refresh_ahead)
            sources[name] = "database"
        except Exception as exc:
            logger.error("Ignoring database pipeline %r: %s", name, exc)
    for name, raw in raw_clients.items():
        if name in clients:
            logger.error("Client %r is defined in settings and in the database; using settings (requestforge.E031)", name)
            continue
        try:
            clients[name] = parse_client(name, raw, pipelines=pipelines.keys(), default_timeout=spec.default_timeout)
            sources[name] = "database"
        except Exception as exc:
            logger.error("Ignoring database client %r: %s", name, exc)
    return Definitions(
        settings=spec,
        clients=MappingProxyType(clients),
        pipelines=MappingProxyType(pipelines),
        sources=MappingProxyType(sources),
        generation=generation,
    )


def _database_definitions() -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Raw admin-edited definitions; none when the models are unavailable or not migrated yet."""
    try:
        from .. import models
    except ImportError:
        return {}, {}
    loader = getattr(models, "database_definitions", None)
    if loader is None:
        return {}, {}
    try:
        definitions: tuple[Mapping[str, Any], Mapping[str, Any]] = loader()
        return definitions
    except Exception as exc:
        _report_database_fault(exc, models)
        return {}, {}


def _report_database_fault(exc: Exception, models: Any) -> None:
    """Settings still work; only a real database fault is worth a warning."""
    expected = _database_not_usable_here(exc, models)
    if expected:
        logger.debug("Database definitions not loaded (%s); using settings only", expected)
    else:
        logger.warning("Could not load database definitions (%s: %s); using settings only", type(exc).__name__, exc)


def _database_not_usable_here(exc: Exception, models: Any) -> str | None:
    """Why reading the definitions failed, when that is expected where it happened (not a fault); else ``None``.

    Expected: a test without database access (pytest-django's blocker raises
    ``RuntimeError("Database access not allowed, ...")``, Django's ``SimpleTestCase``
    and ``TestCase.databases`` raise ``DatabaseOperationForbidden``), and a database
    whose tables do not exist yet (before ``migrate``: nothing is stored, so nothing is
    missed). A database that is down, refuses the login or fails the query is a fault.
    """
    if isinstance(exc, RuntimeError) and str(exc).startswith("Database access not allowed"):
        return "database access is not allowed here"
    if any(cls.__name__ == "DatabaseOperationForbidden" and cls.__module__ == "django.test.testcases" for cls in type(exc).__mro__):
        return "database access is not allowed in this test"
    from django.db import DatabaseError, connections, router

    if not isinstance(exc, DatabaseError):
        return None
    try:
        for model in (models.ClientDefinition, models.PipelineDefinition, models.PipelineStep, models.Credential):
            if model._meta.db_table not in connections[router.db_for_read(model)].introspection.table_names():
                return f"table {model._meta.db_table} does not exist yet; run migrate"
    except Exception:  # the database cannot even be introspected: report the original error
        return None
    return None


def resolve_credential(auth: AuthSpec, owner: str, *, database_client: ClientSpec | None = None) -> AuthSpec:
    """``auth`` with the secrets of its ``CREDENTIAL`` row filled in (unchanged without one).

    ``database_client``: the spec of a client defined in the database. Its credential
    must be bound to every origin it would reach (``Credential.allowed_origins``), else
    ``models.UnboundCredentialError`` before any secret is decrypted or sent. Settings
    clients are trusted code and pass ``None``.
    """
    if not auth.credential:
        return auth
    from .. import models

    credential = models.get_credential(auth.credential)
    if credential is None:
        raise ConfigurationError(
            f'client "{owner}": credential "{auth.credential}" does not exist or is not active; create it in the admin',
            field="AUTH.CREDENTIAL",
        )
    if database_client is not None:
        trusted = getattr(database_client, "trusted_origins", ()) or ()
        destinations = models.credential_destinations(database_client.base_url, auth.token_url, trusted, issuer=auth.issuer)
        models.ensure_bound(owner, credential, destinations)
    values = credential.auth_values()
    changes: dict[str, Any] = {
        "client_id": values.get("CLIENT_ID") or auth.client_id,
        "client_secret": values.get("CLIENT_SECRET"),
        "username": values.get("USERNAME"),
        "password": values.get("PASSWORD"),
        "key": values.get("KEY"),
        "token": values.get("TOKEN"),
        "private_key": values.get("PRIVATE_KEY"),
        "key_id": values.get("KEY_ID"),
        "scope": auth.scope or values.get("SCOPE"),
        "extra_params": MappingProxyType({**values.get("EXTRA_PARAMS", {}), **auth.extra_params}),
    }
    if auth.type == "jwt_bearer":  # the credential's key signs the grant assertion (settings may not hold one beside it: E005)
        assertion = auth.assertion or AssertionSpec()
        changes["assertion"] = replace(assertion, private_key=values.get("PRIVATE_KEY"), key_id=values.get("KEY_ID"))
    return replace(auth, **changes)
