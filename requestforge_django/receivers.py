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
3. bumps the definitions generation (:func:`~requestforge_django.registry.bump_generation`),
   so every process rebuilds its clients from the new definitions within
   ``GENERATION_CHECK_INTERVAL`` (0.5 s) of its next call.

Connected once by ``RequestforgeConfig.ready()`` (``dispatch_uid`` makes it idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

logger = logging.getLogger("requestforge_django")

__all__ = ["connect_model_receivers", "definitions_changed"]

_OAUTH_TYPES = ("client_credentials", "password")


def definitions_changed(
    *,
    clients: Iterable[str] = (),
    pipelines: Iterable[str] = (),
    credentials: Iterable[str] = (),
    steps: Iterable[tuple[str, str]] = (),
    reason: str,
) -> None:
    """Publish the credentials' versions, drop the tokens of what changed (by name), then bump the generation.

    ``steps`` are ``(pipeline, step)`` names dropped even when this process's definitions
    no longer list them (a step or pipeline deleted before the commit was seen).
    """
    from .fencing import drop_tokens, publish_credential_versions
    from .registry import bump_generation, registry

    credentials = set(credentials)
    try:
        if credentials:
            publish_credential_versions(credentials)
        definitions = registry.definitions()
        auths = {n: spec.auth for n, spec in definitions.clients.items() if spec.auth is not None and spec.auth.type in _OAUTH_TYPES}
        oauth = set(auths)
        using = {n for n, auth in auths.items() if auth.credential in credentials}
        # A changed client this process does not know (yet) may still have a token: its key follows from its name.
        named = {n for n in clients if n in oauth or n not in definitions.clients}
        drop_tokens(definitions, clients=sorted(using | named), pipelines=list(dict.fromkeys(pipelines)), steps=steps, reason=reason)
    except Exception as exc:  # never block the save, and still tell the other processes
        logger.error("Could not drop the tokens affected by a change (%s: %s)", type(exc).__name__, exc)
    bump_generation()


def _own_names(instance: Any) -> list[str]:
    """The name of ``instance``, and the one it had before a rename (``Credential.previous_name``)."""
    names = [getattr(instance, "name", None), getattr(instance, "previous_name", None)]
    return [name for name in dict.fromkeys(names) if name]


def _changed(section: str, reason: str, names_of: Callable[[Any], list[str]] = _own_names) -> Callable[..., None]:
    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        names = names_of(instance)
        if names:
            changed: dict[str, Any] = {section: names, "reason": reason}
            transaction.on_commit(lambda: definitions_changed(**changed), using=kwargs.get("using"))

    return receiver


def _step_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A step saved or deleted: every step of its pipeline, and this step's own key (named now, before the commit)."""
    try:
        pipeline = instance.pipeline.name
    except Exception:  # the pipeline row is gone already
        return
    keys = [(pipeline, instance.name)]
    transaction.on_commit(
        lambda: definitions_changed(pipelines=[pipeline], steps=keys, reason="definition_changed"), using=kwargs.get("using")
    )


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
