"""Rules of a ``PIPELINES`` entry and its ``STEPS``: names, FETCHER, request fields, TOKEN_TYPE, TTL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...tokens.data import token_type_problem
from ..ids import E_CONFLICT, E_FETCHER, E_REFRESH_STEP, E_STEP_DUPLICATE, E_TOKEN_TYPE
from ..keys import PIPELINE_KEYS, STEP_KEYS, STEP_UNUSED
from ..predicates import HTTP_METHODS, type_name
from ..problems import Path, choices_text, suggest
from ..readers import INVALID
from ..specs import BUILTIN_FETCHERS, PipelineSpec, SettingsSpec, StepSpec, default_of, freeze
from .graph import GraphRules

__all__ = ["PipelineRules", "fetcher_kind"]


class PipelineRules(GraphRules):
    """``PIPELINES[name]``; the graph of its steps is :class:`GraphRules`'."""

    def pipeline(self, name: Any, raw: Any, *, refresh_ahead: float = default_of(SettingsSpec, "refresh_ahead")) -> PipelineSpec | None:
        path: Path = ("PIPELINES", name if isinstance(name, str) else repr(name))
        self.name(name, path, "pipeline name")
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, path, PIPELINE_KEYS)
        raw_steps = self.required(raw, "STEPS", path, self.step_list, ": a list of step dicts")
        raw_steps = [] if raw_steps is INVALID else raw_steps
        steps_path: Path = (*path, "STEPS")
        steps: list[StepSpec] = []
        names: list[Any] = [s.get("NAME") if isinstance(s, Mapping) else None for s in raw_steps]
        seen: dict[str, int] = {}
        for index, raw_step in enumerate(raw_steps):
            step_path: Path = (*steps_path, index)
            step_name = names[index]
            if isinstance(step_name, str):
                if step_name in seen:
                    self.report(
                        E_STEP_DUPLICATE,
                        (*step_path, "NAME"),
                        f'is "{step_name}", already the NAME of step {seen[step_name]}; step names must be unique.',
                    )
                else:
                    seen[step_name] = index
            step = self.step(raw_step, step_path, refresh_ahead=refresh_ahead)
            if step is not None:
                steps.append(step)
        self.dependencies(raw_steps, steps_path, names)
        refresh_from = self.field(raw, path, PipelineSpec, "refresh_from_step", self.optional_string)
        if refresh_from is not None and refresh_from not in seen:
            self.report(
                E_REFRESH_STEP,
                (*path, "REFRESH_FROM_STEP"),
                f'names step "{refresh_from}", which is not a step of this pipeline{suggest(refresh_from, seen)}',
                f"Steps: {choices_text(seen) or '(none)'}.",
            )
        return PipelineSpec(name=name if isinstance(name, str) else repr(name), steps=tuple(steps), refresh_from_step=refresh_from)

    def step_list(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)) and value:
            return list(value)
        if isinstance(value, (list, tuple)):
            return self.invalid(path, "must not be empty: a pipeline needs at least one step.")
        return self.invalid(path, f"must be a non-empty list of step dicts, got {type_name(value)}.")

    def step(self, raw: Any, path: Path, *, refresh_ahead: float) -> StepSpec | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        name = self.required(raw, "NAME", path, lambda v, p: v if self.name(v, p, "step name") else INVALID)
        fetcher = self.read(raw, "FETCHER", path, self.fetcher, None) if "FETCHER" in raw else "body"
        unused = {key: f'with FETCHER "{fetcher}"' for key in STEP_UNUSED.get(fetcher or "", ())}
        self.keys(raw, path, [k for k in STEP_KEYS if k not in unused], unused)
        url = self.required(raw, "URL", path, self.url)
        self.plain_http(url, (*path, "URL"), "the step's request and token")
        token_header = None
        if fetcher == "header":
            token_header = self.required(
                raw, "TOKEN_HEADER", path, self.string, ' for FETCHER "header": the response header holding the token'
            )
        data = self.field(raw, path, StepSpec, "data", self.optional(self.body_data))
        json_body = self.field(raw, path, StepSpec, "json", self.json_body)
        if data is not None and json_body is not None:
            self.report(
                E_CONFLICT, (*path, "JSON"), "is set together with DATA; a request has one body.", "Send a form (DATA) or JSON, not both."
            )
        ttl = self.field(raw, path, StepSpec, "ttl", self.optional_number)
        if ttl is not None and refresh_ahead >= ttl:
            self.refresh_ahead_warning((*path, "TTL"), refresh_ahead, ttl)
        return StepSpec(
            name=name if isinstance(name, str) else "",
            fetcher=fetcher or "body",
            url=url if isinstance(url, str) else "",
            method=self.field(raw, path, StepSpec, "method", lambda v, p: self.choice(v, p, HTTP_METHODS, case=str.upper)),
            headers=self.field(raw, path, StepSpec, "headers", self.header_map),
            data=data,
            json=json_body,
            params=self.field(raw, path, StepSpec, "params", self.scalar_map),
            token_header=None if token_header is INVALID else token_header,
            token_field=self.field(raw, path, StepSpec, "token_field", self.string),
            token_type=self.field(raw, path, StepSpec, "token_type", self.token_type),
            expires_in_field=self.field(raw, path, StepSpec, "expires_in_field", self.string),
            refresh_token_field=self.field(raw, path, StepSpec, "refresh_token_field", self.optional_string),
            ttl=ttl,
            depends_on=self.field(raw, path, StepSpec, "depends_on", self.str_list),
            timeout=self.field(raw, path, StepSpec, "timeout", self.optional_number),
            options=self.field(raw, path, StepSpec, "options", self.options),
        )

    def fetcher(self, value: Any, path: Path) -> Any:
        if isinstance(value, str) and value.lower() in BUILTIN_FETCHERS:
            return value.lower()
        if isinstance(value, str) and "." in value:
            return self.importable(value, path, fetcher_kind)
        shown = f'"{value}"' if isinstance(value, str) else type_name(value)
        self.report(
            E_FETCHER,
            path,
            f"is {shown}, not a known fetcher{suggest(value, BUILTIN_FETCHERS)}",
            f"Use {choices_text(BUILTIN_FETCHERS)} or the dotted path of a TokenFetcherInterface subclass.",
        )
        return INVALID

    def body_data(self, value: Any, path: Path) -> Any:
        """Form DATA: a dict of scalars, or an already-encoded string body."""
        return value if isinstance(value, str) else self.scalar_map(value, path)

    def json_body(self, value: Any, path: Path) -> Any:
        if value is None:
            return None
        if isinstance(value, (Mapping, list, tuple)):
            return freeze(value)
        return self.invalid(path, f"must be a dict or list (the JSON body), got {type_name(value)}.")

    def options(self, value: Any, path: Path) -> Any:
        mapping = self.mapping(value, path)
        if mapping is None:
            return INVALID
        if not all(isinstance(k, str) and k.isidentifier() for k in mapping):
            return self.invalid(path, "keys must be keyword-argument names of the fetcher class.")
        return freeze(mapping)

    def token_type(self, value: Any, path: Path) -> Any:
        """A step's TOKEN_TYPE: one word of visible ASCII (E047)."""
        text = self.string(value, path)
        if isinstance(text, str):
            problem = token_type_problem(text)
            if problem:
                self.report(E_TOKEN_TYPE, path, f"{problem}; it goes in front of the token in a header.", 'Use one word such as "Bearer".')
                return INVALID
        return text


def fetcher_kind(obj: Any) -> str | None:
    from ...tokens import TokenFetcherInterface

    if not isinstance(obj, type):
        return "is not a class"
    if not issubclass(obj, TokenFetcherInterface):
        return "is not a TokenFetcherInterface subclass"
    return None
