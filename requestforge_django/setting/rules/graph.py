"""The dependency graph of a pipeline's steps: DEPENDS_ON (unknown, out of order, cyclic) and ``{step}`` placeholders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...http.secrets import Secret
from ...tokens.templates import Placeholder as TemplatePlaceholder
from ...tokens.templates import TemplateSyntaxError, parse_template
from ..ids import E_DEPENDS_CYCLE, E_DEPENDS_ORDER, E_DEPENDS_UNKNOWN, E_TEMPLATE
from ..keys import TEMPLATED_STEP_KEYS
from ..problems import Path, choices_text, suggest
from ..readers import Reader

__all__ = ["FoundPlaceholder", "GraphRules", "placeholders"]


@dataclass(frozen=True)
class FoundPlaceholder:
    """One ``{...}`` found in a template value: its step, or why it is malformed."""

    path: Path
    step: str | None
    error: str | None = None


def placeholders(value: Any, path: Path) -> Iterator[FoundPlaceholder]:
    """Every placeholder in the strings (and :class:`Secret` values) inside ``value``.

    Parsed by ``tokens.templates.parse_template``, the parser the fetchers use, so the
    checks accept exactly the templates that render; a syntax error carries that
    parser's text, which quotes a placeholder only when it is ``{step}`` or
    ``{step.field}`` (and nothing of a :class:`Secret`), so a brace-wrapped value that
    is not a placeholder (possibly a secret) is never echoed.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from placeholders(item, (*path, str(key)))
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from placeholders(item, (*path, index))
        return
    secret = isinstance(value, Secret)
    if not isinstance(value, str) and not secret:
        return
    try:
        parts = parse_template(value.reveal() if secret else value, secret=secret)
    except TemplateSyntaxError as exc:
        yield FoundPlaceholder(path, None, exc.detail)
        return
    for part in parts:
        if isinstance(part, TemplatePlaceholder):
            yield FoundPlaceholder(path, part.step)


class GraphRules(Reader):
    """The steps of one pipeline as a graph."""

    def dependencies(self, raw_steps: list[Any], path: Path, names: list[Any]) -> None:
        """DEPENDS_ON and ``{step}`` placeholders: unknown (E023), out of order (E024), cyclic (E025), undeclared (E026)."""
        index_of: dict[str, int] = {}
        for index, name in enumerate(names):
            if isinstance(name, str):
                index_of.setdefault(name, index)
        depends: dict[int, list[str]] = {}
        for index, raw_step in enumerate(raw_steps):
            value = raw_step.get("DEPENDS_ON") if isinstance(raw_step, Mapping) else None
            if isinstance(value, (list, tuple)):
                depends[index] = [d for d in value if isinstance(d, str)]

        def reaches(start: int, goal: int) -> list[int] | None:
            """A chain of steps from ``start`` to ``goal`` along DEPENDS_ON, if one exists."""
            stack: list[tuple[int, list[int]]] = [(start, [start])]
            visited: set[int] = set()
            while stack:
                node, chain = stack.pop()
                if node == goal:
                    return chain
                if node in visited:
                    continue
                visited.add(node)
                for dep in depends.get(node, []):
                    if dep in index_of:
                        stack.append((index_of[dep], [*chain, index_of[dep]]))
            return None

        reported_cycles: set[frozenset[int]] = set()
        for index, deps in depends.items():
            own = names[index]
            dep_path: Path = (*path, index, "DEPENDS_ON")
            for position, dep in enumerate(deps):
                if dep not in index_of:
                    self.report(
                        E_DEPENDS_UNKNOWN,
                        (*dep_path, position),
                        f'names step "{dep}", which is not a step of this pipeline{suggest(dep, index_of)}',
                        f"Steps: {choices_text(index_of)}.",
                    )
                    continue
                target = index_of[dep]
                if target < index:
                    continue
                chain = [index] if target == index else reaches(target, index)
                if chain is not None:
                    cycle = frozenset(chain)
                    if cycle in reported_cycles:
                        continue
                    reported_cycles.add(cycle)
                    loop = " -> ".join(str(names[i]) for i in [index, *chain])
                    self.report(
                        E_DEPENDS_CYCLE,
                        (*dep_path, position),
                        f"makes a dependency cycle ({loop}); no step of it could ever run first.",
                        "Remove one DEPENDS_ON entry from the cycle.",
                    )
                else:
                    self.report(
                        E_DEPENDS_ORDER,
                        (*dep_path, position),
                        f'names step "{dep}", which comes after step "{own}"; steps run in list order.',
                        f'Move "{dep}" before "{own}" in STEPS.',
                    )

        for index, raw_step in enumerate(raw_steps):
            if not isinstance(raw_step, Mapping):
                continue
            declared = set(depends.get(index, []))
            url = raw_step.get("URL")
            if isinstance(url, str) and any(p.step for p in placeholders(url, ())):
                self.report(
                    E_TEMPLATE,
                    (*path, index, "URL"),
                    "contains a {step} placeholder, but URL is not a template; tokens go in HEADERS, DATA, JSON or PARAMS.",
                )
            for key in TEMPLATED_STEP_KEYS:
                if key not in raw_step:
                    continue
                for found in placeholders(raw_step[key], (*path, index, key)):
                    ref = found.step
                    if ref is None:
                        self.report(E_TEMPLATE, found.path, found.error or "contains an invalid placeholder.")
                        continue
                    if ref in declared:
                        continue
                    if ref == names[index]:
                        detail = f'uses the placeholder "{{{ref}}}", which is this step itself; a step can only use earlier tokens.'
                        hint = "Placeholders name steps listed in DEPENDS_ON; write {{ and }} for literal braces."
                    elif ref in index_of:
                        detail = f'uses the placeholder "{{{ref}}}" but "{ref}" is not in this step\'s DEPENDS_ON.'
                        hint = f'Add "{ref}" to DEPENDS_ON (it must be an earlier step).'
                    else:
                        detail = f'uses the placeholder "{{{ref}}}", which names no step of this pipeline{suggest(ref, index_of)}'
                        hint = "Placeholders name steps listed in DEPENDS_ON; write {{ and }} for literal braces."
                    self.report(E_TEMPLATE, found.path, detail, hint)
