"""``manage.py requestforge_warm [NAME ...]``: fetch every missing or due token now (what the Celery task does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import operations
from ...status import describe_expiry
from ._base import run_or_fail


class Command(BaseCommand):
    help = "Fetch now every token that is missing or due for refresh, under the same cross-process lock as requests."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="clients or pipelines (default: WARM, or every token-backed one)")

    def handle(self, *args: Any, names: list[str], **options: Any) -> None:
        results = run_or_fail(lambda: operations.warm(names or None))
        if not results:
            self.stdout.write("Nothing to warm: no client or pipeline obtains tokens.")
            return
        for result in results:
            detail = describe_expiry(result.expires_in) if result.ok else result.error or "renewal failed; the cached token stays"
            line = f"{result.label}: {result.status} ({detail})"
            self.stdout.write(self.style.SUCCESS(line) if result.ok else self.style.ERROR(line))
        failed = [r.label for r in results if not r.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} tokens could not be renewed: {', '.join(failed)}")
