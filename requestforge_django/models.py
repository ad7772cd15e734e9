"""Admin-editable credentials, clients and pipelines.

* :class:`Credential` holds secrets, encrypted at rest (:mod:`~requestforge_django.fields`).
  A client in settings or in the database uses it with ``AUTH["CREDENTIAL"] = name``.
* :class:`ClientDefinition` and :class:`PipelineDefinition` (with its ordered
  :class:`PipelineStep` rows) are entries of ``REQUESTFORGE["CLIENTS"]`` /
  ``["PIPELINES"]`` kept in the database. Why they produce the *raw* settings dict
  (:meth:`~ClientDefinition.to_setting`) instead of building specs themselves: the same
  :mod:`~requestforge_django.validation` code then checks and parses both sources, so a
  definition behaves exactly like the settings entry it mirrors, and the admin reports
  the same check ids as ``manage.py check``.
* Admin-defined clients never hold secrets: their AUTH names a :class:`Credential`.

A name lives in settings or in the database, not both (``requestforge.E031``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from .fields import EncryptedTextField
from .http.messages import HttpMethod
from .specs import AUTH_TYPES, BUILTIN_FETCHERS, DEFAULTS
from .validation import ALL_AUTH_KEYS, AUTH_KEYS_BY_TYPE, Problem, validate_client, validate_pipeline

__all__ = [
    "ClientDefinition",
    "Credential",
    "PipelineDefinition",
    "PipelineStep",
    "database_definitions",
    "get_credential",
    "known_pipeline_names",
    "settings_names",
]

#: Same rule as client and pipeline names (``requestforge.E008``): names end up in cache keys.
name_validator = RegexValidator(
    re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "Use letters, digits, '_', '.' and '-', starting with a letter or digit.",
)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (dict, list, tuple)) and not value)


def _put(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw[key]`` unless ``value`` is empty; invalid values pass through for validation to report."""
    if not _is_empty(value):
        raw[key] = copy.deepcopy(value)


class _AdminEditable(models.Model):
    """Fields every admin-edited row has."""

    is_active = models.BooleanField(default=True, help_text="Inactive entries are ignored, as if they did not exist.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# -- credentials ------------------------------------------------------------------------------


class Credential(_AdminEditable):
    """Secrets for one client (or several), named by ``AUTH["CREDENTIAL"]``; never shown back by the admin."""

    #: The encrypted fields, in form order.
    SECRET_FIELDS: tuple[str, ...] = ("client_secret", "password", "api_key", "token")

    name = models.CharField(max_length=100, unique=True, validators=[name_validator], help_text='The AUTH "CREDENTIAL" name.')
    client_id = models.CharField("client id", max_length=255, blank=True)
    client_secret = EncryptedTextField("client secret", blank=True)
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True)
    api_key = EncryptedTextField("API key", blank=True)
    token = EncryptedTextField("bearer token", blank=True)
    scope = models.CharField(max_length=500, blank=True, help_text="Space-separated scopes.")
    extra_params = models.JSONField(
        "extra token parameters", default=dict, blank=True, help_text='Sent with token requests, e.g. {"audience": "erp"}.'
    )

    class Meta:
        ordering = ("name",)
        verbose_name = "credential"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Credential {self.name!r} pk={self.pk}{'' if self.is_active else ' inactive'}>"

    def clean(self) -> None:
        if self.extra_params is None:
            self.extra_params = {}
        params = self.extra_params
        if not isinstance(params, dict) or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in params.items()):
            raise ValidationError({"extra_params": "Must be a JSON object of strings to strings."})

    def auth_values(self) -> dict[str, Any]:
        """The ``AUTH`` keys this credential supplies (only non-empty ones); decrypts, so may raise ``DecryptionError``."""
        values: dict[str, Any] = {
            "CLIENT_ID": self.client_id,
            "CLIENT_SECRET": self.client_secret,
            "USERNAME": self.username,
            "PASSWORD": self.password,
            "KEY": self.api_key,
            "TOKEN": self.token,
            "SCOPE": self.scope,
            "EXTRA_PARAMS": dict(self.extra_params or {}),
        }
        return {key: value for key, value in values.items() if value}


def get_credential(name: str) -> Credential | None:
    """The active credential called ``name``, or ``None``."""
    return Credential.objects.filter(name=name, is_active=True).first()


# -- clients ------------------------------------------------------------------------------------

AUTH_TYPE_CHOICES = [("", "none"), *((t, t) for t in AUTH_TYPES)]


