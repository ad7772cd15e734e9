"""The ``REQUESTFORGE`` setting: its shape, its rules, and the object the app reads it through.

* :mod:`.specs`: the frozen spec dataclasses, the one source of the setting's keys and defaults.
* :mod:`.keys`: each section's key list (derived from the specs) and :data:`DEFAULTS`.
* :mod:`.ids`: every check id (:data:`CHECKS`); :mod:`.problems`: :class:`Problem`, did-you-mean.
* :mod:`.predicates` and :mod:`.readers`: value predicates and the generic schema reader.
* :mod:`.rules`: the rules of each section (top level, clients, auth, pipelines, the step graph).
* :mod:`.validate`: the entry points; :mod:`.conf`: ``requestforge_settings``.
"""

from __future__ import annotations

from .ids import CHECKS, CheckInfo, Level
from .keys import DEFAULTS
from .problems import Problem, did_you_mean, raise_first_error, render_key
from .specs import AuthSpec, BreakerSpec, ClientSpec, PipelineSpec, RateLimitSpec, RetrySpec, SettingsSpec, StepSpec
from .validate import parse_client, parse_pipeline, parse_settings, validate_client, validate_pipeline, validate_settings

__all__ = [
    "CHECKS",
    "DEFAULTS",
    "AuthSpec",
    "BreakerSpec",
    "CheckInfo",
    "ClientSpec",
    "Level",
    "PipelineSpec",
    "Problem",
    "RateLimitSpec",
    "RetrySpec",
    "SettingsSpec",
    "StepSpec",
    "did_you_mean",
    "parse_client",
    "parse_pipeline",
    "parse_settings",
    "raise_first_error",
    "render_key",
    "validate_client",
    "validate_pipeline",
    "validate_settings",
]
