"""``manage.py requestforge_invalidate NAME [--step STEP] | --all``: drop tokens in every process's shared cache."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...registry import UnknownNameError, registry
from ._base import run_or_fail


class Command(BaseCommand):
    help = (
        "Invalidate the cached token of a client or pipeline in the shared cache (every process refetches it once). "
        "For a pipeline, --step drops that step and the steps depending on it; without it every step is dropped."
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
        dropped = run_or_fail(lambda: self._invalidate(names or None, step))
        for label in dropped:
            self.stdout.write(f"Invalidated {label}")

    def _invalidate(self, names: list[str] | None, step: str | None) -> list[str]:
        definitions = registry.definitions()
        targets = names if names is not None else definitions.token_names()
        for name in targets:  # check every name before dropping anything
            registry.get_token_manager(name)
        dropped: list[str] = []
        for name in targets:
            if name in definitions.pipelines and name not in definitions.clients:
                pipeline = registry.get_pipeline(name)
                if step is None:
                    pipeline.invalidate_all(reason="manual")
                    dropped.extend(f"{name}/{s}" for s in pipeline.step_names)
                else:
                    if pipeline.get_step(step) is None:
                        raise UnknownNameError(f"step of pipeline {name!r}", step, pipeline.step_names)
                    pipeline.invalidate_step(step, reason="manual")
                    dropped.extend(f"{name}/{s}" for s in (step, *pipeline.dependents_of(step)))
            else:
                if step is not None:
                    raise CommandError(f"--step applies to pipelines; {name!r} is a client.")
                registry.get_token_manager(name).invalidate_token(reason="manual")
                dropped.append(name)
        return dropped
