"""The generic schema reader: records problems and reads typed values with their defaults.

:class:`Reader` knows nothing of the setting's sections: it reads a key of a raw dict
through a check (a method turning a raw value into a normalized one, or reporting it and
returning :data:`INVALID`), and falls back to the default when the key is absent or
invalid. :meth:`Reader.field` reads a spec field: its key and default come from the spec
dataclass (:mod:`.specs`), so no default is written twice. The rules of each section
(:mod:`.rules`) are subclasses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from .ids import (
    CHECKS,
    E_HEADER_VALUE,
    E_IMPORT,
    E_IMPORT_KIND,
    E_INVALID,
    E_NAME,
    E_PATH_MISSING,
    E_REQUIRED,
    E_UNKNOWN_KEY,
    W_IGNORED,
    W_PLAIN_HTTP,
    W_REFRESH_AHEAD,
)
from .predicates import HEADER_NAME, NAME_RULES, is_http_url, is_int, is_loopback, is_number, type_name
from .problems import Path, Problem, choices_text, suggest
from .specs import default_of

__all__ = ["INVALID", "Check", "Reader"]

INVALID: Any = object()  # sentinel: the value was reported, use the default

#: A check: the raw value and its path in, the normalized value (or INVALID, reported) out.
Check = Callable[[Any, Path], Any]


class Reader:
    """Walks raw values, recording problems; each check returns the normalized value or :data:`INVALID`."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    # -- recording ----------------------------------------------------------------
    def report(self, check_id: str, path: Path, detail: str, hint: str | None = None) -> None:
        self.problems.append(Problem(check_id, CHECKS[check_id].level, path, detail, hint))

    def invalid(self, path: Path, detail: str, hint: str | None = None) -> Any:
        self.report(E_INVALID, path, detail, hint)
        return INVALID

    def keys(self, raw: Mapping[Any, Any], path: Path, allowed: Collection[str], unused: Mapping[str, str] | None = None) -> None:
        """Report unknown keys (E002, with a did-you-mean) and known-but-unused ones (W003)."""
        unused = unused or {}
        for key in raw:
            if key in allowed:
                continue
            if key in unused:
                self.report(W_IGNORED, (*path, key), f"has no effect {unused[key]}.", "Remove it.")
                continue
            shown = key if isinstance(key, str) else repr(key)
            self.report(
                E_UNKNOWN_KEY,
                (*path, shown),
                f"is not a known key{suggest(key, [*allowed, *unused])}",
                f"Known keys here: {', '.join(sorted(allowed))}.",
            )

    def mapping(self, value: Any, path: Path) -> Mapping[Any, Any] | None:
        if isinstance(value, Mapping):
            return value
        self.invalid(path, f"must be a dict, got {type_name(value)}.")
        return None

    # -- typed readers: return the normalized value, or the default if absent/invalid ----
    def read(self, raw: Mapping[Any, Any], key: str, path: Path, check: Callable[[Any, Path], Any], default: Any = None) -> Any:
        if key not in raw:
            return default
        value = check(raw[key], (*path, key))
        return default if value is INVALID else value

    def required(self, raw: Mapping[Any, Any], key: str, path: Path, check: Callable[[Any, Path], Any], what: str = "") -> Any:
        if key not in raw:
            self.report(E_REQUIRED, (*path, key), f"is required{what}.")
            return INVALID
        return check(raw[key], (*path, key))

    def string(self, value: Any, path: Path, *, secret: bool = False) -> Any:
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, str):
            return self.invalid(path, "must not be empty.")
        what = "a non-empty string" + (" (the value is not shown because it may be secret)" if secret else "")
        return self.invalid(path, f"must be {what}, got {type_name(value)}.")

    def secret(self, value: Any, path: Path) -> Any:
        return self.string(value, path, secret=True)

    def optional_string(self, value: Any, path: Path) -> Any:
        return None if value is None else self.string(value, path)

    def url(self, value: Any, path: Path) -> Any:
        if is_http_url(value):
            return value
        if not isinstance(value, str):
            return self.invalid(path, f"must be a URL string starting with http:// or https://, got {type_name(value)}.")
        return self.invalid(path, "must be an absolute URL starting with http:// or https://.", "For example https://api.example.com.")

    def boolean(self, value: Any, path: Path) -> Any:
        if isinstance(value, bool):
            return value
        return self.invalid(path, f"must be True or False, got {type_name(value)}.")

    def integer(self, value: Any, path: Path, minimum: int = 0) -> Any:
        if is_int(value) and value >= minimum:
            return value
        return self.invalid(path, f"must be an integer >= {minimum}, got {self._shown_number(value)}.")

    def positive_int(self, value: Any, path: Path) -> Any:
        return self.integer(value, path, 1)

    def number(self, value: Any, path: Path, *, positive: bool = True, minimum: float | None = None) -> Any:
        """A float of seconds or units; ``timedelta`` is accepted and converted to seconds."""
        if isinstance(value, timedelta):
            value = value.total_seconds()
        if is_number(value):
            value = float(value)
            if minimum is not None and value >= minimum:
                return value
            if minimum is None and (value > 0 if positive else value >= 0):
                return value
        bound = f">= {minimum:g}" if minimum is not None else ("> 0" if positive else ">= 0")
        return self.invalid(path, f"must be a number {bound} (seconds may also be a timedelta), got {self._shown_number(value)}.")

    def non_negative(self, value: Any, path: Path) -> Any:
        return self.number(value, path, positive=False)

    def optional_number(self, value: Any, path: Path) -> Any:
        return None if value is None else self.number(value, path)

    @staticmethod
    def _shown_number(value: Any) -> str:
        # Numbers are safe to show and help; anything else is described by type only.
        return repr(value) if is_number(value) or isinstance(value, (int, float)) else type_name(value)

    def timeout(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) == 2 and all(is_number(v) and v > 0 for v in value):
                return (float(value[0]), float(value[1]))
            return self.invalid(path, "must be a number > 0 or a (connect, read) pair of numbers > 0.")
        return self.number(value, path)

    def str_map(self, value: Any, path: Path) -> Any:
        """A dict of str to str (HEADERS, PROXIES, EXTRA_PARAMS); values are never shown."""
        return self._typed_map(value, path, (str,), "a string")

    def header_map(self, value: Any, path: Path) -> Any:
        """HEADERS: a str to str dict whose names are HTTP tokens and whose values hold no line break or NUL.

        Caught here (E040) because ``requests`` would otherwise refuse the header on every
        call at run time, or worse, a line break would let a value inject a second header.
        """
        mapping = self.str_map(value, path)
        if mapping is INVALID:
            return mapping
        before = len(self.problems)
        for key, item in mapping.items():
            if not HEADER_NAME.fullmatch(key):
                self.report(E_HEADER_VALUE, (*path, key), "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only).")
            elif any(char in item for char in "\r\n\0"):
                self.report(E_HEADER_VALUE, (*path, key), "contains a line break or NUL; a header value must be a single line.")
        return mapping if len(self.problems) == before else INVALID

    def existing_path(self, value: Any, path: Path) -> None:
        """E041 for a CA bundle or certificate path that is not there (a typo would fail every call)."""
        if isinstance(value, str) and not os.path.exists(value):
            self.report(E_PATH_MISSING, path, f"names {value!r}, which does not exist on this machine.")

    def scalar_map(self, value: Any, path: Path) -> Any:
        """A dict of str to str/number/bool (form DATA, query PARAMS); values are never shown."""
        return self._typed_map(value, path, (str, int, float, bool), "a string, number or bool")

    def _typed_map(self, value: Any, path: Path, types: tuple[type, ...], what: str) -> Any:
        mapping = self.mapping(value, path)
        if mapping is None:
            return INVALID
        before = len(self.problems)
        for key, item in mapping.items():
            if not isinstance(key, str) or not key:
                self.invalid(path, f"keys must be non-empty strings, got {type_name(key)}.")
            elif not isinstance(item, types):
                self.invalid((*path, key), f"must be {what}, got {type_name(item)}.")
        return MappingProxyType(dict(mapping)) if len(self.problems) == before else INVALID

    def str_list(self, value: Any, path: Path) -> Any:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return self.invalid(path, f"must be a list of strings, got {type_name(value)}.")
        before = len(self.problems)
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.invalid((*path, index), f"must be a non-empty string, got {type_name(item)}.")
        return tuple(value) if len(self.problems) == before else INVALID

    def optional(self, check: Callable[[Any, Path], Any]) -> Callable[[Any, Path], Any]:
        """``check`` that lets ``None`` through (a key set to None means "not configured")."""
        return lambda value, path: None if value is None else check(value, path)

    def dict_value(self, value: Any, path: Path) -> Any:
        mapping = self.mapping(value, path)
        return INVALID if mapping is None else mapping

    def choice(self, value: Any, path: Path, choices: Iterable[str], *, case: Callable[[str], str] = str.lower) -> Any:
        """One of a closed vocabulary, matched case-insensitively; the value is safe to quote."""
        choices = tuple(choices)
        if isinstance(value, str) and case(value) in choices:
            return case(value)
        shown = f'"{value}"' if isinstance(value, str) else type_name(value)
        return self.invalid(path, f"must be one of {choices_text(choices)}, got {shown}{suggest(value, choices)}")

    def name(self, value: Any, path: Path, what: str) -> bool:
        """Client and pipeline names end up in cache keys; step names in ``{step}`` placeholders."""
        pattern, rule = NAME_RULES[what]
        if isinstance(value, str) and pattern.match(value):
            return True
        shown = f'"{value}"' if isinstance(value, str) else type_name(value)
        self.report(E_NAME, path, f"has an unusable {what} {shown}.", rule)
        return False

    def importable(self, value: Any, path: Path, kind_check: Callable[[Any], str | None]) -> Any:
        """Import a dotted path (E013 if it fails); ``kind_check`` returns why the object is wrong (E014)."""
        from django.utils.module_loading import import_string

        if not isinstance(value, str) or "." not in value:
            return self.invalid(
                path, f"must be a dotted import path string, got {type_name(value) if not isinstance(value, str) else repr(value)}."
            )
        try:
            obj = import_string(value)
        except Exception as exc:  # ImportError, or whatever the module raised while importing
            self.report(
                E_IMPORT,
                path,
                f'cannot import "{value}": {type(exc).__name__}: {exc}',
                "Check the dotted path and that the module imports.",
            )
            return INVALID
        wrong = kind_check(obj)
        if wrong:
            self.report(E_IMPORT_KIND, path, f'imports "{value}", which {wrong}.')
            return INVALID
        return value

    def field(self, raw: Mapping[Any, Any], path: Path, spec: type, name: str, check: Check) -> Any:
        """Field ``name`` of ``spec``, read from its setting key; absent or invalid: the field's default."""
        return self.read(raw, name.upper(), path, check, default_of(spec, name))

    def refresh_ahead_warning(self, path: Path, refresh_ahead: float, lifetime: float) -> None:
        self.report(
            W_REFRESH_AHEAD,
            path,
            f"is {lifetime:g}s, not longer than REFRESH_AHEAD ({refresh_ahead:g}s): the token would be due for refresh "
            "as soon as it is fetched, so every use would fetch a new one.",
            "Lower REFRESH_AHEAD or raise the lifetime.",
        )

    def plain_http(self, url: Any, path: Path, what: str) -> None:
        if isinstance(url, str) and url.startswith("http://") and not is_loopback(url):
            self.report(W_PLAIN_HTTP, path, f"uses plain http://, so {what} would cross the network unencrypted.", "Use https://.")
