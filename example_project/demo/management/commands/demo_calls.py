"""``manage.py demo_calls [--rounds N] [--pause S] [--json]``: the demo page's calls, from a shell.

Runs in its own process, yet uses the tokens the web server (or the warm-up) already
fetched: the token cache is shared. Exits non-zero if any call failed, which is what
``scripts/demo.sh --check`` relies on.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...calls import Round, run_round


class Command(BaseCommand):
    help = "Make the demo page's calls through get_client(...) and show the answers and the token fetches they caused."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rounds", type=int, default=2, help="rounds of calls, one per client (default 2)")
        parser.add_argument("--pause", type=float, default=0.0, help="seconds between rounds")
        parser.add_argument("--json", action="store_true", help="print one JSON object per round")

    def handle(self, *args: Any, rounds: int, pause: float, json: bool, **options: Any) -> None:
        results: list[Round] = []
        for number in range(1, max(rounds, 1) + 1):
            if number > 1 and pause > 0:
                time.sleep(pause)
            result = run_round()
            results.append(result)
            self._print(number, result, as_json=json)
        calls = sum(len(r.calls) for r in results)
        failed = sum(1 for r in results for c in r.calls if not c.ok)
        fetched = sum(sum(r.token_fetches.values()) for r in results)
        if failed:
            raise CommandError(f"{failed} of {calls} calls failed")
        if not json:
            self.stdout.write(self.style.SUCCESS(f"{calls} calls, all succeeded; the partner issued {fetched} tokens meanwhile."))

    def _print(self, number: int, result: Round, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({"round": number, **result.to_json()}, sort_keys=True))
            return
        self.stdout.write(f"round {number}")
        for call in result.calls:
            status = str(call.status) if call.status is not None else "error"
            detail = call.error or _short(call.body)
            line = f"  {call.client:<9} GET {call.path:<14} {status:>5} {call.elapsed_ms:6.0f} ms  {detail}"
            self.stdout.write(self.style.SUCCESS(line) if call.ok else self.style.ERROR(line))
        if result.token_fetches:
            fetched = ", ".join(f"{endpoint} {n}" for endpoint, n in result.token_fetches.items())
            self.stdout.write(f"  tokens the partner issued during this round: {fetched}")
        else:
            self.stdout.write("  tokens the partner issued during this round: none (every token came from the shared cache)")


def _short(body: Any, limit: int = 70) -> str:
    text = json.dumps(body, sort_keys=True) if not isinstance(body, str) else body
    return text if len(text) <= limit else text[: limit - 3] + "..."
