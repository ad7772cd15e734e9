"""``manage.py requestforge_status [NAME ...] [--json]``: every client's and pipeline step's token, masked."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from django.core.management.base import BaseCommand

from ... import operations
from ...status import TokenStatus
from ._base import run_or_fail

COLUMNS = ("NAME", "SOURCE", "AUTH", "STATE", "EXPIRY", "TOKEN", "LAST OBTAINED", "LAST ERROR")


class Command(BaseCommand):
    help = "Show each client's and pipeline step's token: its state, expiry, a masked prefix, last fetch and error."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="clients or pipelines to show (default: all)")
        parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table (expires_in in seconds)")

    def handle(self, *args: Any, names: list[str], json: bool, **options: Any) -> None:
        rows = run_or_fail(lambda: operations.statuses(names or None))
        if json:
            self.stdout.write(_dumps([row.to_json() for row in rows]))
            return
        if not rows:
            self.stdout.write("No clients or pipelines are defined.")
            return
        table: list[tuple[str, ...]] = [COLUMNS, *(_cells(row) for row in rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS) - 1)]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])


def _cells(row: TokenStatus) -> tuple[str, ...]:
    obtained = _utc(row.last_obtained_at) if row.last_obtained_at else "-"
    error = f"{_utc(row.last_error_at)}: {row.last_error}" if row.last_error and row.last_error_at else "-"
    return (row.label, row.source, row.auth, row.state_text, row.expiry, row.token or "-", obtained, error)


def _utc(moment: datetime) -> str:
    """``"2026-11-21 16:38:01 UTC"``: whatever the project's TIME_ZONE, so two machines' outputs compare."""
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
