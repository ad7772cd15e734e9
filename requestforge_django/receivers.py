"""Saving or deleting a credential or definition: drop the affected tokens and tell every process.

A token fetched with an old client secret, or by a pipeline whose steps changed, must
not outlive the change. On ``post_save``/``post_delete`` of the admin-editable models
this module, after the transaction commits:

1. invalidates, in the shared cache, the tokens that were obtained with what changed
   (``token_invalidated`` with reason ``"credential_changed"`` or
   ``"definition_changed"``): the clients whose ``AUTH["CREDENTIAL"]`` names a changed
   credential, or the changed client or pipeline itself;
2. bumps the definitions generation (:func:`~requestforge_django.registry.bump_generation`),
   so every process rebuilds its clients from the new definitions within a second.

Connected once by ``RequestforgeConfig.ready()`` (``dispatch_uid`` makes it idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger("requestforge_django")

__all__ = ["connect_model_receivers", "definitions_changed"]


def definitions_changed(
    *, clients: Iterable[str] = (), pipelines: Iterable[str] = (), credentials: Iterable[str] = (), reason: str
) -> None:
    """Invalidate the tokens of the named clients/pipelines (and of clients using the credentials), then bump."""
    from .registry import bump_generation, registry

    credentials = set(credentials)
    definitions = registry.definitions()
    using_credentials = {n for n, spec in definitions.clients.items() if spec.auth is not None and spec.auth.credential in credentials}
    affected = set(clients) | using_credentials
    token_names = definitions.token_names()
    targets = [name for name in sorted(affected) if name in token_names] + [name for name in pipelines if name in definitions.pipelines]
    for name in targets:
        try:
            registry.get_token_manager(name).invalidate_token(reason=reason)
        except Exception as exc:  # a broken definition must not block saving another
            logger.warning("Could not invalidate the tokens of %r after a change (%s: %s)", name, type(exc).__name__, exc)
    bump_generation()


def _own_name(instance: Any) -> str | None:
    return getattr(instance, "name", None)


def _pipeline_name(step: Any) -> str | None:
    try:
        return step.pipeline.name
    except Exception:  # the pipeline row is being deleted with its steps
        return None


def _changed(section: str, reason: str, name_of: Callable[[Any], str | None] = _own_name) -> Callable[..., None]:
    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        name = name_of(instance)
        if name:
            transaction.on_commit(lambda: definitions_changed(**{section: [name]}, reason=reason))

    return receiver


_RECEIVERS = {
    "Credential": _changed("credentials", "credential_changed"),
    "ClientDefinition": _changed("clients", "definition_changed"),
    "PipelineDefinition": _changed("pipelines", "definition_changed"),
    "PipelineStep": _changed("pipelines", "definition_changed", _pipeline_name),
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
