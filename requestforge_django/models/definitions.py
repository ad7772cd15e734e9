"""Client and pipeline definitions: entries of ``REQUESTFORGE["CLIENTS"]`` / ``["PIPELINES"]`` kept in the database.

Each produces the raw settings dict a user would write (``to_setting``), checked and
parsed by the same :mod:`~requestforge_django.setting` code as settings entries.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db import models

from ..http.messages import HttpMethod
from ..setting.keys import ALL_AUTH_KEYS, AUTH_KEYS_BY_TYPE
from ..setting.problems import Problem
from ..setting.specs import ACCESS_TOKEN_TYPE, AUTH_TYPES, BUILTIN_FETCHERS, CLIENT_AUTH_METHODS, HMAC_ALGORITHMS, KEY_ALGORITHMS
from ..setting.validate import validate_client, validate_pipeline
from .base import AdminEditable, put
from .credentials import Credential
from .origins import credential_destinations

# -- clients ------------------------------------------------------------------------------------

AUTH_TYPE_CHOICES = [("", "none"), *((t, t) for t in AUTH_TYPES)]


class ClientDefinition(AdminEditable):
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
    token_url = models.CharField(
        "token URL", max_length=2000, blank=True, help_text="client_credentials, password, jwt_bearer and token_exchange; or an issuer."
    )
    issuer = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Instead of a token URL: the issuer whose metadata (RFC 8414, then OpenID discovery) names the token endpoint.",
    )
    client_auth_method = models.CharField(
        "client authentication method",
        max_length=32,
        blank=True,
        choices=[(m, m) for m in CLIENT_AUTH_METHODS],
        default=CLIENT_AUTH_METHODS[0],
        help_text="How the client authenticates at the token endpoint: its secret in the form body or as HTTP Basic, or a client "
        "assertion signed with the secret (client_secret_jwt) or the credential's private key (private_key_jwt); "
        "blank: client_secret_post.",
    )
    algorithm = models.CharField(
        max_length=8,
        blank=True,
        choices=[(a, a) for a in (*HMAC_ALGORITHMS, *KEY_ALGORITHMS)],
        help_text="Of signed assertions; blank: HS256 for client_secret_jwt, RS256 for an RSA key, ES256/384/512 by curve.",
    )
    audience = models.JSONField(
        default=list, blank=True, help_text='"audience" parameters of the token request, e.g. ["https://api.example.com"].'
    )
    resource = models.JSONField(
        default=list, blank=True, help_text='"resource" parameters (RFC 8707): absolute URIs, e.g. ["https://api.example.com"].'
    )
    assertion = models.JSONField(
        null=True,
        blank=True,
        help_text='jwt_bearer: the ASSERTION dict without the key (the credential supplies it), e.g. {"ISSUER": "svc@example", '
        '"SUBJECT": "svc@example", "LIFETIME": 300}; blank: the credential\'s client id is the issuer and subject.',
    )
    subject_token_from = models.CharField(
        "subject token from",
        max_length=100,
        blank=True,
        help_text="token_exchange: the client or pipeline whose token is exchanged.",
    )
    subject_token_type = models.CharField(
        "subject token type", max_length=255, blank=True, help_text=f"token_exchange; blank: {ACCESS_TOKEN_TYPE}."
    )
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
        for name, empty in (("headers", dict), ("hooks", list), ("excluded_paths", list), ("audience", list), ("resource", list)):
            if getattr(self, name) is None:
                setattr(self, name, empty())

    def auth_setting(self) -> dict[str, Any] | None:
        """The raw ``AUTH`` dict (``None`` without an auth type); keys the type does not use are left out."""
        if not self.auth_type:
            return None
        allowed = AUTH_KEYS_BY_TYPE.get(self.auth_type, ALL_AUTH_KEYS)
        auth: dict[str, Any] = {"TYPE": self.auth_type}
        credential = self.credential if self.credential_id is not None else None
        candidates = {
            "TOKEN_URL": self.token_url,
            "ISSUER": self.issuer,
            "CREDENTIAL": credential.name if credential is not None else "",
            "SCOPE": self.scope,
            "HEADER": self.api_key_header,
            "QUERY_PARAM": self.api_key_query_param,
            "PIPELINE": self.pipeline,
            "EXCLUDED_PATHS": self.excluded_paths,
            # The default is left out, as a user would leave it out of settings.
            "CLIENT_AUTH_METHOD": "" if self.client_auth_method == CLIENT_AUTH_METHODS[0] else self.client_auth_method,
            "ALGORITHM": self.algorithm,
            "AUDIENCE": self.audience,
            "RESOURCE": self.resource,
            "ASSERTION": self.assertion,
            "SUBJECT_TOKEN_FROM": self.subject_token_from,
            "SUBJECT_TOKEN_TYPE": self.subject_token_type,
        }
        for key, value in candidates.items():
            if key in allowed:
                put(auth, key, value)
        return auth

    def uses_credential(self) -> bool:
        """Whether the definition sends its credential's secrets (every auth type but pipeline, with a credential)."""
        return self.credential_id is not None and bool(self.auth_type) and self.auth_type != "pipeline"

    def credential_destinations(self) -> list[tuple[str, str]]:
        """``(key, origin)`` pairs the credential's secrets and tokens would reach (empty without a credential)."""
        if not self.uses_credential():
            return []
        auth = self.auth_setting() or {}
        return credential_destinations(self.base_url, auth.get("TOKEN_URL"), issuer=auth.get("ISSUER"))

    def to_setting(self) -> dict[str, Any]:
        """Exactly the raw ``REQUESTFORGE["CLIENTS"][name]`` dict a user would write for this client."""
        raw: dict[str, Any] = {"BASE_URL": self.base_url}
        if self.timeout is not None:
            raw["TIMEOUT"] = self.timeout
        put(raw, "HEADERS", self.headers)
        raw["VERIFY_SSL"] = self.ca_bundle or self.verify_ssl
        for key, value in (("RETRY", self.retry), ("CIRCUIT_BREAKER", self.circuit_breaker), ("RATE_LIMIT", self.rate_limit)):
            if value is not None:
                raw[key] = copy.deepcopy(value)
        put(raw, "AUTH", self.auth_setting())
        put(raw, "HOOKS", self.hooks)
        return raw

    def problems(self, *, pipelines: Iterable[str] | None = None) -> list[Problem]:
        """What ``manage.py check`` would report for this client (``pipelines``: names AUTH PIPELINE may use)."""
        from .loading import known_pipeline_names  # loading imports this module: imported when called

        known = known_pipeline_names() if pipelines is None else pipelines
        return validate_client(self.name, self.to_setting(), pipelines=frozenset(known))


# -- pipelines ----------------------------------------------------------------------------------


class PipelineDefinition(AdminEditable):
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
        put(raw, "REFRESH_FROM_STEP", self.refresh_from_step)
        return raw

    def problems(self, steps: Iterable[PipelineStep] | None = None) -> list[Problem]:
        """What ``manage.py check`` would report for this pipeline."""
        from .loading import refresh_ahead_seconds  # loading imports this module: imported when called

        return validate_pipeline(self.name, self.to_setting(steps), refresh_ahead=refresh_ahead_seconds())


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
        put(raw, "HEADERS", self.headers)
        if self.data is not None:
            raw["DATA"] = copy.deepcopy(self.data)
        if self.json is not None:
            raw["JSON"] = copy.deepcopy(self.json)
        put(raw, "PARAMS", self.params)
        if kind != "body":
            put(raw, "TOKEN_HEADER", self.token_header)
        if kind != "header":
            put(raw, "TOKEN_FIELD", self.token_field)
            put(raw, "EXPIRES_IN_FIELD", self.expires_in_field)
        if self.ttl is not None:
            raw["TTL"] = self.ttl
        put(raw, "DEPENDS_ON", self.depends_on)
        return raw
