"""Saving or deleting a credential or definition: fence out the old tokens, drop them and tell every process.

A token fetched with an old client secret, or by a pipeline whose steps changed, must
not outlive the change. Before a credential row is updated or deleted (``pre_save``,
``pre_delete``) this module marks its published version as changing and waits until no
process can still hold one of its tokens in memory
(:func:`~requestforge_django.fencing.prepare_credential_change`, about 0.3 s). On
``post_save``/``post_delete`` of the admin-editable models, after the transaction
commits, it:

1. for a credential (saved, deactivated, deleted or renamed): publishes its new version,
   or that it is gone, in the shared token cache
   (:func:`~requestforge_django.fencing.publish_credential_versions`). From then on no
   process serves or stores a token obtained with an older version, whatever
   definitions it still holds (see :mod:`requestforge_django.fencing`);
2. drops, in the shared cache, the tokens that were obtained with what changed
   (``token_invalidated`` with reason ``"credential_changed"`` or
   ``"definition_changed"``): the OAuth clients whose ``AUTH["CREDENTIAL"]`` names a
   changed credential, the changed OAuth client itself, every step of a changed
   pipeline. The keys follow from the names, so nothing is built: a client whose
   credential is gone loses its token too;
3. publishes the names that changed (:func:`~requestforge_django.registry.bump_generation`),
   so every process forgets those names (and the clients using a changed credential or
   pipeline) within ``GENERATION_CHECK_INTERVAL`` (0.5 s) of its next call, and
   rebuilds them when next asked for; nothing else is rebuilt.

Everything saved in one transaction is published once, when it commits: saving a
pipeline with its steps in the admin is one change, not one per row. Outside a
transaction (autocommit) every save is its own.

Connected once by ``RequestforgeConfig.ready()`` (``dispatch_uid`` makes it idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from .setting.specs import OAUTH_AUTH_TYPES

logger = logging.getLogger("requestforge_django")

__all__ = ["connect_model_receivers", "definitions_changed"]

#: The AUTH TYPEs whose clients obtain their own token (client_credentials, password, jwt_bearer, token_exchange).
_OAUTH_TYPES = tuple(sorted(OAUTH_AUTH_TYPES))


def definitions_changed(
    *,
    clients: Iterable[str] = (),
    pipelines: Iterable[str] = (),
    credentials: Iterable[str] = (),
    steps: Iterable[tuple[str, str]] = (),
    reason: str,
) -> None:
    """Publish the credentials' versions, drop the tokens of what changed (by name), then publish the names once.

    ``steps`` are ``(pipeline, step)`` names dropped even when this process's definitions
    no longer list them (a step or pipeline deleted before the commit was seen).
    """
    change = _Change()
    change.add(clients=clients, pipelines=pipelines, credentials=credentials, steps=steps, reason=reason)
    change()


class _Change:
    """Names changed in one transaction, published once when it commits (it is its ``on_commit`` callback)."""

    def __init__(self) -> None:
        self.clients: dict[str, str] = {}  # name -> reason
        self.pipelines: dict[str, str] = {}
        self.credentials: set[str] = set()
        self.steps: dict[tuple[str, str], str] = {}
        self.credential_reason = "credential_changed"

    def add(
        self,
        *,
        clients: Iterable[str] = (),
        pipelines: Iterable[str] = (),
        credentials: Iterable[str] = (),
        steps: Iterable[tuple[str, str]] = (),
        reason: str,
    ) -> None:
        for name in clients:
            self.clients.setdefault(name, reason)
        for name in pipelines:
            self.pipelines.setdefault(name, reason)
        for pair in steps:
            self.steps.setdefault(pair, reason)
        credentials = set(credentials)
        if credentials and not self.credentials:
            self.credential_reason = reason
        self.credentials.update(credentials)

    def __call__(self) -> None:
        from .registry import bump_generation

        try:
            self._drop_tokens()
        except Exception as exc:  # never block the save, and still tell the other processes
            logger.error("Could not drop the tokens affected by a change (%s: %s)", type(exc).__name__, exc)
        bump_generation(clients=self.clients, pipelines=self.pipelines, credentials=self.credentials)

    def _drop_tokens(self) -> None:
        from .fencing import drop_tokens, publish_credential_versions
        from .registry import Definitions, registry
        from .setting.conf import requestforge_settings

        if self.credentials:
            publish_credential_versions(self.credentials)
        # Who to drop, by reason: the OAuth clients using a changed credential, the changed clients this
        # process knows as OAuth or does not know (yet: a token's key follows from its name), every step of a
        # changed pipeline, and the steps named. Only the names involved are read, never every definition.
        drops: dict[str, dict[str, Any]] = {}

        def group(reason: str) -> dict[str, Any]:
            return drops.setdefault(reason, {"clients": [], "pipelines": [], "steps": []})

        if self.credentials:
            for name in _clients_using(self.credentials):
                group(self.credential_reason)["clients"].append(name)
        for name, reason in self.clients.items():
            spec = registry.client_spec(name)
            if spec is None or (spec.auth is not None and spec.auth.type in _OAUTH_TYPES):
                group(reason)["clients"].append(name)
        known: dict[str, Any] = {}
        for name, reason in self.pipelines.items():
            group(reason)["pipelines"].append(name)
            pipeline = registry.pipeline_spec(name)
            if pipeline is not None:
                known[name] = pipeline
        for pair, reason in self.steps.items():
            group(reason)["steps"].append(pair)
        definitions = Definitions(settings=requestforge_settings.spec, pipelines=known)
        dropped: set[str] = set()
        for reason, names in drops.items():
            clients = [name for name in dict.fromkeys(names["clients"]) if name not in dropped]
            dropped.update(clients)
            drop_tokens(definitions, clients=sorted(clients), pipelines=names["pipelines"], steps=names["steps"], reason=reason)


def _clients_using(credentials: set[str]) -> list[str]:
    """The OAuth clients (settings, then database) whose ``AUTH["CREDENTIAL"]`` is one of ``credentials``."""
    from . import models
    from .setting.conf import requestforge_settings

    settings = requestforge_settings.spec
    names = [
        n
        for n, spec in settings.clients.items()
        if spec.auth is not None and spec.auth.type in _OAUTH_TYPES and spec.auth.credential in credentials
    ]
    names += [n for n in models.clients_using_credentials(credentials, _OAUTH_TYPES) if n not in settings.clients]
    return names


def _enqueue(using: str | None, **names: Any) -> None:
    """Add ``names`` to the change of the current transaction on ``using`` (published when it commits)."""
    connection = transaction.get_connection(using)
    change = _pending_change(connection)
    if change is None:
        change = _Change()
        change.add(**names)
        transaction.on_commit(change, using=using)
    else:
        change.add(**names)


def _pending_change(connection: Any) -> _Change | None:
    """The change already waiting for this transaction to commit, at this savepoint level; else ``None``.

    Read from Django's list of ``on_commit`` callbacks, so a rollback (of the transaction,
    or of the savepoint the change was registered in) discards it with the callback.
    """
    if not connection.in_atomic_block:
        return None  # autocommit: on_commit runs the callback at once
    current = set(connection.savepoint_ids)
    for entry in getattr(connection, "run_on_commit", ()):
        if isinstance(entry, tuple) and len(entry) >= 2 and isinstance(entry[1], _Change) and entry[0] == current:
            return entry[1]
    return None


def _own_names(instance: Any) -> list[str]:
    """The name of ``instance``, and the one it had before a rename (``Credential.previous_name``)."""
    names = [getattr(instance, "name", None), getattr(instance, "previous_name", None)]
    return [name for name in dict.fromkeys(names) if name]


def _changed(section: str, reason: str, names_of: Callable[[Any], list[str]] = _own_names) -> Callable[..., None]:
    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        names = names_of(instance)
        if names:
            _enqueue(kwargs.get("using"), **{section: names, "reason": reason})

    return receiver


def _step_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A step saved or deleted: every step of its pipeline, and this step's own key (named now, before the commit)."""
    try:
        pipeline = instance.pipeline.name
    except Exception:  # the pipeline row is gone already
        return
    _enqueue(kwargs.get("using"), pipelines=[pipeline], steps=[(pipeline, instance.name)], reason="definition_changed")


