"""Placeholders like ``"Bearer {app_token}"`` in a fetcher's request values.

They let a pipeline step send an earlier step's token in a header, body or query
value declaratively (settings, admin) instead of by subclassing. Templates are
compiled when the fetcher is built, so a typo (a placeholder naming no step in
``depends_on``) fails at start-up with the step and placeholder named, not at 3 a.m.
on the first token refresh.

Syntax, parsed by :func:`parse_template` (the one parser: ``manage.py check`` uses it
too, so a template the checks accept is one the fetchers render and vice versa):

* ``{step}`` is that step's ``access_token``; ``step`` is a step name (a letter or ``_``,
  then letters, digits or ``_``);
* ``{step.token_type}``, ``{step.refresh_token}``, ``{step.scope}``,
  ``{step.authorization_header}`` (and ``{step.access_token}``) pick a field;
* ``{{`` and ``}}`` are literal braces;
* anything else between braces (spaces, ``{}``, ``{0}``, format specs ``{a:>10}``,
  conversions ``{a!r}``, indexing ``{a[0]}``, ``{a.b.c}``, an unknown field), a ``{``
  that is not closed and a ``}`` that closes nothing are errors
  (:class:`TemplateSyntaxError`).

Only string *values* are templates (mapping keys are not); nested JSON is walked.

A rendered template is a :class:`~requestforge_django.http.secrets.Secret`: it holds an
earlier step's token, so it prints masked wherever it sits (frame locals on Django's
error page, a ``repr``) and is revealed only where the wire request is built. A
:class:`Secret` given as a value may hold placeholders too; its template keeps the
secret masked in ``repr`` and in error messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..http.secrets import MASK, Secret
from .interfaces import FetchContext

FIELDS = frozenset({"access_token", "token_type", "refresh_token", "scope", "authorization_header"})

#: What may stand between braces: ``step`` or ``step.field`` (step names follow the same rule).
_PLACEHOLDER = re.compile(r"([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")
_ESCAPE_HINT = "(write literal braces as {{ and }})"


class TemplateSyntaxError(ValueError):
    """A string that is not a valid template; ``detail`` says why without quoting anything but a placeholder name."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Placeholder:
    """``{step}`` or ``{step.field}`` (``field`` is ``"access_token"`` when not written)."""

    step: str
    field: str = "access_token"


def parse_template(text: str, *, secret: bool = False) -> tuple[str | Placeholder, ...]:
    """``text`` as literal parts (``{{``/``}}`` unescaped) and :class:`Placeholder` values, in order.

    Raises :class:`TemplateSyntaxError` for anything the module doc does not allow. With
    ``secret`` (the text came from a :class:`Secret`) the error quotes nothing of it.
    """
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char not in "{}":
            literal.append(char)
            index += 1
            continue
        if text.startswith(char * 2, index):
            literal.append(char)
            index += 2
            continue
        if char == "}":
            raise TemplateSyntaxError(f"is not a valid template: a '}}' closes no placeholder {_ESCAPE_HINT}.")
        close = text.find("}", index + 1)
        if close < 0 or "{" in text[index + 1 : close]:
            raise TemplateSyntaxError(f"is not a valid template: a brace is not closed {_ESCAPE_HINT}.")
        found = _PLACEHOLDER.fullmatch(text, index + 1, close)
        if found is None:
            raise TemplateSyntaxError(f"contains a placeholder that is not {{step}} or {{step.field}} {_ESCAPE_HINT}.")
        step, field = found.group(1), found.group(2)
        if field is not None and field not in FIELDS:
            shown = "a placeholder" if secret else f'"{{{step}.{field}}}"'
            raise TemplateSyntaxError(
                f"contains {shown}: {'its field' if secret else repr(field)} is not a token field (use one of {', '.join(sorted(FIELDS))})."
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Placeholder(step, field or "access_token"))
        index = close + 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def placeholder_text(placeholder: Placeholder) -> str:
    """How ``placeholder`` is written (``{step}`` or ``{step.field}``), for messages."""
    return f"{{{placeholder.step}}}" if placeholder.field == "access_token" else f"{{{placeholder.step}.{placeholder.field}}}"