class ClientDefinition(_AdminEditable):
    """An entry of ``REQUESTFORGE["CLIENTS"]`` kept in the database; see :meth:`to_setting`."""

    name = models.CharField(max_length=100, unique=True, help_text="Used with get_client(name); part of cache keys.")
    base_url = models.CharField("base URL", max_length=2000)
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds; blank uses DEFAULT_TIMEOUT.")
    headers = models.JSONField(default=dict, blank=True, help_text='Sent with every request, e.g. {"User-Agent": "shop/1.0"}.')
    verify_ssl = models.BooleanField("verify TLS certificates", default=True)
    ca_bundle = models.CharField("CA bundle", max_length=500, blank=True, help_text="Path of a CA bundle; replaces the default ones.")
    retry = models.JSONField(
        null=True, blank=True, help_text='The RETRY dict, e.g. {"STRATEGY": "exponential", "MAX_RETRIES": 3}; blank: no retries.'
    )
    circuit_breaker = models.JSONField(
        null=True, blank=True, help_text='The CIRCUIT_BREAKER dict, e.g. {"FAILURE_THRESHOLD": 5, "RECOVERY_TIMEOUT": 30}; blank: none.'
    )
    rate_limit = models.JSONField(null=True, blank=True, help_text='The RATE_LIMIT dict, e.g. {"RATE": 10, "BURST": 20}; blank: none.')
    hooks = models.JSONField(default=list, blank=True, help_text='Import paths of hook classes, e.g. ["myapp.hooks.AuditHook"].')

    auth_type = models.CharField("auth type", max_length=32, blank=True, choices=AUTH_TYPE_CHOICES)
    token_url = models.CharField("token URL", max_length=2000, blank=True, help_text="client_credentials and password.")
    credential = models.ForeignKey(
        Credential,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="client_definitions",
        help_text="Supplies the secrets (every auth type but pipeline).",
    )
    scope = models.CharField(max_length=500, blank=True, help_text="Overrides the credential's scope.")
    api_key_header = models.CharField("API key header", max_length=100, blank=True, help_text='api_key; default "X-API-Key".')
    api_key_query_param = models.CharField("API key query parameter", max_length=100, blank=True, help_text="api_key, instead of a header.")
    pipeline = models.CharField(max_length=100, blank=True, help_text="pipeline: the name of a pipeline (settings or database).")
    excluded_paths = models.JSONField(default=list, blank=True, help_text="Paths sent without authentication.")

    class Meta:
        ordering = ("name",)
        verbose_name = "client definition"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for name, empty in (("headers", dict), ("hooks", list), ("excluded_paths", list)):
            if getattr(self, name) is None:
                setattr(self, name, empty())

    def auth_setting(self) -> dict[str, Any] | None:
        """The raw ``AUTH`` dict (``None`` without an auth type); keys the type does not use are left out."""
        if not self.auth_type:
            return None
        allowed = AUTH_KEYS_BY_TYPE.get(self.auth_type, ALL_AUTH_KEYS)
        auth: dict[str, Any] = {"TYPE": self.auth_type}
        candidates = {
            "TOKEN_URL": self.token_url,
            "CREDENTIAL": self.credential.name if self.credential_id is not None else "",
            "SCOPE": self.scope,
            "HEADER": self.api_key_header,
            "QUERY_PARAM": self.api_key_query_param,
            "PIPELINE": self.pipeline,
            "EXCLUDED_PATHS": self.excluded_paths,
        }
        for key, value in candidates.items():
            if key in allowed:
                _put(auth, key, value)
        return auth

    def to_setting(self) -> dict[str, Any]:
        """Exactly the raw ``REQUESTFORGE["CLIENTS"][name]`` dict a user would write for this client."""
        raw: dict[str, Any] = {"BASE_URL": self.base_url}
        if self.timeout is not None:
            raw["TIMEOUT"] = self.timeout
        _put(raw, "HEADERS", self.headers)
        raw["VERIFY_SSL"] = self.ca_bundle or self.verify_ssl
        for key, value in (("RETRY", self.retry), ("CIRCUIT_BREAKER", self.circuit_breaker), ("RATE_LIMIT", self.rate_limit)):
            if value is not None:
                raw[key] = copy.deepcopy(value)
        _put(raw, "AUTH", self.auth_setting())
        _put(raw, "HOOKS", self.hooks)
        return raw

    def problems(self, *, pipelines: Iterable[str] | None = None) -> list[Problem]:
        """What ``manage.py check`` would report for this client (``pipelines``: names AUTH PIPELINE may use)."""
        known = known_pipeline_names() if pipelines is None else pipelines
        return validate_client(self.name, self.to_setting(), pipelines=frozenset(known))


# -- pipelines ----------------------------------------------------------------------------------


class PipelineDefinition(_AdminEditable):
    """An entry of ``REQUESTFORGE["PIPELINES"]`` kept in the database; its steps are :class:`PipelineStep` rows."""

    name = models.CharField(max_length=100, unique=True, help_text="Used with get_pipeline(name) and AUTH PIPELINE.")
    refresh_from_step = models.CharField(
        max_length=100, blank=True, help_text="Step invalidated (with its dependents) when the final token is rejected; blank: the last."
    )

    class Meta:
        ordering = ("name",)
        verbose_name = "pipeline definition"

    def __str__(self) -> str:
        return self.name

    def to_setting(self, steps: Iterable[PipelineStep] | None = None) -> dict[str, Any]:
        """Exactly the raw ``REQUESTFORGE["PIPELINES"][name]`` dict; ``steps`` replaces the saved steps (unsaved forms)."""
        rows = self.steps.all() if steps is None else steps
        raw: dict[str, Any] = {"STEPS": [step.to_setting() for step in rows]}
        _put(raw, "REFRESH_FROM_STEP", self.refresh_from_step)
        return raw

    def problems(self, steps: Iterable[PipelineStep] | None = None) -> list[Problem]:
        """What ``manage.py check`` would report for this pipeline."""
        return validate_pipeline(self.name, self.to_setting(steps), refresh_ahead=_refresh_ahead())


