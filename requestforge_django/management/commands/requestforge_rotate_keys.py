"""``manage.py requestforge_rotate_keys [--dry-run]``: re-encrypt every stored secret with the first key.

Rotation: put the new key first in ``ENCRYPTION_KEYS`` (keep the old ones after it),
deploy, run this command, then drop the old keys. Every ``EncryptedTextField`` of every
installed model is covered, in one transaction (all rows or none), in batches of
``--batch-size`` rows locked with ``SELECT ... FOR UPDATE`` so a secret saved in the
admin meanwhile is not overwritten. Output is counts and key fingerprints only.

If a value cannot be decrypted with any key, nothing is changed and the command exits
non-zero naming every such row and field, so the old keys are never dropped while a
secret still depends on them.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, models, transaction

from ...encryption import EncryptionError, ensure_keys
from ...fields import Ciphertext, EncryptedTextField


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every concrete model with encrypted fields, and the names of those fields."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field of every row with the first REQUESTFORGE ENCRYPTION_KEYS key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="check that every value can be decrypted; change nothing")
        parser.add_argument("--batch-size", type=int, default=500, help="rows read and locked per query (default 500)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")

    def handle(self, *args: Any, dry_run: bool, batch_size: int, database: str, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            fingerprints = ensure_keys()
        except (EncryptionError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Key set: {', '.join(fingerprints)}; encrypting with {fingerprints[0]}.")
        failures: list[str] = []
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        with transaction.atomic(using=database):
            for model, names in encrypted_fields():
                rows, values = self.rotate(model, names, database, batch_size, dry_run, failures)
                self.stdout.write(f"{model._meta.label}: {values} values in {rows} rows {verb}.")
            if failures:
                # Raising inside the atomic block rolls back every batch already rewritten.
                raise CommandError(
                    f"{len(failures)} stored values cannot be decrypted with the current ENCRYPTION_KEYS "
                    f"(fingerprints: {', '.join(fingerprints)}); nothing was changed:\n  " + "\n  ".join(failures) + "\n"
                    "Add the key they were encrypted with after the first one and run this command again, "
                    "or enter those secrets again (or clear them) in the admin."
                )
        if not dry_run:
            self.stdout.write(self.style.SUCCESS(f"Done: every stored value is encrypted with key {fingerprints[0]}."))

    def rotate(
        self, model: type[models.Model], names: list[str], database: str, batch_size: int, dry_run: bool, failures: list[str]
    ) -> tuple[int, int]:
        """Re-encrypt ``names`` of every row of ``model``; returns (rows, values) rewritten."""
        manager = model._base_manager.db_manager(database)
        rows = values = 0
        last_pk: Any = None
        while True:
            query = manager.order_by("pk").select_for_update()
            if last_pk is not None:
                query = query.filter(pk__gt=last_pk)
            batch = list(query.values_list("pk", *names)[:batch_size])
            if not batch:
                return rows, values
            for pk, *stored in batch:
                # ``from_db_value`` has already decrypted with any key; saving encrypts with the first.
                updates = {}
                for name, value in zip(names, stored, strict=True):
                    if isinstance(value, Ciphertext):
                        failures.append(f'{model._meta.label} pk={pk} field "{name}"')
                    elif value:
                        updates[name] = value
                if updates:
                    rows += 1
                    values += len(updates)
                    if not dry_run:
                        manager.filter(pk=pk).update(**updates)
            last_pk = batch[-1][0]