def _credential_changing(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Before a credential row is updated or deleted: wait out the copies of its tokens in process memory."""
    from .fencing import prepare_credential_change

    name = getattr(instance, "previous_name", None) if kwargs.get("signal") is pre_save else getattr(instance, "name", None)
    if not name:
        return
    try:
        prepare_credential_change([name])
    except Exception as exc:  # never block the save: the version published on commit still fences the old tokens
        logger.error("Could not prepare the change of credential %r (%s: %s)", name, type(exc).__name__, exc)


_RECEIVERS = {
    "Credential": _changed("credentials", "credential_changed"),
    "ClientDefinition": _changed("clients", "definition_changed"),
    "PipelineDefinition": _changed("pipelines", "definition_changed"),
    "PipelineStep": _step_changed,
}


def connect_model_receivers() -> None:
    """Connect the receivers to the app's models (idempotent)."""
    from django.apps import apps

    for model_name, receiver in _RECEIVERS.items():
        try:
            model = apps.get_model("requestforge_django", model_name)
        except LookupError:
            continue
        for signal, label in ((post_save, "save"), (post_delete, "delete")):
            signal.connect(receiver, sender=model, dispatch_uid=f"requestforge_django.receivers.{model_name}.{label}")
        if model_name == "Credential":
            for signal, label in ((pre_save, "pre_save"), (pre_delete, "pre_delete")):
                signal.connect(_credential_changing, sender=model, dispatch_uid=f"requestforge_django.receivers.Credential.{label}")
