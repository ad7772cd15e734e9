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
* A credential is **bound** to the origins its secrets (and the tokens obtained with
  them) may be sent to (:attr:`Credential.allowed_origins`). Why: whoever may edit a
  client definition could otherwise point a ``TOKEN_URL`` or ``BASE_URL`` at a host of
  their own and receive a secret they may not even see. The binding lives on the
  credential row, so only users with change permission on credentials move it; database
  definitions that reach another origin are refused by the admin form, by the registry
  (:class:`UnboundCredentialError`, nothing sent) and by ``requestforge.E043``.
  Settings-defined clients are trusted code and are not bound.

A name lives in settings or in the database, not both (``requestforge.E031``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from .fields import EncryptedTextField
from .http.exceptions import ConfigurationError
from .http.messages import HttpMethod
from .http.secrets import Origin
from .specs import AUTH_TYPES, BUILTIN_FETCHERS, CLIENT_AUTH_METHODS, DEFAULTS
from .validation import ALL_AUTH_KEYS, AUTH_KEYS_BY_TYPE, E_CREDENTIAL_ORIGIN, Problem, validate_client, validate_pipeline

__all__ = [
    "USE_CREDENTIAL_PERMISSION",
    "ClientDefinition",
    "Credential",
    "UnboundCredentialError",
    "credential_destinations",
    "normalize_origins",
    "unbound_destinations",
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


# -- origins a credential is bound to ----------------------------------------------------------------

#: ``user.has_perm(USE_CREDENTIAL_PERMISSION)``: may choose credentials in client definitions.
USE_CREDENTIAL_PERMISSION = "requestforge_django.use_credential"


def normalize_origin(text: Any) -> str:
    """``"HTTPS://Auth.Example.com:443/"`` -> ``"https://auth.example.com"``; ``ValueError`` unless an http(s) origin.

    An origin is scheme, host and port only: a path, query, fragment or user info is
    refused rather than dropped, so that what the credential manager typed is exactly
    what is enforced.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a non-empty string")
    value = text.strip()
    origin = Origin.of(value)
    if origin is None:
        raise ValueError("must be an http:// or https:// origin such as https://auth.example.com")
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("must be scheme://host[:port] only (no path, query, fragment or user info)")
    return str(origin)


def normalize_origins(values: Any) -> list[str]:
    """The normalized, de-duplicated origins of ``values``; ``ValidationError`` naming each bad entry."""
    if values is None or values == "":
        return []
    if not isinstance(values, (list, tuple)):
        raise ValidationError('Must be a list of origins, e.g. ["https://auth.example.com"].')
    origins: list[str] = []
    errors: list[str] = []
    for index, value in enumerate(values):
        try:
            origin = normalize_origin(value)
        except ValueError as exc:
            shown = repr(value) if isinstance(value, str) and len(value) <= 200 else type(value).__name__
            errors.append(f"Entry {index + 1} ({shown}) {exc}.")
            continue
        if origin not in origins:
            origins.append(origin)
    if errors:
        raise ValidationError(errors)
    return origins


def _origin(url: Any) -> str | None:
    origin = Origin.of(url) if isinstance(url, str) else None
    return None if origin is None else str(origin)


def credential_destinations(base_url: Any, token_url: Any = None, trusted_origins: Iterable[Any] = ()) -> list[tuple[str, str]]:
    """``(key, origin)`` for every origin a client sends its credential's secrets or tokens to.

    ``TOKEN_URL`` receives the secrets themselves (client secret, password); ``BASE_URL``
    (and any origin the client trusts) receives the static secrets (API key, bearer
    token, Basic) and the tokens obtained with the credential. A URL that is not an
    absolute http(s) URL sends nothing and is left to the settings validation.
    """
    pairs: list[tuple[str, str]] = []
    for key, url in (("AUTH.TOKEN_URL", token_url), ("BASE_URL", base_url), *(("TRUSTED_ORIGINS", o) for o in trusted_origins)):
        origin = _origin(url)
        if origin is not None and (key, origin) not in pairs:
            pairs.append((key, origin))
    return pairs


def unbound_destinations(credential: Credential, destinations: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(key, origin)`` pairs of ``destinations`` that ``credential`` is not bound to."""
    allowed = credential.allowed_origin_set()
    return [(key, origin) for key, origin in destinations if origin not in allowed]


class UnboundCredentialError(ConfigurationError):
    """A database-defined client would send a credential to an origin the credential is not bound to.

    Raised when the client (or its token manager) is built, before anything is sent.
    ``definition``, ``credential`` and ``origin`` name what was refused; never a secret.
    """

    def __init__(self, definition: str, credential: str, origin: str, key: str, allowed: Iterable[str] = ()) -> None:
        self.definition = definition
        self.credential = credential
        self.origin = origin
        self.key = key
        shown = ", ".join(allowed) or "none"
        super().__init__(
            f'database client "{definition}" would send credential "{credential}" to {origin} ({key}), which is not one of '
            f"the credential's allowed origins ({shown}); nothing was sent. A user with change permission on credentials must "
            f"add the origin to the credential, or fix the definition ({E_CREDENTIAL_ORIGIN}).",
            field="AUTH.CREDENTIAL",
        )


def ensure_bound(definition: str, credential: Credential, destinations: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`UnboundCredentialError` for the first destination ``credential`` is not bound to."""
    for key, origin in unbound_destinations(credential, destinations):
        raise UnboundCredentialError(definition, credential.name, origin, key, credential.allowed_origin_set())


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
    allowed_origins = models.JSONField(
        "allowed origins",
        default=list,
        blank=True,
        help_text="Origins (scheme://host[:port]) that clients defined in the admin may send this credential's secrets, and the "
        "tokens obtained with them, to: the token endpoint and the API. Empty: only clients defined in settings may use it.",
    )
    #: Raised by one, atomically in the database, on every save of an existing row (see :meth:`save`).
    version = models.PositiveBigIntegerField(
        default=1,
        editable=False,
        help_text="Raised on every save; a token is served only while the version that obtained it is the current one.",
    )

    class Meta:
        ordering = ("name",)
        verbose_name = "credential"
        permissions = [("use_credential", "Can use credential in client definitions")]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Credential {self.name!r} pk={self.pk}{'' if self.is_active else ' inactive'}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, raising :attr:`version` by one in the same ``UPDATE`` (``version = version + 1``).

        Every save counts as a change of what the credential authenticates with: once it
        has committed, no process serves a token obtained with the previous version
        (:mod:`requestforge_django.fencing`). The name the row had before is kept in
        ``previous_name``, so that a rename fences out the tokens of the old name too.
        """
        self.previous_name: str | None = None
        update_fields = kwargs.get("update_fields")
        using = kwargs.get("using") or self._state.db
        if self.pk is not None and not self._state.adding and (update_fields is None or update_fields):
            self.previous_name = type(self)._default_manager.using(using).filter(pk=self.pk).values_list("name", flat=True).first()
        if self.previous_name is None:  # a new row (or one deleted meanwhile) starts at its default version
            super().save(*args, **kwargs)
            return
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "version"}
        version = self.version
        self.version = models.F("version") + 1
        try:
            super().save(*args, **kwargs)
        except BaseException:
            self.version = version
            raise
        self.refresh_from_db(using=using, fields=["version"])

    def clean(self) -> None:
        if self.extra_params is None:
            self.extra_params = {}
        params = self.extra_params
        if not isinstance(params, dict) or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in params.items()):
            raise ValidationError({"extra_params": "Must be a JSON object of strings to strings."})
        try:
            self.allowed_origins = normalize_origins(self.allowed_origins)
        except ValidationError as exc:
            raise ValidationError({"allowed_origins": exc.messages}) from None

    def allowed_origin_set(self) -> list[str]:
        """The stored origins, normalized (entries that are not origins allow nothing)."""
        allowed: list[str] = []
        for value in self.allowed_origins if isinstance(self.allowed_origins, (list, tuple)) else ():
            try:
                origin = normalize_origin(value)
            except ValueError:
                continue
            if origin not in allowed:
                allowed.append(origin)
        return allowed

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
    credential: Credential | None = Credential.objects.filter(name=name, is_active=True).first()
    return credential


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
    client_auth_method = models.CharField(
        "client authentication method",
        max_length=32,
        blank=True,
        choices=[(m, m) for m in CLIENT_AUTH_METHODS],
        default=CLIENT_AUTH_METHODS[0],
        help_text="client_credentials and password: how the client id and secret reach the token endpoint (form body, or HTTP Basic); "
        "blank: client_secret_post.",
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
        for name, empty in (("headers", dict), ("hooks", list), ("excluded_paths", list)):
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
            "CREDENTIAL": credential.name if credential is not None else "",
            "SCOPE": self.scope,
            "HEADER": self.api_key_header,
            "QUERY_PARAM": self.api_key_query_param,
            "PIPELINE": self.pipeline,
            "EXCLUDED_PATHS": self.excluded_paths,
            # The default is left out, as a user would leave it out of settings.
            "CLIENT_AUTH_METHOD": "" if self.client_auth_method == CLIENT_AUTH_METHODS[0] else self.client_auth_method,
        }
        for key, value in candidates.items():
            if key in allowed:
                _put(auth, key, value)
        return auth

    def uses_credential(self) -> bool:
        """Whether the definition sends its credential's secrets (every auth type but pipeline, with a credential)."""
        return self.credential_id is not None and bool(self.auth_type) and self.auth_type != "pipeline"

    def credential_destinations(self) -> list[tuple[str, str]]:
        """``(key, origin)`` pairs the credential's secrets and tokens would reach (empty without a credential)."""
        if not self.uses_credential():
            return []
        auth = self.auth_setting() or {}
        return credential_destinations(self.base_url, auth.get("TOKEN_URL"))

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