@dataclass(frozen=True, repr=False)
class Template:
    """A compiled template string: literal text and placeholders, in order.

    ``source`` is the text as written, or ``"****"`` when the template came from a
    :class:`Secret` (then its literal parts are secret too, and never shown).
    """

    parts: tuple[str | Placeholder, ...]
    source: str
    secret: bool = False

    @property
    def steps(self) -> frozenset[str]:
        return frozenset(p.step for p in self.parts if isinstance(p, Placeholder))

    def render(self, context: FetchContext, *, owner: str) -> Secret:
        """The filled-in value, as a :class:`Secret` (it holds an earlier step's token)."""
        # One expression: no local ever holds the plain token text.
        return Secret("".join(part if isinstance(part, str) else self._fill(part, context, owner) for part in self.parts))

    def _fill(self, part: Placeholder, context: FetchContext, owner: str) -> str:
        token = context.get_token(part.step)
        if token is None:
            raise ValueError(f"step {owner!r}: no token of step {part.step!r} available for placeholder in {self.source!r}")
        if getattr(token, part.field) is None:
            raise ValueError(f"step {owner!r}: the token of step {part.step!r} has no {part.field}")
        return str(getattr(token, part.field))

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def compile_template(text: str | Secret, *, owner: str, allowed: Iterable[str], where: str) -> Template | str | Secret:
    """Compile ``text``; a string without placeholders is returned with ``{{``/``}}`` unescaped.

    A :class:`Secret` stays one: without placeholders the (unescaped) :class:`Secret`
    is returned, with them a secret :class:`Template`; errors about it quote nothing of it.
    Errors are :class:`ValueError` naming the step (``owner``) and ``where``; a syntax
    error carries the same text as ``manage.py check`` shows (:class:`TemplateSyntaxError`).
    """
    if isinstance(text, Secret):
        parts = _checked_parts(text.reveal(), owner=owner, allowed=tuple(allowed), where=where, secret=True)
        if all(isinstance(p, str) for p in parts):
            return Secret("".join(parts))  # type: ignore[arg-type]
        return Template(parts, MASK, secret=True)
    parts = _checked_parts(text, owner=owner, allowed=tuple(allowed), where=where, secret=False)
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)  # type: ignore[arg-type]
    return Template(parts, text)


def _checked_parts(text: str, *, owner: str, allowed: tuple[str, ...], where: str, secret: bool) -> tuple[str | Placeholder, ...]:
    """:func:`parse_template`, plus: every placeholder names a step in ``allowed`` (``depends_on``)."""
    try:
        parts = parse_template(text, secret=secret)
    except TemplateSyntaxError as exc:
        raise ValueError(f"step {owner!r}: {where} {exc.detail}") from None
    for part in parts:
        if isinstance(part, Placeholder) and part.step not in allowed:
            deps = ", ".join(repr(d) for d in allowed) or "none"
            shown = "a placeholder" if secret else f"placeholder {placeholder_text(part)}"
            named = "a step" if secret else repr(part.step)
            raise ValueError(f"step {owner!r}: {shown} in {where} names {named}, which is not in depends_on ({deps})")
    return parts


def compile_value(value: Any, *, owner: str, allowed: Iterable[str], where: str) -> Any:
    """Compile every string (and :class:`Secret`) inside ``value`` (a string, mapping or list, nested)."""
    allowed = tuple(allowed)
    if isinstance(value, (str, Secret)):
        return compile_template(value, owner=owner, allowed=allowed, where=where)
    if isinstance(value, Mapping):
        return {k: compile_value(v, owner=owner, allowed=allowed, where=f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [compile_value(v, owner=owner, allowed=allowed, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items  # form pairs stay tuples
    return value


def render_value(compiled: Any, context: FetchContext, *, owner: str) -> Any:
    """Fill the templates in a compiled value from ``context``; returns fresh containers.

    Filled templates are :class:`Secret` values; reveal them only where the wire request is built.
    """
    if isinstance(compiled, Template):
        return compiled.render(context, owner=owner)
    if isinstance(compiled, dict):
        return {k: render_value(v, context, owner=owner) for k, v in compiled.items()}
    if isinstance(compiled, (list, tuple)):
        items = [render_value(v, context, owner=owner) for v in compiled]
        return tuple(items) if isinstance(compiled, tuple) else items
    return compiled
