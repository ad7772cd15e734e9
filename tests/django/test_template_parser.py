"""One ``{step}`` template parser for ``manage.py check`` and the fetchers.

The checks (``validation._placeholders``) and the runtime (``tokens.templates``) used
to parse templates separately and disagreed (``{device.}`` and ``{device:}`` rendered at
runtime though one of them was an error in the checks). Both now use
``tokens.templates.parse_template``. The table below goes through both: every template
the checks accept renders to the expected value, and every one they reject fails at
fetcher construction with the same text.
"""

from __future__ import annotations

from typing import Any

import pytest

from requestforge_django.http.secrets import Secret, reveal
from requestforge_django.setting.validate import validate_pipeline
from requestforge_django.tokens.data import TokenData
from requestforge_django.tokens.fetchers import BodyTokenFetcher
from requestforge_django.tokens.interfaces import FetchContext
from requestforge_django.tokens.templates import Placeholder, TemplateSyntaxError, parse_template

DEVICE = TokenData(access_token="dev-tok", token_type="Device", refresh_token="dev-rt", scope="s1 s2")

#: ``(template, what it renders to)`` for templates both sides accept.
ACCEPTED: list[tuple[str, str]] = [
    ("plain", "plain"),
    ("{device}", "dev-tok"),
    ("Bearer {device}", "Bearer dev-tok"),
    ("{device.access_token}", "dev-tok"),
    ("{device.token_type}", "Device"),
    ("{device.refresh_token}", "dev-rt"),
    ("{device.scope}", "s1 s2"),
    ("{device.authorization_header}", "Device dev-tok"),
    ("a{device}b{device.token_type}c", "adev-tokbDevicec"),
    ("{{literal}}", "{literal}"),
    ("{{device}}", "{device}"),
    ("{{{device}}}", "{dev-tok}"),
    ("}}{{", "}{"),
    ('{{"json": 1}}', '{"json": 1}'),
]

#: ``(template, a fragment of the one error text both sides give)`` for malformed templates.
MALFORMED: list[tuple[str, str]] = [
    ("{device", "a brace is not closed"),
    ("x {", "a brace is not closed"),
    ("{a{device}}", "a brace is not closed"),
    ("device}", "closes no placeholder"),
    ("{device}}", "closes no placeholder"),
    ("{{device}", "closes no placeholder"),
    ("{}", "not {step} or {step.field}"),
    ("{0}", "not {step} or {step.field}"),
    ("{ device }", "not {step} or {step.field}"),
    ("{device:>10}", "not {step} or {step.field}"),
    ("{device:}", "not {step} or {step.field}"),
    ("{device!r}", "not {step} or {step.field}"),
    ("{device.}", "not {step} or {step.field}"),
    ("{device[0]}", "not {step} or {step.field}"),
    ("{device.token_type.x}", "not {step} or {step.field}"),
    ("{SUPER-SECRET-VALUE}", "not {step} or {step.field}"),
    ("{device.password}", "'password' is not a token field"),
    ("{device.__class__}", "'__class__' is not a token field"),
]

#: ``(template, the step it names)`` for well-formed placeholders naming a step outside DEPENDS_ON.
UNDECLARED: list[tuple[str, str]] = [
    ("{app}", "app"),  # the step itself
    ("{nostep}", "nostep"),  # no such step
    ("x {device} {other.scope}", "other"),
]


def pipeline(value: Any, where: str) -> dict[str, Any]:
    step: dict[str, Any] = {"NAME": "app", "URL": "https://a.example.com/t", "DEPENDS_ON": ["device"]}
    step[where] = {"X-Value": value} if where == "HEADERS" else {"nested": [value]}
    return {"STEPS": [{"NAME": "device", "URL": "https://a.example.com/d"}, step]}


def check_problems(value: Any, where: str) -> list[str]:
    """The E026 details the checks report for ``value`` in ``where``."""
    return [p.detail for p in validate_pipeline("partner", pipeline(value, where)) if p.id == "requestforge.E026"]


def runtime(value: Any, where: str) -> BodyTokenFetcher:
    """The fetcher the runtime builds (this raises ``ValueError`` for a bad template)."""
    if where == "HEADERS":
        return BodyTokenFetcher("app", "https://a.example.com", "/t", request_headers={"X-Value": value}, depends_on=("device",))
    return BodyTokenFetcher("app", "https://a.example.com", "/t", request_json={"nested": [value]}, depends_on=("device",))


def rendered(fetcher: BodyTokenFetcher, where: str) -> str:
    context = FetchContext()
    context.add_token("device", DEVICE)
    if where == "HEADERS":
        return reveal(fetcher._build_request_headers(context)["X-Value"])
    return reveal(fetcher._build_request_json(context)["nested"][0])


WHERE = pytest.mark.parametrize("where", ["HEADERS", "JSON"])


@WHERE
@pytest.mark.parametrize(("template", "expected"), ACCEPTED)
def test_accepted_by_the_checks_and_rendered_at_runtime(where: str, template: str, expected: str) -> None:
    assert check_problems(template, where) == []
    assert rendered(runtime(template, where), where) == expected


@WHERE
@pytest.mark.parametrize(("template", "fragment"), MALFORMED)
def test_malformed_fails_the_same_way_in_the_checks_and_at_runtime(where: str, template: str, fragment: str) -> None:
    with pytest.raises(TemplateSyntaxError) as parsed:
        parse_template(template)
    detail = parsed.value.detail
    assert fragment in detail
    assert check_problems(template, where) == [detail]
    with pytest.raises(ValueError) as info:
        runtime(template, where)
    assert detail in str(info.value) and "step 'app'" in str(info.value)
    assert "SUPER-SECRET-VALUE" not in detail  # never echoed


@WHERE
@pytest.mark.parametrize(("template", "step"), UNDECLARED)
def test_a_step_outside_depends_on_fails_in_both(where: str, template: str, step: str) -> None:
    problems = check_problems(template, where)
    assert len(problems) == 1 and f'"{{{step}}}"' in problems[0]
    with pytest.raises(ValueError, match=rf"step 'app': placeholder \{{{step}\b.*not in depends_on"):
        runtime(template, where)


def test_the_parser_itself() -> None:
    assert parse_template("Bearer {app} {{x}} {dev.scope}") == ("Bearer ", Placeholder("app"), " {x} ", Placeholder("dev", "scope"))
    assert parse_template("") == ()


def test_a_secret_template_is_parsed_alike_and_never_quoted() -> None:
    # Settings may hold a Secret inside JSON; the checks and the runtime both parse its text.
    assert check_problems(Secret("Bearer {device}"), "JSON") == []
    assert rendered(runtime(Secret("Bearer {device}"), "JSON"), "JSON") == "Bearer dev-tok"
    secret = Secret("{device.hunter2}")
    [detail] = check_problems(secret, "JSON")
    assert "hunter2" not in detail and "is not a token field" in detail
    with pytest.raises(ValueError) as info:
        runtime(secret, "JSON")
    assert "hunter2" not in str(info.value) and detail in str(info.value)
