"""Rules of the top level of ``REQUESTFORGE``: CACHE, keys, lifetimes, WARM, names shared by a client and a pipeline.

:class:`SettingsRules` is the whole validator: it reads the top-level keys, then each
client (:class:`~.clients.ClientRules`) and pipeline (:class:`~.pipelines.PipelineRules`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from ...tokens.providers import LEASE_MARGIN, MIN_FETCH_DEADLINE
from ..ids import (
    E_CACHE_ALIAS,
    E_ENCRYPTION_KEY,
    E_FETCH_DEADLINE,
    E_KEYS_MISSING,
    E_MIN_LIFETIME,
    E_NOT_A_DICT,
    E_SHARED_NAME,
    E_WARM,
    W_DEBUG_FILTER,
    W_LOCAL_CACHE,
    W_REFRESH_AHEAD,
    W_WARM_INTERVAL,
)
from ..keys import DEFAULTS
from ..predicates import EMPTY_KEY, is_blank, is_fernet_key, type_name
from ..problems import Path, choices_text, suggest
from ..readers import INVALID
from ..specs import ClientSpec, PipelineSpec, SettingsSpec
from .clients import ClientRules
from .pipelines import PipelineRules
from .subjects import SubjectRules

__all__ = ["SettingsRules", "shared_name_problem", "shared_names"]


def shared_names(clients: Mapping[Any, Any], pipelines: Collection[Any]) -> list[str]:
    """Names that are both a client and a pipeline, except a client authenticated by its namesake pipeline.

    ``requestforge_warm x`` and ``requestforge_status x`` act on "the token of x": with an
    OAuth client ``x`` and a pipeline ``x`` that would be two different tokens. A client
    ``x`` with ``AUTH {"TYPE": "pipeline", "PIPELINE": "x"}`` has exactly the pipeline's
    token, so that natural spelling is allowed.
    """
    shared = []
    for name, raw in clients.items():
        if name not in pipelines:
            continue
        auth = raw.get("AUTH") if isinstance(raw, Mapping) else None
        if isinstance(auth, Mapping) and str(auth.get("TYPE", "")).lower() == "pipeline" and auth.get("PIPELINE") == name:
            continue
        shared.append(name)
    return shared


def shared_name_problem(name: str) -> tuple[str, str]:
    """Message and hint of E032 for ``name`` (the admin forms say the same)."""
    return (
        f'is also the name of a pipeline, and client "{name}" is not authenticated by it: commands and warm-up would '
        "not know which token the name means.",
        f'Rename the client or the pipeline, or authenticate the client with AUTH {{"TYPE": "pipeline", "PIPELINE": "{name}"}}.',
    )


class SettingsRules(ClientRules, PipelineRules, SubjectRules):
    """Walks the raw setting once, recording problems and building specs.

    Each section method returns the spec for its part (built with defaults where a
    value was invalid, since that spec is only used when there are no errors).
    ``caches`` defaults to ``settings.CACHES`` (read when needed).
    """

    def __init__(self, caches: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.caches = caches

    def settings(self, raw: Any) -> SettingsSpec:
        if not isinstance(raw, Mapping):
            self.report(E_NOT_A_DICT, (), f"must be a dict, got {type_name(raw)}.", "See docs/checks.md for the shape of the setting.")
            return SettingsSpec()
        self.keys(raw, (), DEFAULTS.keys())
        cache = self.field(raw, (), SettingsSpec, "cache", self.string)
        self.cache_alias(cache)
        key_prefix = self.field(raw, (), SettingsSpec, "key_prefix", self.key_prefix)
        encryption_keys = self.field(raw, (), SettingsSpec, "encryption_keys", self.encryption_keys)
        refresh_ahead = self.field(raw, (), SettingsSpec, "refresh_ahead", self.non_negative)
        lock_timeout = self.field(raw, (), SettingsSpec, "lock_timeout", self.number)
        default_timeout = self.field(raw, (), SettingsSpec, "default_timeout", self.timeout)
        lifetime = self.field(raw, (), SettingsSpec, "token_default_lifetime", self.number)
        min_lifetime = self.field(raw, (), SettingsSpec, "token_min_lifetime", self.non_negative)
        max_bytes = self.field(raw, (), SettingsSpec, "token_max_bytes", lambda v, p: self.integer(v, p, 1024))
        warm = self.field(raw, (), SettingsSpec, "warm", self.optional(self.str_list))
        warm_interval = self.field(raw, (), SettingsSpec, "warm_interval", self.number)
        if refresh_ahead >= lifetime:
            if "TOKEN_DEFAULT_LIFETIME" in raw:
                self.refresh_ahead_warning(("TOKEN_DEFAULT_LIFETIME",), refresh_ahead, lifetime)
            else:
                self.report(
                    W_REFRESH_AHEAD,
                    ("REFRESH_AHEAD",),
                    f"is {refresh_ahead:g}s, not shorter than TOKEN_DEFAULT_LIFETIME ({lifetime:g}s): tokens without an "
                    "expires_in would be due for refresh as soon as they are fetched.",
                    "Lower REFRESH_AHEAD or raise TOKEN_DEFAULT_LIFETIME.",
                )

        pipelines: dict[str, PipelineSpec] = {}
        raw_pipelines = self.read(raw, "PIPELINES", (), self.dict_value, {})
        for name, value in raw_pipelines.items():
            pipeline = self.pipeline(name, value, refresh_ahead=refresh_ahead)
            if pipeline is not None:
                pipelines[name] = pipeline

        clients: dict[str, ClientSpec] = {}
        raw_clients = self.read(raw, "CLIENTS", (), self.dict_value, {})
        for name, value in raw_clients.items():
            client = self.client(name, value, pipelines=raw_pipelines.keys(), default_timeout=default_timeout)
            if client is not None:
                clients[name] = client

        self.subject_tokens(clients, raw_pipelines.keys())
        for name in shared_names(raw_clients, raw_pipelines):
            self.report(E_SHARED_NAME, ("CLIENTS", name), *shared_name_problem(name))

        if warm:
            known = set(raw_clients) | set(raw_pipelines)
            for index, name in enumerate(warm):
                if name not in known:
                    self.report(
                        E_WARM,
                        ("WARM", index),
                        f'names "{name}", which is neither a client nor a pipeline{suggest(name, known)}',
                        "List names from CLIENTS or PIPELINES, or set WARM to None to warm everything.",
                    )
        spec = SettingsSpec(
            cache=cache,
            key_prefix=key_prefix,
            encryption_keys=encryption_keys,
            refresh_ahead=refresh_ahead,
            lock_timeout=lock_timeout,
            default_timeout=default_timeout,
            token_default_lifetime=lifetime,
            token_min_lifetime=min_lifetime,
            token_max_bytes=max_bytes,
            warm=warm,
            warm_interval=warm_interval,
            clients=MappingProxyType(clients),
            pipelines=MappingProxyType(pipelines),
        )
        if spec.uses_tokens:
            self.cache_backend(cache)
            self.warm_interval_warning(spec)
        self.token_limits(spec, raw_pipelines)
        self.debug_filter_warning(raw)
        return spec

    def debug_filter_warning(self, raw: Mapping[str, Any]) -> None:
        """W007: with DEBUG on, the technical 500 page would show secrets Django's default filter does not hide."""
        from django.conf import settings

        from ...debug import FILTER_PATH, exposed_by_default_filter, uses_requestforge_filter

        if not settings.configured or not getattr(settings, "DEBUG", False):
            return
        if uses_requestforge_filter(getattr(settings, "DEFAULT_EXCEPTION_REPORTER_FILTER", None)):
            return
        exposed = exposed_by_default_filter(raw)
        if exposed:
            more = f" (and {len(exposed) - 1} more values)" if len(exposed) > 1 else ""
            self.report(
                W_DEBUG_FILTER,
                exposed[0].path,
                f"is not hidden by Django's default error-page filter{more}: with DEBUG on, the technical 500 page would show it.",
                f'Set DEFAULT_EXCEPTION_REPORTER_FILTER = "{FILTER_PATH}" (or a subclass of it).',
            )

    def token_limits(self, spec: SettingsSpec, raw_pipelines: Mapping[str, Any]) -> None:
        """E045: a lifetime set here below TOKEN_MIN_LIFETIME; E046: LOCK_TIMEOUT too short for any fetch.

        A token endpoint's lifetime below the minimum is refused at run time; a lifetime
        the settings themselves impose (TOKEN_DEFAULT_LIFETIME, a step TTL) would make
        every token of that kind refused or fetched on almost every call, so it is an error here.
        Each fetch must end LEASE_MARGIN seconds before its lease (LOCK_TIMEOUT) does.
        """
        minimum = spec.token_min_lifetime
        if spec.token_default_lifetime < minimum:
            self.report(
                E_MIN_LIFETIME,
                ("TOKEN_DEFAULT_LIFETIME",),
                f"is {spec.token_default_lifetime:g}s, shorter than TOKEN_MIN_LIFETIME ({minimum:g}s).",
                "Raise TOKEN_DEFAULT_LIFETIME or lower TOKEN_MIN_LIFETIME.",
            )
        for name, pipeline in spec.pipelines.items():
            raw_steps = raw_pipelines.get(name, {}).get("STEPS") if isinstance(raw_pipelines.get(name), Mapping) else None
            steps = raw_steps if isinstance(raw_steps, (list, tuple)) else ()  # anything else is reported as E003 already
            indexes = {s.get("NAME"): i for i, s in enumerate(steps) if isinstance(s, Mapping) and isinstance(s.get("NAME"), str)}
            for step in pipeline.steps:
                if step.ttl is not None and step.ttl < minimum and step.name in indexes:
                    self.report(
                        E_MIN_LIFETIME,
                        ("PIPELINES", name, "STEPS", indexes[step.name], "TTL"),
                        f"is {step.ttl:g}s, shorter than TOKEN_MIN_LIFETIME ({minimum:g}s): the step would fetch on almost every call.",
                        "Raise the TTL or lower TOKEN_MIN_LIFETIME.",
                    )
        if spec.uses_tokens and spec.lock_timeout - LEASE_MARGIN < MIN_FETCH_DEADLINE:
            self.report(
                E_FETCH_DEADLINE,
                ("LOCK_TIMEOUT",),
                f"is {spec.lock_timeout:g}s: a token fetch must end {LEASE_MARGIN:g}s before its lease does and gets at least "
                f"{MIN_FETCH_DEADLINE:g}s, so the lease would expire under the process fetching.",
                f"Set LOCK_TIMEOUT to at least {LEASE_MARGIN + MIN_FETCH_DEADLINE:g}s (fetches are cut off at min(TIMEOUT, LOCK_TIMEOUT - "
                f"{LEASE_MARGIN:g}s)).",
            )

    def warm_interval_warning(self, spec: SettingsSpec) -> None:
        """The warm-up must run at least once inside every token's refresh-ahead window.

        A token is due ``min(REFRESH_AHEAD, lifetime / 2)`` seconds before expiry; with
        runs further apart than that, a token can expire between two runs and a request
        then waits for the fetch. Lifetimes known from settings: step TTLs and
        TOKEN_DEFAULT_LIFETIME (an endpoint's own expires_in may be shorter still).
        """
        lifetimes = [step.ttl for pipeline in spec.pipelines.values() for step in pipeline.steps if step.ttl]
        shortest = min([spec.token_default_lifetime, *lifetimes])
        window = min(spec.refresh_ahead, shortest / 2.0)
        if spec.warm_interval >= window:
            self.report(
                W_WARM_INTERVAL,
                ("WARM_INTERVAL",),
                f"is {spec.warm_interval:g}s, not shorter than the refresh-ahead window ({window:g}s = min(REFRESH_AHEAD "
                f"{spec.refresh_ahead:g}s, half the shortest token lifetime {shortest:g}s)): a token can expire between two "
                "warm-up runs, and a request then waits for the token endpoint.",
                f"Run the warm-up more often (WARM_INTERVAL < {window:g}) or raise REFRESH_AHEAD.",
            )

    def key_prefix(self, value: Any, path: Path) -> Any:
        value = self.string(value, path)
        if value is not INVALID and any(c.isspace() or ord(c) < 32 for c in value):
            return self.invalid(path, "must not contain whitespace or control characters (memcached rejects such keys).")
        return value

    def encryption_keys(self, value: Any, path: Path) -> Any:
        if is_blank(value):  # e.g. os.environ.get("KEYS") of an unset or empty variable
            self.report(E_KEYS_MISSING, path, *EMPTY_KEY)
            return INVALID
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return self.invalid(path, f"must be a list of Fernet keys, got {type_name(value)}.")
        keys: list[str] = []
        for index, key in enumerate(value):
            if is_fernet_key(key):
                keys.append(key.decode("ascii") if isinstance(key, bytes) else key)
            elif is_blank(key):
                self.report(E_KEYS_MISSING, (*path, index), *EMPTY_KEY)
            else:
                self.report(
                    E_ENCRYPTION_KEY,
                    (*path, index),
                    "is not a Fernet key (44 characters of url-safe base64 encoding 32 bytes); the value is not shown.",
                    "Generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
                )
        return tuple(keys)

    def _cache_config(self, alias: str) -> Mapping[str, Any] | None:
        caches = self.caches
        if caches is None:
            from django.conf import settings

            caches = getattr(settings, "CACHES", {})
        return caches.get(alias) if isinstance(caches, Mapping) else None

    def cache_alias(self, alias: Any) -> None:
        if not isinstance(alias, str) or self._cache_config(alias) is not None:
            return
        caches = self.caches
        if caches is None:
            from django.conf import settings

            caches = getattr(settings, "CACHES", {})
        self.report(
            E_CACHE_ALIAS,
            ("CACHE",),
            f'is "{alias}", which is not an alias in settings.CACHES{suggest(alias, caches)}',
            f"Add it to CACHES or use one of: {choices_text(caches) or '(none)'}.",
        )

    def cache_backend(self, alias: Any) -> None:
        config = self._cache_config(alias) if isinstance(alias, str) else None
        backend = str(config.get("BACKEND", "")) if isinstance(config, Mapping) else ""
        name = backend.rsplit(".", 1)[-1]
        if name == "LocMemCache":
            detail = (
                f'uses cache "{alias}" ({backend}), which is private to each process: every web and Celery '
                "process fetches its own tokens and the fetch lock does not work across processes."
            )
        elif name == "DummyCache":
            detail = f'uses cache "{alias}" ({backend}), which stores nothing: every request fetches a new token.'
        else:
            return
        self.report(
            W_LOCAL_CACHE, ("CACHE",), detail, "Point CACHE at a shared cache such as django-redis (fine to ignore in development)."
        )
