"""Placeholders like ``"Bearer {app_token}"`` in a fetcher's request values.

They let a pipeline step send an earlier step's token in a header, body or query
value declaratively (settings, admin) instead of by subclassing. Templates are
compiled when the fetcher is built, so a typo (a placeholder naming no step in
``depends_on``) fails at start-up with the step and placeholder named, not at 3 a.m.
on the first token refresh.

Syntax (a subset of :meth:`str.format`, checked, no attribute walking):

* ``{step}`` is that step's ``access_token``;
* ``{step.token_type}``, ``{step.refresh_token}``, ``{step.scope}``,
  ``{step.authorization_header}`` (and ``{step.access_token}``) pick a field;
* ``{{`` and ``}}`` are literal braces; format specs and conversions are rejected.

Only string *values* are templates (mapping keys are not); nested JSON is walked.

A rendered template is a :class:`~requestforge_django.http.secrets.Secret`: it holds an
earlier step's token, so it prints masked wherever it sits (frame locals on Django's
error page, a ``repr``) and is revealed only where the wire request is built. A
:class:`Secret` given as a value may hold placeholders too; its template keeps the
secret masked in ``repr`` and in error messages.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..http.secrets import MASK, Secret
from .interfaces import FetchContext

FIELDS = frozenset({"access_token", "token_type", "refresh_token", "scope", "authorization_header"})
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class _Placeholder:
    step: str
    field: str


@dataclass(frozen=True, repr=False)
class Template:
    """A compiled template string: literal text and placeholders, in order.

    ``source`` is the text as written, or ``"****"`` when the template came from a
    :class:`Secret` (then its literal parts are secret too, and never shown).
    """

    parts: tuple[str | _Placeholder, ...]
    source: str
    secret: bool = False

    @property
    def steps(self) -> frozenset[str]:
        return frozenset(p.step for p in self.parts if isinstance(p, _Placeholder))

    def render(self, context: FetchContext, *, owner: str) -> Secret:
        """The filled-in value, as a :class:`Secret` (it holds an earlier step's token)."""
        # One expression: no local ever holds the plain token text.
        return Secret("".join(part if isinstance(part, str) else self._fill(part, context, owner) for part in self.parts))

    def _fill(self, part: _Placeholder, context: FetchContext, owner: str) -> str:
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
    is returned, with them a secret :class:`Template`.
    """
    if isinstance(text, Secret):
        compiled = compile_template(text.reveal(), owner=owner, allowed=allowed, where=where)
        if isinstance(compiled, Template):
            return Template(compiled.parts, MASK, secret=True)
        return Secret(compiled)
    allowed = tuple(allowed)
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ValueError(f"step {owner!r}: invalid template in {where} ({exc}); write literal braces as '{{{{' and '}}}}'") from None
    parts: list[str | _Placeholder] = []
    for literal, name, spec, conversion in parsed:
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"step {owner!r}: placeholder {{{name}}} in {where} may not use format specs or conversions")
        step, _, field = name.partition(".")
        field = field or "access_token"
        if not step or "[" in name:
            raise ValueError(f"step {owner!r}: placeholder {{{name}}} in {where} must name a step, e.g. {{app_token}}")
        if step not in allowed:
            deps = ", ".join(repr(d) for d in allowed) or "none"
            raise ValueError(f"step {owner!r}: placeholder {{{name}}} in {where} names {step!r}, which is not in depends_on ({deps})")
        if field not in FIELDS:
            raise ValueError(f"step {owner!r}: placeholder {{{name}}} in {where}: unknown field {field!r} (use one of {sorted(FIELDS)})")
        parts.append(_Placeholder(step, field))
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)  # type: ignore[arg-type]
    return Template(tuple(parts), text)


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


def referenced_steps(compiled: Any) -> frozenset[str]:
    """The steps whose tokens a compiled value uses."""
    if isinstance(compiled, Template):
        return compiled.steps
    if isinstance(compiled, dict):
        return frozenset().union(*(referenced_steps(v) for v in compiled.values())) if compiled else frozenset()
    if isinstance(compiled, (list, tuple)):
        return frozenset().union(*(referenced_steps(v) for v in compiled)) if compiled else frozenset()
    return frozenset()
