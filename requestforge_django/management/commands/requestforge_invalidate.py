"""``manage.py requestforge_invalidate NAME [--step STEP] | --all``: drop tokens in every process's shared cache."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import operations
from ._base import run_or_fail


class Command(BaseCommand):
    help = (
        "Invalidate the cached token of a client or pipeline in the shared cache (every process refetches it once). "
        "For a pipeline, --step drops that step and the steps depending on it; without it every step is dropped. "
        "Works from names alone: nothing is built, so a client whose credential is gone can be invalidated too."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="token-backed clients or pipelines")
        parser.add_argument("--step", help="pipeline step to invalidate (with its dependents); needs exactly one pipeline NAME")
        parser.add_argument("--all", action="store_true", dest="everything", help="invalidate every token-backed client and pipeline")

    def handle(self, *args: Any, names: list[str], step: str | None, everything: bool, **options: Any) -> None:
        if everything == bool(names):
            raise CommandError("Give one or more NAMEs, or --all (not both).")
        if step is not None and len(names) != 1:
            raise CommandError("--step needs exactly one pipeline NAME.")
        try:
            dropped = run_or_fail(lambda: operations.invalidate_all() if everything else operations.invalidate(names, step=step))
        except operations.StepOfClientError as exc:
            raise CommandError(f"--step applies to pipelines; {exc.name!r} is a client.") from exc
        except operations.InvalidationError as exc:
            for label in exc.dropped:
                self.stdout.write(f"Invalidated {label}")
            raise CommandError(f"Could not invalidate {', '.join(exc.failed)}: the shared cache cannot be written (see the logs).") from exc
        for label in dropped:
            self.stdout.write(f"Invalidated {label}")