METHOD_CHOICES = [(m.value, m.value) for m in HttpMethod]


class PipelineStep(models.Model):
    """One entry of a pipeline's ``STEPS``: a token fetch, run in ``order``."""

    pipeline = models.ForeignKey(PipelineDefinition, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(default=0, help_text="Steps run in increasing order.")
    name = models.CharField(max_length=100, help_text="A Python identifier; other steps use its token as {name}.")
    fetcher = models.CharField(
        max_length=255, default="body", help_text=f"{' or '.join(BUILTIN_FETCHERS)}, or the import path of a fetcher class."
    )
    url = models.CharField("URL", max_length=2000)
    method = models.CharField(max_length=10, default="POST", choices=METHOD_CHOICES)
    headers = models.JSONField(default=dict, blank=True, help_text='May use earlier tokens: {"X-Device-Token": "{device_token}"}.')
    data = models.JSONField("form data", null=True, blank=True, help_text="A form body (object, or an encoded string).")
    json = models.JSONField("JSON body", null=True, blank=True)
    params = models.JSONField("query parameters", default=dict, blank=True)
    token_header = models.CharField(max_length=255, blank=True, help_text="header fetcher: the response header holding the token.")
    token_field = models.CharField(max_length=255, blank=True, default="access_token", help_text="body fetcher: the token's JSON field.")
    expires_in_field = models.CharField(max_length=255, blank=True, default="expires_in", help_text="body fetcher.")
    ttl = models.FloatField("TTL", null=True, blank=True, help_text="Seconds; blank: the token's expires_in, else TOKEN_DEFAULT_LIFETIME.")
    depends_on = models.JSONField(default=list, blank=True, help_text='Earlier steps whose tokens this one uses, e.g. ["device_token"].')

    class Meta:
        ordering = ("order", "pk")
        verbose_name = "pipeline step"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for name, empty in (("headers", dict), ("params", dict), ("depends_on", list)):
            if getattr(self, name) is None:
                setattr(self, name, empty())

    def to_setting(self) -> dict[str, Any]:
        """The raw step dict; fields the fetcher does not use (e.g. TOKEN_FIELD for "header") are left out."""
        fetcher = self.fetcher or "body"
        kind = fetcher.lower()
        raw: dict[str, Any] = {"NAME": self.name, "FETCHER": fetcher, "URL": self.url, "METHOD": self.method or "POST"}
        _put(raw, "HEADERS", self.headers)
        if self.data is not None:
            raw["DATA"] = copy.deepcopy(self.data)
        if self.json is not None:
            raw["JSON"] = copy.deepcopy(self.json)
        _put(raw, "PARAMS", self.params)
        if kind != "body":
            _put(raw, "TOKEN_HEADER", self.token_header)
        if kind != "header":
            _put(raw, "TOKEN_FIELD", self.token_field)
            _put(raw, "EXPIRES_IN_FIELD", self.expires_in_field)
        if self.ttl is not None:
            raw["TTL"] = self.ttl
        _put(raw, "DEPENDS_ON", self.depends_on)
        return raw


# -- module-level helpers ---------------------------------------------------------------------------


def database_definitions() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Raw dicts of the active client and pipeline definitions, by name (the registry parses them like settings)."""
    clients = {c.name: c.to_setting() for c in ClientDefinition.objects.filter(is_active=True).select_related("credential")}
    pipelines = {p.name: p.to_setting() for p in PipelineDefinition.objects.filter(is_active=True).prefetch_related("steps")}
    return clients, pipelines


def settings_names(section: str) -> frozenset[str]:
    """Names defined in ``REQUESTFORGE[section]`` (``"CLIENTS"`` or ``"PIPELINES"``); empty if the setting is malformed."""
    from .conf import requestforge_settings

    raw = requestforge_settings.raw
    entries = raw.get(section) if isinstance(raw, Mapping) else None
    return frozenset(name for name in entries if isinstance(name, str)) if isinstance(entries, Mapping) else frozenset()


def known_pipeline_names() -> frozenset[str]:
    """Pipelines an ``AUTH`` of type ``pipeline`` may name: settings ones and active database ones."""
    return settings_names("PIPELINES") | frozenset(PipelineDefinition.objects.filter(is_active=True).values_list("name", flat=True))


def _refresh_ahead() -> float:
    from .conf import requestforge_settings

    raw = requestforge_settings.raw
    value = raw.get("REFRESH_AHEAD") if isinstance(raw, Mapping) else None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float(DEFAULTS["REFRESH_AHEAD"])
