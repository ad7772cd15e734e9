"""Reading the database definitions as raw settings dicts, and the names the ``REQUESTFORGE`` setting defines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from ..setting.keys import DEFAULTS
from .definitions import ClientDefinition, PipelineDefinition


def database_definitions() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Raw dicts of the active client and pipeline definitions, by name (the registry parses them like settings)."""
    clients = {c.name: c.to_setting() for c in ClientDefinition.objects.filter(is_active=True).select_related("credential")}
    pipelines = {p.name: p.to_setting() for p in PipelineDefinition.objects.filter(is_active=True).prefetch_related("steps")}
    return clients, pipelines


def database_client(name: str) -> dict[str, Any] | None:
    """The raw dict of the active client definition ``name``, or ``None`` (one query; the registry reads names when asked for)."""
    row = ClientDefinition.objects.filter(name=name, is_active=True).select_related("credential").first()
    return None if row is None else row.to_setting()


def database_pipeline(name: str) -> dict[str, Any] | None:
    """The raw dict of the active pipeline definition ``name``, or ``None``."""
    row = PipelineDefinition.objects.filter(name=name, is_active=True).prefetch_related("steps").first()
    return None if row is None else row.to_setting()


def clients_using_credentials(names: Iterable[str], auth_types: Iterable[str]) -> list[str]:
    """Names of the active client definitions of ``auth_types`` whose credential is one of ``names``."""
    rows = ClientDefinition.objects.filter(is_active=True, credential__name__in=list(names), auth_type__in=list(auth_types))
    return list(rows.values_list("name", flat=True))


def settings_names(section: str) -> frozenset[str]:
    """Names defined in ``REQUESTFORGE[section]`` (``"CLIENTS"`` or ``"PIPELINES"``); empty if the setting is malformed."""
    from ..setting.conf import requestforge_settings

    raw = requestforge_settings.raw
    entries = raw.get(section) if isinstance(raw, Mapping) else None
    return frozenset(name for name in entries if isinstance(name, str)) if isinstance(entries, Mapping) else frozenset()


def known_pipeline_names() -> frozenset[str]:
    """Pipelines an ``AUTH`` of type ``pipeline`` may name: settings ones and active database ones."""
    return settings_names("PIPELINES") | frozenset(PipelineDefinition.objects.filter(is_active=True).values_list("name", flat=True))


def refresh_ahead_seconds() -> float:
    """``REFRESH_AHEAD`` in seconds, as pipeline checks need it; the default if the setting is missing or malformed."""
    from ..setting.conf import requestforge_settings

    raw = requestforge_settings.raw
    value = raw.get("REFRESH_AHEAD") if isinstance(raw, Mapping) else None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float(DEFAULTS["REFRESH_AHEAD"])
