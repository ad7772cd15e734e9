"""Validating and parsing the ``REQUESTFORGE`` setting, a client or a pipeline: the entry points.

A single pass over the raw dict both collects :class:`~.problems.Problem` values and
builds the :mod:`~.specs` dataclasses, so ``manage.py check``, the settings object
(:func:`parse_settings`, raising ``ImproperlyConfigured``) and admin form validation
(:func:`validate_client`, :func:`validate_pipeline`) can never disagree about what is valid.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .problems import Problem, raise_first_error
from .rules.toplevel import SettingsRules
from .specs import ClientSpec, PipelineSpec, SettingsSpec, default_of

__all__ = ["parse_client", "parse_pipeline", "parse_settings", "validate_client", "validate_pipeline", "validate_settings"]

_DEFAULT_TIMEOUT: float = default_of(SettingsSpec, "default_timeout")
_REFRESH_AHEAD: float = default_of(SettingsSpec, "refresh_ahead")


def validate_settings(raw: Any, *, caches: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every problem of a raw ``REQUESTFORGE`` value, errors and warnings, in setting order.

    ``caches`` defaults to ``settings.CACHES`` (read now); pass it to validate a setting
    for another configuration.
    """
    validator = SettingsRules(caches)
    validator.settings(raw)
    return validator.problems


def parse_settings(raw: Any, *, caches: Mapping[str, Any] | None = None) -> SettingsSpec:
    """The validated, normalized :class:`SettingsSpec`; raises ``ImproperlyConfigured`` on the first error."""
    validator = SettingsRules(caches)
    spec = validator.settings(raw)
    raise_first_error(validator.problems)
    return spec


def validate_client(
    name: str, raw: Any, *, pipelines: Collection[str] = (), default_timeout: float | tuple[float, float] = _DEFAULT_TIMEOUT
) -> list[Problem]:
    """Problems of one client definition (an entry of ``CLIENTS`` or an admin-defined client).

    ``pipelines`` are the names an ``AUTH`` of TYPE ``pipeline`` may refer to.
    """
    validator = SettingsRules({})
    validator.client(name, raw, pipelines=pipelines, default_timeout=default_timeout)
    return validator.problems


def parse_client(
    name: str, raw: Any, *, pipelines: Collection[str] = (), default_timeout: float | tuple[float, float] = _DEFAULT_TIMEOUT
) -> ClientSpec:
    """One client's :class:`ClientSpec`; raises ``ImproperlyConfigured`` on the first error."""
    validator = SettingsRules({})
    spec = validator.client(name, raw, pipelines=pipelines, default_timeout=default_timeout)
    raise_first_error(validator.problems)
    assert spec is not None  # a None spec always comes with an error
    return spec


def validate_pipeline(name: str, raw: Any, *, refresh_ahead: float = _REFRESH_AHEAD) -> list[Problem]:
    """Problems of one pipeline definition (an entry of ``PIPELINES`` or an admin-defined pipeline)."""
    validator = SettingsRules({})
    validator.pipeline(name, raw, refresh_ahead=refresh_ahead)
    return validator.problems


def parse_pipeline(name: str, raw: Any, *, refresh_ahead: float = _REFRESH_AHEAD) -> PipelineSpec:
    """One pipeline's :class:`PipelineSpec`; raises ``ImproperlyConfigured`` on the first error."""
    validator = SettingsRules({})
    spec = validator.pipeline(name, raw, refresh_ahead=refresh_ahead)
    raise_first_error(validator.problems)
    assert spec is not None
    return spec
