"""A finding about the setting (:class:`Problem`), how its key is written, and did-you-mean.

A problem names the exact key as it is written in settings
(``REQUESTFORGE["CLIENTS"]["billing"]["AUTH"]["CLIENT_SECRET"]``), so the user can find
it, and carries the client or pipeline name separately for the admin. A problem never
quotes a value that may be secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from .ids import Level

__all__ = ["SETTING_NAME", "Path", "PathItem", "Problem", "choices_text", "did_you_mean", "raise_first_error", "render_key", "suggest"]

SETTING_NAME = "REQUESTFORGE"

PathItem = str | int
Path = tuple[PathItem, ...]


def render_key(path: Iterable[PathItem]) -> str:
    """``("CLIENTS", "billing", "AUTH")`` -> ``REQUESTFORGE["CLIENTS"]["billing"]["AUTH"]``."""
    rendered = SETTING_NAME
    for item in path:
        rendered += f"[{item}]" if isinstance(item, int) else f'["{item}"]'
    return rendered


@dataclass(frozen=True)
class Problem:
    """One finding about the setting: an error (the setting cannot work) or a warning.

    ``path`` is the key path below ``REQUESTFORGE``; ``detail`` is the message without
    the key (what an admin form shows next to a field); ``message`` is both together.
    """

    id: str
    level: Level
    path: Path
    detail: str
    hint: str | None = None

    @property
    def key(self) -> str:
        return render_key(self.path)

    @property
    def message(self) -> str:
        return f"{self.key} {self.detail}"

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR

    @property
    def client(self) -> str | None:
        """The client this problem is about, if any."""
        return self._named("CLIENTS")

    @property
    def pipeline(self) -> str | None:
        """The pipeline this problem is about, if any."""
        return self._named("PIPELINES")

    def _named(self, section: str) -> str | None:
        if len(self.path) >= 2 and self.path[0] == section and isinstance(self.path[1], str):
            return self.path[1]
        return None

    def __str__(self) -> str:
        return f"{self.message} ({self.id})"


def did_you_mean(word: object, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (case-insensitively), or ``None`` if none is close."""
    if not isinstance(word, str) or not word:
        return None
    by_fold = {c.casefold(): c for c in candidates}
    folded = word.casefold()
    if folded in by_fold:
        return by_fold[folded]
    matches = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=0.6)
    return by_fold[matches[0]] if matches else None


def suggest(word: object, candidates: Iterable[str]) -> str:
    """The end of a sentence: a did-you-mean question, or a full stop."""
    match = did_you_mean(word, candidates)
    return f'; did you mean "{match}"?' if match else "."


def choices_text(candidates: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in candidates)


def raise_first_error(problems: Iterable[Problem]) -> None:
    """Raise ``ImproperlyConfigured`` naming the first error; warnings never raise."""
    from django.core.exceptions import ImproperlyConfigured

    errors = [p for p in problems if p.is_error]
    if errors:
        more = f" (and {len(errors) - 1} more; run manage.py check)" if len(errors) > 1 else ""
        raise ImproperlyConfigured(f"{errors[0]}{more}")
