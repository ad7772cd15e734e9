"""The one place where the rules of the ``REQUESTFORGE`` setting live.

A single pass over the raw dict both collects :class:`Problem` values and builds the
:mod:`~requestforge_django.specs` dataclasses, so ``manage.py check``
(:mod:`requestforge_django.checks`), the settings object
(:func:`parse_settings`, raising ``ImproperlyConfigured``) and admin form validation
(:func:`validate_client`, :func:`validate_pipeline`) can never disagree about what is
valid.

Design rules:

* A problem names the exact key as it is written in settings
  (``REQUESTFORGE["CLIENTS"]["billing"]["AUTH"]["CLIENT_SECRET"]``), so the user can
  find it, and carries the client or pipeline name separately for the admin.
* A problem never quotes a value that may be secret: it says what type was found, or
  quotes only values from closed vocabularies (``TYPE``, ``STRATEGY``, ``METHOD``...),
  names (of clients, pipelines, steps) and import paths.
* Every check id is listed in :data:`CHECKS` and documented in ``docs/checks.md``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .http.config import CROSS_ORIGIN_REDIRECTS
from .http.messages import HttpMethod
from .http.paths import excluded_path_problem, normalize_excluded_paths
from .http.secrets import Secret
from .specs import (
    AUTH_TYPES,
    BUILTIN_FETCHERS,
    CLIENT_AUTH_METHODS,
    DEFAULTS,
    RETRY_STRATEGIES,
    AuthSpec,
    BreakerSpec,
    ClientSpec,
    PipelineSpec,
    RateLimitSpec,
    RetrySpec,
    SettingsSpec,
    StepSpec,
    freeze,
)
from .tokens.data import token_type_problem
from .tokens.providers import LEASE_MARGIN, MIN_FETCH_DEADLINE
from .tokens.templates import Placeholder as TemplatePlaceholder
from .tokens.templates import TemplateSyntaxError, parse_template

__all__ = [
    "CHECKS",
    "CheckInfo",
    "Level",
    "Problem",
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

SETTING_NAME = "REQUESTFORGE"

PathItem = str | int
Path = tuple[PathItem, ...]


class Level(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class CheckInfo:
    """What a check id means; the source of the table in ``docs/checks.md``."""

    id: str
    level: Level
    title: str


def _info(id_: str, title: str) -> CheckInfo:
    return CheckInfo(id_, Level.WARNING if ".W" in id_ else Level.ERROR, title)


E_NOT_A_DICT = "requestforge.E001"
E_UNKNOWN_KEY = "requestforge.E002"
E_INVALID = "requestforge.E003"
E_REQUIRED = "requestforge.E004"
E_CONFLICT = "requestforge.E005"
E_CACHE_ALIAS = "requestforge.E006"
E_ENCRYPTION_KEY = "requestforge.E007"
E_NAME = "requestforge.E008"
E_KEYS_MISSING = "requestforge.E009"  # an empty entry here; missing keys by checks_encryption (needs the database)
E_AUTH_TYPE = "requestforge.E010"
E_AUTH_MISSING = "requestforge.E011"
E_AUTH_PIPELINE = "requestforge.E012"
E_IMPORT = "requestforge.E013"
E_IMPORT_KIND = "requestforge.E014"
E_STEP_DUPLICATE = "requestforge.E021"
E_FETCHER = "requestforge.E022"
E_DEPENDS_UNKNOWN = "requestforge.E023"
E_DEPENDS_ORDER = "requestforge.E024"
E_DEPENDS_CYCLE = "requestforge.E025"
E_TEMPLATE = "requestforge.E026"
E_REFRESH_STEP = "requestforge.E027"
E_WARM = "requestforge.E030"
E_DEFINED_TWICE = "requestforge.E031"  # reported by checks_encryption and the admin forms
E_SHARED_NAME = "requestforge.E032"
E_HEADER_VALUE = "requestforge.E040"
E_PATH_MISSING = "requestforge.E041"
E_TRUSTED_ORIGIN = "requestforge.E042"
E_MIN_LIFETIME = "requestforge.E045"
E_FETCH_DEADLINE = "requestforge.E046"
E_TOKEN_TYPE = "requestforge.E047"
E_CREDENTIAL_ORIGIN = "requestforge.E043"  # reported by checks_encryption and the admin forms (database definitions)
W_LOCAL_CACHE = "requestforge.W001"
W_REFRESH_AHEAD = "requestforge.W002"
W_IGNORED = "requestforge.W003"
W_NO_TLS_VERIFY = "requestforge.W004"
W_PLAIN_HTTP = "requestforge.W005"
W_WARM_INTERVAL = "requestforge.W006"
W_DEBUG_FILTER = "requestforge.W007"
W_CREDENTIAL_MISSING = "requestforge.W008"  # reported by checks_encryption (needs the database)

#: Every check id, in documentation order.
CHECKS: Mapping[str, CheckInfo] = MappingProxyType(
    {
        info.id: info
        for info in (
            _info(E_NOT_A_DICT, "REQUESTFORGE is not a dict"),
            _info(E_UNKNOWN_KEY, "unknown key (with a did-you-mean)"),
            _info(E_INVALID, "a value has the wrong type or is out of range"),
            _info(E_REQUIRED, "a required key is missing"),
            _info(E_CONFLICT, "two keys that exclude each other are both set"),
            _info(E_CACHE_ALIAS, "CACHE is not an alias in settings.CACHES"),
            _info(E_ENCRYPTION_KEY, "an ENCRYPTION_KEYS entry is not a Fernet key"),
            _info(E_NAME, "a client, pipeline or step name is not usable"),
            _info(E_KEYS_MISSING, "ENCRYPTION_KEYS (or one of its entries) is empty"),
            _info(E_AUTH_TYPE, "unknown AUTH TYPE"),
            _info(E_AUTH_MISSING, "a key required by the AUTH TYPE is missing"),
            _info(E_AUTH_PIPELINE, "AUTH PIPELINE names an undefined pipeline"),
            _info(E_IMPORT, "an import string (HOOKS, FETCHER) cannot be imported"),
            _info(E_IMPORT_KIND, "an imported hook or fetcher is not the right kind of object"),
            _info(E_STEP_DUPLICATE, "two steps of a pipeline have the same NAME"),
            _info(E_FETCHER, "unknown FETCHER"),
            _info(E_DEPENDS_UNKNOWN, "DEPENDS_ON names a step that does not exist"),
            _info(E_DEPENDS_ORDER, "DEPENDS_ON names a step that comes later"),
            _info(E_DEPENDS_CYCLE, "steps depend on each other in a cycle"),
            _info(E_TEMPLATE, "a {step} placeholder names a step not in DEPENDS_ON"),
            _info(E_REFRESH_STEP, "REFRESH_FROM_STEP names a step that does not exist"),
            _info(E_WARM, "WARM names an undefined client or pipeline"),
            _info(E_DEFINED_TWICE, "a name is defined in settings and in the database"),
            _info(E_SHARED_NAME, "a client and a pipeline share a name, and the client is not authenticated by that pipeline"),
            _info(E_HEADER_VALUE, "a header name or value cannot be sent (line break, NUL, not a token)"),
            _info(E_PATH_MISSING, "VERIFY_SSL or CLIENT_CERT names a file or folder that does not exist"),
            _info(E_TRUSTED_ORIGIN, "a TRUSTED_ORIGINS entry is not an origin (scheme://host[:port], nothing more)"),
            _info(E_MIN_LIFETIME, "TOKEN_DEFAULT_LIFETIME or a step TTL is shorter than TOKEN_MIN_LIFETIME"),
            _info(E_FETCH_DEADLINE, "LOCK_TIMEOUT leaves no time for a token fetch to finish inside the lease"),
            _info(E_TOKEN_TYPE, "a step's TOKEN_TYPE is not one word of visible ASCII"),
            _info(E_CREDENTIAL_ORIGIN, "a database client would send its credential to an origin the credential is not bound to"),
            _info(W_LOCAL_CACHE, "the token cache is per-process (LocMemCache) or stores nothing (DummyCache)"),
            _info(W_REFRESH_AHEAD, "REFRESH_AHEAD is not shorter than a token lifetime"),
            _info(W_IGNORED, "a key has no effect in its context"),
            _info(W_NO_TLS_VERIFY, "VERIFY_SSL is False"),
            _info(W_PLAIN_HTTP, "credentials or tokens would be sent over plain http://"),
            _info(W_WARM_INTERVAL, "WARM_INTERVAL is too long for the refresh-ahead window"),
            _info(W_DEBUG_FILTER, "DEBUG is on and Django's default error-page filter would show REQUESTFORGE secrets"),
            _info(W_CREDENTIAL_MISSING, "a client's AUTH CREDENTIAL names no active credential in the database"),
        )
    }
)


def render_key(path: Iterable[PathItem]) -> str:
    """``("CLIENTS", "billing", "AUTH")`` -> ``REQUESTFORGE["CLIENTS"]["billing"]["AUTH"]``."""
    rendered = SETTING_NAME
    for item in path:
        rendered += f"[{item}]" if isinstance(item, int) else f'["{item}"]'
    return rendered


@dataclass(frozen=True)
class Problem:
    """One finding about the setting: an error (the setting cannot work) or a warning.

    ``path`` is the key path below ``REQUESTFORGE``; ``detail`` is the message without
    the key (what an admin form shows next to a field); ``message`` is both together.
    """

    id: str
    level: Level
    path: Path
    detail: str
    hint: str | None = None

    @property
    def key(self) -> str:
        return render_key(self.path)

    @property
    def message(self) -> str:
        return f"{self.key} {self.detail}"

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR

    @property
    def client(self) -> str | None:
        """The client this problem is about, if any."""
        return self._named("CLIENTS")

    @property
    def pipeline(self) -> str | None:
        """The pipeline this problem is about, if any."""
        return self._named("PIPELINES")

    def _named(self, section: str) -> str | None:
        if len(self.path) >= 2 and self.path[0] == section and isinstance(self.path[1], str):
            return self.path[1]
        return None

    def __str__(self) -> str:
        return f"{self.message} ({self.id})"


def did_you_mean(word: object, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (case-insensitively), or ``None`` if none is close."""
    if not isinstance(word, str) or not word:
        return None
    by_fold = {c.casefold(): c for c in candidates}
    folded = word.casefold()
    if folded in by_fold:
        return by_fold[folded]
    matches = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=0.6)
    return by_fold[matches[0]] if matches else None


def _suggest(word: object, candidates: Iterable[str]) -> str:
    """The end of a sentence: a did-you-mean question, or a full stop."""
    match = did_you_mean(word, candidates)
    return f'; did you mean "{match}"?' if match else "."


def _choices(candidates: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in candidates)


# -- value predicates -------------------------------------------------------------------

_INVALID: Any = object()  # sentinel: the value was reported, use the default

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CLIENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STEP_NAME_RE = re.compile(r"^[A-Za-z_]\w*$")
_KEY_NAME_RULE = "Use letters, digits, '_', '.' and '-', starting with a letter or digit: the name is part of cache keys."
_NAME_RULES: Mapping[str, tuple[re.Pattern[str], str]] = MappingProxyType(
    {
        "client name": (_CLIENT_NAME_RE, _KEY_NAME_RULE),
        "pipeline name": (_CLIENT_NAME_RE, _KEY_NAME_RULE),
        "step name": (_STEP_NAME_RE, "Use a Python identifier (letters, digits, '_'): the name is used in {step} placeholders."),
    }
)
_HTTP_METHODS = tuple(m.value for m in HttpMethod)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type(value: object) -> str:
    """How a value is described in a message: its type, never its content."""
    return "None" if value is None else type(value).__name__


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(value).netloc)
    except ValueError:
        return False


def _is_loopback(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def _is_blank(value: object) -> bool:
    """``None``, or a string of nothing but whitespace: what an unset or empty environment variable gives."""
    return value is None or (isinstance(value, (str, bytes)) and not value.strip())


#: E009 for an empty ENCRYPTION_KEYS (entry): the message and hint.
_EMPTY_KEY = (
    "is empty (an unset or empty environment variable?); a Fernet key is needed here.",
    "Set the variable to a key generated with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
)


def _is_fernet_key(value: object) -> bool:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    if not isinstance(raw, bytes):
        return False
    try:
        return len(base64.urlsafe_b64decode(raw)) == 32 and len(raw) == 44
    except (binascii.Error, ValueError):
        return False


# -- schema -----------------------------------------------------------------------------

CLIENT_KEYS: tuple[str, ...] = (
    "BASE_URL", "TIMEOUT", "HEADERS", "VERIFY_SSL", "CLIENT_CERT", "ALLOW_REDIRECTS", "MAX_REDIRECTS",
    "POOL_CONNECTIONS", "POOL_MAXSIZE", "PROXIES", "TRUST_ENV", "SENSITIVE_HEADERS",
    "RETRY", "CIRCUIT_BREAKER", "RATE_LIMIT", "AUTH", "HOOKS", "TRUSTED_ORIGINS",
    "CROSS_ORIGIN_REDIRECTS", "MAX_RESPONSE_BYTES", "TOTAL_TIMEOUT",
)  # fmt: skip
RETRY_KEYS: tuple[str, ...] = (
    "STRATEGY", "MAX_RETRIES", "BASE_DELAY", "MAX_DELAY", "MULTIPLIER", "JITTER",
    "RETRY_ON_STATUS", "RETRY_NON_IDEMPOTENT", "RESPECT_RETRY_AFTER",
)  # fmt: skip
#: Retry keys that a strategy does not use (reported as W003, not silently dropped).
RETRY_UNUSED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "none": frozenset(RETRY_KEYS) - {"STRATEGY"},
        "simple": frozenset({"MULTIPLIER", "JITTER"}),
        "exponential": frozenset(),
    }
)
BREAKER_KEYS: tuple[str, ...] = ("FAILURE_THRESHOLD", "RECOVERY_TIMEOUT", "SHARED")
RATE_LIMIT_KEYS: tuple[str, ...] = ("RATE", "BURST", "WAIT", "MAX_WAIT", "SHARED")

_SECRET_AUTH_KEYS = ("CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "TOKEN", "KEY")
#: AUTH keys each TYPE accepts (besides TYPE).
AUTH_KEYS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_credentials": (
            "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "EXTRA_PARAMS", "CREDENTIAL", "EXCLUDED_PATHS",
            "CLIENT_AUTH_METHOD", "REJECTED_STATUSES", "TOKEN_TIMEOUT",
        ),
        "password": (
            "TOKEN_URL", "USERNAME", "PASSWORD", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "EXTRA_PARAMS", "CREDENTIAL", "EXCLUDED_PATHS",
            "CLIENT_AUTH_METHOD", "REJECTED_STATUSES", "TOKEN_TIMEOUT",
        ),
        "bearer": ("TOKEN", "CREDENTIAL", "EXCLUDED_PATHS"),
        "api_key": ("KEY", "HEADER", "QUERY_PARAM", "CREDENTIAL", "EXCLUDED_PATHS"),
        "basic": ("USERNAME", "PASSWORD", "CREDENTIAL", "EXCLUDED_PATHS"),
        "pipeline": ("PIPELINE", "EXCLUDED_PATHS", "REJECTED_STATUSES"),
    }
)  # fmt: skip
#: Keys that must be present for each TYPE unless CREDENTIAL supplies them.
AUTH_SECRETS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client_credentials": ("CLIENT_ID", "CLIENT_SECRET"),
        "password": ("USERNAME", "PASSWORD"),
        "bearer": ("TOKEN",),
        "api_key": ("KEY",),
        "basic": ("USERNAME", "PASSWORD"),
        "pipeline": (),
    }
)
ALL_AUTH_KEYS: tuple[str, ...] = ("TYPE", *dict.fromkeys(k for keys in AUTH_KEYS_BY_TYPE.values() for k in keys))
API_KEY_DEFAULT_HEADER = "X-API-Key"

PIPELINE_KEYS: tuple[str, ...] = ("STEPS", "REFRESH_FROM_STEP")
STEP_KEYS: tuple[str, ...] = (
    "NAME", "FETCHER", "URL", "METHOD", "HEADERS", "DATA", "JSON", "PARAMS", "TOKEN_HEADER", "TOKEN_FIELD",
    "TOKEN_TYPE", "EXPIRES_IN_FIELD", "REFRESH_TOKEN_FIELD", "TTL", "DEPENDS_ON", "TIMEOUT", "OPTIONS",
)  # fmt: skip
STEP_UNUSED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "header": frozenset({"TOKEN_FIELD", "EXPIRES_IN_FIELD", "REFRESH_TOKEN_FIELD", "OPTIONS"}),
        "body": frozenset({"TOKEN_HEADER", "OPTIONS"}),
    }
)
#: Step keys whose string values are templates (rendered by the token layer's fetchers).
_TEMPLATED_STEP_KEYS = ("HEADERS", "DATA", "JSON", "PARAMS")


@dataclass(frozen=True)
class _Placeholder:
    """One ``{...}`` found in a template value: its step, or why it is malformed."""

    path: Path
    step: str | None
    error: str | None = None


def _placeholders(value: Any, path: Path) -> Iterator[_Placeholder]:
    """Every placeholder in the strings (and :class:`Secret` values) inside ``value``.

    Parsed by ``tokens.templates.parse_template``, the parser the fetchers use, so the
    checks accept exactly the templates that render; a syntax error carries that
    parser's text, which quotes a placeholder only when it is ``{step}`` or
    ``{step.field}`` (and nothing of a :class:`Secret`), so a brace-wrapped value that
    is not a placeholder (possibly a secret) is never echoed.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _placeholders(item, (*path, str(key)))
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _placeholders(item, (*path, index))
        return
    secret = isinstance(value, Secret)
    if not isinstance(value, str) and not secret:
        return
    try:
        parts = parse_template(value.reveal() if secret else value, secret=secret)
    except TemplateSyntaxError as exc:
        yield _Placeholder(path, None, exc.detail)
        return
    for part in parts:
        if isinstance(part, TemplatePlaceholder):
            yield _Placeholder(path, part.step)


# -- names shared by a client and a pipeline ------------------------------------------------------


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


# -- the validator --------------------------------------------------------------------------


class _Validator:
    """Walks the raw setting once, recording problems and building specs.

    Each ``_section`` method returns the spec for its part (built with defaults where
    a value was invalid, since that spec is only used when there are no errors).
    """

    def __init__(self, caches: Mapping[str, Any] | None) -> None:
        self.caches = caches
        self.problems: list[Problem] = []

    # -- recording ----------------------------------------------------------------
    def report(self, check_id: str, path: Path, detail: str, hint: str | None = None) -> None:
        self.problems.append(Problem(check_id, CHECKS[check_id].level, path, detail, hint))

    def invalid(self, path: Path, detail: str, hint: str | None = None) -> Any:
        self.report(E_INVALID, path, detail, hint)
        return _INVALID

    def keys(self, raw: Mapping[Any, Any], path: Path, allowed: Collection[str], unused: Mapping[str, str] | None = None) -> None:
        """Report unknown keys (E002, with a did-you-mean) and known-but-unused ones (W003)."""
        unused = unused or {}
        for key in raw:
            if key in allowed:
                continue
            if key in unused:
                self.report(W_IGNORED, (*path, key), f"has no effect {unused[key]}.", "Remove it.")
                continue
            shown = key if isinstance(key, str) else repr(key)
            self.report(
                E_UNKNOWN_KEY,
                (*path, shown),
                f"is not a known key{_suggest(key, [*allowed, *unused])}",
                f"Known keys here: {', '.join(sorted(allowed))}.",
            )

    def mapping(self, value: Any, path: Path) -> Mapping[Any, Any] | None:
        if isinstance(value, Mapping):
            return value
        self.invalid(path, f"must be a dict, got {_type(value)}.")
        return None

    # -- typed readers: return the normalized value, or the default if absent/invalid ----
    def read(self, raw: Mapping[Any, Any], key: str, path: Path, check: Callable[[Any, Path], Any], default: Any = None) -> Any:
        if key not in raw:
            return default
        value = check(raw[key], (*path, key))
        return default if value is _INVALID else value

    def required(self, raw: Mapping[Any, Any], key: str, path: Path, check: Callable[[Any, Path], Any], what: str = "") -> Any:
        if key not in raw:
            self.report(E_REQUIRED, (*path, key), f"is required{what}.")
            return _INVALID
        return check(raw[key], (*path, key))

    def string(self, value: Any, path: Path, *, secret: bool = False) -> Any:
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, str):
            return self.invalid(path, "must not be empty.")
        what = "a non-empty string" + (" (the value is not shown because it may be secret)" if secret else "")
        return self.invalid(path, f"must be {what}, got {_type(value)}.")

    def secret(self, value: Any, path: Path) -> Any:
        return self.string(value, path, secret=True)

    def optional_string(self, value: Any, path: Path) -> Any:
        return None if value is None else self.string(value, path)

    def url(self, value: Any, path: Path) -> Any:
        if _is_http_url(value):
            return value
        if not isinstance(value, str):
            return self.invalid(path, f"must be a URL string starting with http:// or https://, got {_type(value)}.")
        return self.invalid(path, "must be an absolute URL starting with http:// or https://.", "For example https://api.example.com.")

    def boolean(self, value: Any, path: Path) -> Any:
        if isinstance(value, bool):
            return value
        return self.invalid(path, f"must be True or False, got {_type(value)}.")

    def integer(self, value: Any, path: Path, minimum: int = 0) -> Any:
        if _is_int(value) and value >= minimum:
            return value
        return self.invalid(path, f"must be an integer >= {minimum}, got {self._shown_number(value)}.")

    def positive_int(self, value: Any, path: Path) -> Any:
        return self.integer(value, path, 1)

    def number(self, value: Any, path: Path, *, positive: bool = True, minimum: float | None = None) -> Any:
        """A float of seconds or units; ``timedelta`` is accepted and converted to seconds."""
        if isinstance(value, timedelta):
            value = value.total_seconds()
        if _is_number(value):
            value = float(value)
            if minimum is not None and value >= minimum:
                return value
            if minimum is None and (value > 0 if positive else value >= 0):
                return value
        bound = f">= {minimum:g}" if minimum is not None else ("> 0" if positive else ">= 0")
        return self.invalid(path, f"must be a number {bound} (seconds may also be a timedelta), got {self._shown_number(value)}.")

    def non_negative(self, value: Any, path: Path) -> Any:
        return self.number(value, path, positive=False)

    def optional_number(self, value: Any, path: Path) -> Any:
        return None if value is None else self.number(value, path)

    @staticmethod
    def _shown_number(value: Any) -> str:
        # Numbers are safe to show and help; anything else is described by type only.
        return repr(value) if _is_number(value) or isinstance(value, (int, float)) else _type(value)

    def timeout(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) == 2 and all(_is_number(v) and v > 0 for v in value):
                return (float(value[0]), float(value[1]))
            return self.invalid(path, "must be a number > 0 or a (connect, read) pair of numbers > 0.")
        return self.number(value, path)

    def str_map(self, value: Any, path: Path) -> Any:
        """A dict of str to str (HEADERS, PROXIES, EXTRA_PARAMS); values are never shown."""
        return self._typed_map(value, path, (str,), "a string")

    def header_map(self, value: Any, path: Path) -> Any:
        """HEADERS: a str to str dict whose names are HTTP tokens and whose values hold no line break or NUL.

        Caught here (E040) because ``requests`` would otherwise refuse the header on every
        call at run time, or worse, a line break would let a value inject a second header.
        """
        mapping = self.str_map(value, path)
        if mapping is _INVALID:
            return mapping
        before = len(self.problems)
        for key, item in mapping.items():
            if not _HEADER_NAME.fullmatch(key):
                self.report(E_HEADER_VALUE, (*path, key), "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only).")
            elif any(char in item for char in "\r\n\0"):
                self.report(E_HEADER_VALUE, (*path, key), "contains a line break or NUL; a header value must be a single line.")
        return mapping if len(self.problems) == before else _INVALID

    def existing_path(self, value: Any, path: Path) -> None:
        """E041 for a CA bundle or certificate path that is not there (a typo would fail every call)."""
        if isinstance(value, str) and not os.path.exists(value):
            self.report(E_PATH_MISSING, path, f"names {value!r}, which does not exist on this machine.")

    def scalar_map(self, value: Any, path: Path) -> Any:
        """A dict of str to str/number/bool (form DATA, query PARAMS); values are never shown."""
        return self._typed_map(value, path, (str, int, float, bool), "a string, number or bool")

    def _typed_map(self, value: Any, path: Path, types: tuple[type, ...], what: str) -> Any:
        mapping = self.mapping(value, path)
        if mapping is None:
            return _INVALID
        before = len(self.problems)
        for key, item in mapping.items():
            if not isinstance(key, str) or not key:
                self.invalid(path, f"keys must be non-empty strings, got {_type(key)}.")
            elif not isinstance(item, types):
                self.invalid((*path, key), f"must be {what}, got {_type(item)}.")
        return MappingProxyType(dict(mapping)) if len(self.problems) == before else _INVALID

    def str_list(self, value: Any, path: Path) -> Any:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return self.invalid(path, f"must be a list of strings, got {_type(value)}.")
        before = len(self.problems)
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.invalid((*path, index), f"must be a non-empty string, got {_type(item)}.")
        return tuple(value) if len(self.problems) == before else _INVALID

    def optional(self, check: Callable[[Any, Path], Any]) -> Callable[[Any, Path], Any]:
        """``check`` that lets ``None`` through (a key set to None means "not configured")."""
        return lambda value, path: None if value is None else check(value, path)

    def dict_value(self, value: Any, path: Path) -> Any:
        mapping = self.mapping(value, path)
        return _INVALID if mapping is None else mapping

    def choice(self, value: Any, path: Path, choices: Iterable[str], *, case: Callable[[str], str] = str.lower) -> Any:
        """One of a closed vocabulary, matched case-insensitively; the value is safe to quote."""
        choices = tuple(choices)
        if isinstance(value, str) and case(value) in choices:
            return case(value)
        shown = f'"{value}"' if isinstance(value, str) else _type(value)
        return self.invalid(path, f"must be one of {_choices(choices)}, got {shown}{_suggest(value, choices)}")

    def name(self, value: Any, path: Path, what: str) -> bool:
        """Client and pipeline names end up in cache keys; step names in ``{step}`` placeholders."""
        pattern, rule = _NAME_RULES[what]
        if isinstance(value, str) and pattern.match(value):
            return True
        shown = f'"{value}"' if isinstance(value, str) else _type(value)
        self.report(E_NAME, path, f"has an unusable {what} {shown}.", rule)
        return False

    def importable(self, value: Any, path: Path, kind_check: Callable[[Any], str | None]) -> Any:
        """Import a dotted path (E013 if it fails); ``kind_check`` returns why the object is wrong (E014)."""
        from django.utils.module_loading import import_string

        if not isinstance(value, str) or "." not in value:
            return self.invalid(
                path, f"must be a dotted import path string, got {_type(value) if not isinstance(value, str) else repr(value)}."
            )
        try:
            obj = import_string(value)
        except Exception as exc:  # ImportError, or whatever the module raised while importing
            self.report(
                E_IMPORT,
                path,
                f'cannot import "{value}": {type(exc).__name__}: {exc}',
                "Check the dotted path and that the module imports.",
            )
            return _INVALID
        wrong = kind_check(obj)
        if wrong:
            self.report(E_IMPORT_KIND, path, f'imports "{value}", which {wrong}.')
            return _INVALID
        return value

    # -- top level ------------------------------------------------------------------
    def settings(self, raw: Any) -> SettingsSpec:
        if not isinstance(raw, Mapping):
            self.report(E_NOT_A_DICT, (), f"must be a dict, got {_type(raw)}.", "See docs/checks.md for the shape of the setting.")
            return SettingsSpec()
        self.keys(raw, (), DEFAULTS.keys())
        cache = self.read(raw, "CACHE", (), self.string, DEFAULTS["CACHE"])
        self.cache_alias(cache)
        key_prefix = self.read(raw, "KEY_PREFIX", (), self.key_prefix, DEFAULTS["KEY_PREFIX"])
        encryption_keys = self.read(raw, "ENCRYPTION_KEYS", (), self.encryption_keys, ())
        refresh_ahead = self.read(raw, "REFRESH_AHEAD", (), self.non_negative, float(DEFAULTS["REFRESH_AHEAD"]))
        lock_timeout = self.read(raw, "LOCK_TIMEOUT", (), self.number, float(DEFAULTS["LOCK_TIMEOUT"]))
        default_timeout = self.read(raw, "DEFAULT_TIMEOUT", (), self.timeout, float(DEFAULTS["DEFAULT_TIMEOUT"]))
        lifetime = self.read(raw, "TOKEN_DEFAULT_LIFETIME", (), self.number, float(DEFAULTS["TOKEN_DEFAULT_LIFETIME"]))
        min_lifetime = self.read(raw, "TOKEN_MIN_LIFETIME", (), self.non_negative, float(DEFAULTS["TOKEN_MIN_LIFETIME"]))
        max_bytes = self.read(raw, "TOKEN_MAX_BYTES", (), lambda v, p: self.integer(v, p, 1024), DEFAULTS["TOKEN_MAX_BYTES"])
        warm = self.read(raw, "WARM", (), self.optional(self.str_list), None)
        warm_interval = self.read(raw, "WARM_INTERVAL", (), self.number, float(DEFAULTS["WARM_INTERVAL"]))
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

        for name in shared_names(raw_clients, raw_pipelines):
            self.report(E_SHARED_NAME, ("CLIENTS", name), *shared_name_problem(name))

        if warm:
            known = set(raw_clients) | set(raw_pipelines)
            for index, name in enumerate(warm):
                if name not in known:
                    self.report(
                        E_WARM,
                        ("WARM", index),
                        f'names "{name}", which is neither a client nor a pipeline{_suggest(name, known)}',
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

        from .debug import FILTER_PATH, exposed_by_default_filter, uses_requestforge_filter

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
            indexes = {s.get("NAME"): i for i, s in enumerate(raw_steps or ()) if isinstance(s, Mapping) and isinstance(s.get("NAME"), str)}
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

    def token_type(self, value: Any, path: Path) -> Any:
        """A step's TOKEN_TYPE: one word of visible ASCII (E047)."""
        text = self.string(value, path)
        if isinstance(text, str):
            problem = token_type_problem(text)
            if problem:
                self.report(E_TOKEN_TYPE, path, f"{problem}; it goes in front of the token in a header.", 'Use one word such as "Bearer".')
                return _INVALID
        return text

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
        if value is not _INVALID and any(c.isspace() or ord(c) < 32 for c in value):
            return self.invalid(path, "must not contain whitespace or control characters (memcached rejects such keys).")
        return value

    def encryption_keys(self, value: Any, path: Path) -> Any:
        if _is_blank(value):  # e.g. os.environ.get("KEYS") of an unset or empty variable
            self.report(E_KEYS_MISSING, path, *_EMPTY_KEY)
            return _INVALID
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return self.invalid(path, f"must be a list of Fernet keys, got {_type(value)}.")
        keys: list[str] = []
        for index, key in enumerate(value):
            if _is_fernet_key(key):
                keys.append(key.decode("ascii") if isinstance(key, bytes) else key)
            elif _is_blank(key):
                self.report(E_KEYS_MISSING, (*path, index), *_EMPTY_KEY)
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
            f'is "{alias}", which is not an alias in settings.CACHES{_suggest(alias, caches)}',
            f"Add it to CACHES or use one of: {_choices(caches) or '(none)'}.",
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

    def refresh_ahead_warning(self, path: Path, refresh_ahead: float, lifetime: float) -> None:
        self.report(
            W_REFRESH_AHEAD,
            path,
            f"is {lifetime:g}s, not longer than REFRESH_AHEAD ({refresh_ahead:g}s): the token would be due for refresh "
            "as soon as it is fetched, so every use would fetch a new one.",
            "Lower REFRESH_AHEAD or raise the lifetime.",
        )

    def plain_http(self, url: Any, path: Path, what: str) -> None:
        if isinstance(url, str) and url.startswith("http://") and not _is_loopback(url):
            self.report(W_PLAIN_HTTP, path, f"uses plain http://, so {what} would cross the network unencrypted.", "Use https://.")

    # -- clients ----------------------------------------------------------------------
    def client(self, name: Any, raw: Any, *, pipelines: Collection[str], default_timeout: Any = 30.0) -> ClientSpec | None:
        path: Path = ("CLIENTS", name if isinstance(name, str) else repr(name))
        self.name(name, path, "client name")
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, path, CLIENT_KEYS)
        base_url = self.required(raw, "BASE_URL", path, self.url)
        base_url = base_url.rstrip("/") if isinstance(base_url, str) else ""
        verify = self.read(raw, "VERIFY_SSL", path, self.verify_ssl, True)
        if verify is False:
            self.report(
                W_NO_TLS_VERIFY,
                (*path, "VERIFY_SSL"),
                "is False: TLS certificates are not checked, so anyone on the network path can read and alter the traffic.",
                "Set it to the path of a CA bundle instead.",
            )
        auth = self.read(raw, "AUTH", path, self.optional(lambda v, p: self.auth(v, p, pipelines)), None)
        if auth is not None:
            self.plain_http(raw.get("BASE_URL"), (*path, "BASE_URL"), "the credentials or tokens of AUTH")
        return ClientSpec(
            name=name if isinstance(name, str) else repr(name),
            base_url=base_url,
            timeout=self.read(raw, "TIMEOUT", path, self.timeout, default_timeout),
            headers=self.read(raw, "HEADERS", path, self.header_map, MappingProxyType({})),
            verify_ssl=verify,
            client_cert=self.read(raw, "CLIENT_CERT", path, self.client_cert, None),
            allow_redirects=self.read(raw, "ALLOW_REDIRECTS", path, self.boolean, True),
            max_redirects=self.read(raw, "MAX_REDIRECTS", path, self.integer, 30),
            pool_connections=self.read(raw, "POOL_CONNECTIONS", path, self.positive_int, 10),
            pool_maxsize=self.read(raw, "POOL_MAXSIZE", path, self.positive_int, 10),
            proxies=self.read(raw, "PROXIES", path, self.optional(self.str_map), None),
            trust_env=self.read(raw, "TRUST_ENV", path, self.boolean, True),
            sensitive_headers=frozenset(self.read(raw, "SENSITIVE_HEADERS", path, self.str_list, ())),
            retry=self.read(raw, "RETRY", path, self.optional(self.retry), None),
            circuit_breaker=self.read(raw, "CIRCUIT_BREAKER", path, self.optional(self.breaker), None),
            rate_limit=self.read(raw, "RATE_LIMIT", path, self.optional(self.rate_limit), None),
            auth=auth,
            hooks=self.read(raw, "HOOKS", path, self.hooks, ()),
            trusted_origins=self.read(raw, "TRUSTED_ORIGINS", path, self.trusted_origins, ()),
            cross_origin_redirects=self.read(
                raw, "CROSS_ORIGIN_REDIRECTS", path, lambda v, p: self.choice(v, p, CROSS_ORIGIN_REDIRECTS), "strip"
            ),
            max_response_bytes=self.read(raw, "MAX_RESPONSE_BYTES", path, self.optional(self.positive_int), None),
            total_timeout=self.read(raw, "TOTAL_TIMEOUT", path, self.optional_number, None),
        )

    def trusted_origins(self, value: Any, path: Path) -> Any:
        """TRUSTED_ORIGINS: a list of ``scheme://host[:port]``; E042 names each malformed entry."""
        from .http.config import parse_origin
        from .http.exceptions import ConfigurationError

        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return self.invalid(path, f"must be a list of origins such as 'https://api.example.com', got {_type(value)}.")
        before = len(self.problems)
        origins: list[str] = []
        for index, item in enumerate(value):
            try:
                origin = str(parse_origin(item))
            except ConfigurationError as exc:
                hint = "Write only scheme://host[:port], e.g. 'https://auth.example.com'."
                self.report(E_TRUSTED_ORIGIN, (*path, index), f"{exc.message}.", hint)
                continue
            if origin not in origins:
                origins.append(origin)
        return tuple(origins) if len(self.problems) == before else _INVALID

    def verify_ssl(self, value: Any, path: Path) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
            self.existing_path(value, path)
            return value
        return self.invalid(path, f"must be True, False or the path of a CA bundle, got {_type(value)}.")

    def client_cert(self, value: Any, path: Path) -> Any:
        if value is None or (isinstance(value, str) and value):
            self.existing_path(value, path)
            return value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
            self.existing_path(value[0], (*path, 0))
            self.existing_path(value[1], (*path, 1))
            return (value[0], value[1])
        return self.invalid(path, f"must be a certificate path or a (cert, key) pair of paths, got {_type(value)}.")

    def retry(self, value: Any, path: Path) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return _INVALID
        strategy = self.read(raw, "STRATEGY", path, lambda v, p: self.choice(v, p, RETRY_STRATEGIES), "exponential")
        unused = {key: f'with STRATEGY "{strategy}"' for key in RETRY_UNUSED[strategy]}
        self.keys(raw, path, [k for k in RETRY_KEYS if k not in unused], unused)
        base_delay = self.read(raw, "BASE_DELAY", path, self.non_negative, 0.5)
        max_delay = self.read(raw, "MAX_DELAY", path, self.non_negative, max(30.0, base_delay))
        if max_delay < base_delay and "MAX_DELAY" in raw:
            self.invalid((*path, "MAX_DELAY"), f"must be >= BASE_DELAY ({base_delay:g}), got {max_delay:g}.")
        return RetrySpec(
            strategy=strategy,
            max_retries=0 if strategy == "none" else self.read(raw, "MAX_RETRIES", path, self.integer, 3),
            base_delay=base_delay,
            max_delay=max_delay,
            multiplier=self.read(raw, "MULTIPLIER", path, lambda v, p: self.number(v, p, minimum=1.0), 2.0),
            jitter=self.read(raw, "JITTER", path, self.boolean, True),
            retry_on_status=self.read(raw, "RETRY_ON_STATUS", path, self.statuses, RetrySpec.retry_on_status),
            retry_non_idempotent=self.read(raw, "RETRY_NON_IDEMPOTENT", path, self.boolean, False),
            respect_retry_after=self.read(raw, "RESPECT_RETRY_AFTER", path, self.boolean, True),
        )

    def statuses(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple, set, frozenset)) and all(_is_int(v) and 100 <= v <= 599 for v in value):
            return frozenset(value)
        return self.invalid(path, "must be a list of HTTP status codes (integers 100-599).")

    def rejected_statuses(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple, set, frozenset)) and value and all(_is_int(v) and 400 <= v <= 499 for v in value):
            return frozenset(value)
        return self.invalid(path, "must be a non-empty list of HTTP 4xx status codes (integers 400-499), e.g. [401, 403].")

    def breaker(self, value: Any, path: Path) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return _INVALID
        self.keys(raw, path, BREAKER_KEYS)
        return BreakerSpec(
            failure_threshold=self.read(raw, "FAILURE_THRESHOLD", path, self.positive_int, 5),
            recovery_timeout=self.read(raw, "RECOVERY_TIMEOUT", path, self.number, 30.0),
            shared=self.read(raw, "SHARED", path, self.boolean, False),
        )

    def rate_limit(self, value: Any, path: Path) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return _INVALID
        self.keys(raw, path, RATE_LIMIT_KEYS)
        rate = self.required(raw, "RATE", path, self.number, " (requests per second)")
        rate = 1.0 if rate is _INVALID else rate
        return RateLimitSpec(
            rate=rate,
            burst=self.read(raw, "BURST", path, self.positive_int, max(1, math.ceil(rate))),
            wait=self.read(raw, "WAIT", path, self.boolean, True),
            max_wait=self.read(raw, "MAX_WAIT", path, self.optional(self.non_negative), None),
            shared=self.read(raw, "SHARED", path, self.boolean, False),
        )

    def hooks(self, value: Any, path: Path) -> Any:
        items = self.str_list(value, path)
        if items is _INVALID:
            return _INVALID
        ok = all([self.importable(item, (*path, index), _hook_kind) is not _INVALID for index, item in enumerate(items)])
        return items if ok else _INVALID

    # -- auth -------------------------------------------------------------------------
    def auth(self, value: Any, path: Path, pipelines: Collection[str]) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return _INVALID
        if "TYPE" not in raw:
            self.keys(raw, path, ALL_AUTH_KEYS)
            self.report(E_REQUIRED, (*path, "TYPE"), f"is required; one of {_choices(AUTH_TYPES)}.")
            return _INVALID
        type_ = raw["TYPE"]
        if not (isinstance(type_, str) and type_.lower() in AUTH_TYPES):
            self.keys(raw, path, ALL_AUTH_KEYS)
            shown = f'"{type_}"' if isinstance(type_, str) else _type(type_)
            self.report(
                E_AUTH_TYPE,
                (*path, "TYPE"),
                f"is {shown}, not a known AUTH TYPE{_suggest(type_, AUTH_TYPES)}",
                f"Use one of {_choices(AUTH_TYPES)}.",
            )
            return _INVALID
        type_ = type_.lower()
        allowed = ("TYPE", *AUTH_KEYS_BY_TYPE[type_])
        self.keys(raw, path, allowed, {k: f'with AUTH TYPE "{type_}"' for k in ALL_AUTH_KEYS if k not in allowed})

        def get(key: str, check: Callable[[Any, Path], Any]) -> Any:
            return self.read(raw, key, path, check, None) if key in allowed else None

        credential = get("CREDENTIAL", self.string)
        secrets = {key: get(key, self.secret) for key in _SECRET_AUTH_KEYS}
        if credential:
            for key in _SECRET_AUTH_KEYS:
                if key in raw and key in allowed:
                    self.report(
                        E_CONFLICT,
                        (*path, key),
                        f'is set together with CREDENTIAL "{credential}"; the credential row supplies it.',
                        f"Remove {key} from settings, or remove CREDENTIAL.",
                    )
        else:
            for key in AUTH_SECRETS_BY_TYPE[type_]:
                if key not in raw:
                    self.report(
                        E_AUTH_MISSING,
                        (*path, key),
                        f'is required for AUTH TYPE "{type_}" (or set CREDENTIAL to the name of an admin-edited credential).',
                    )
        if type_ in ("client_credentials", "password"):
            if "TOKEN_URL" not in raw:
                self.report(E_AUTH_MISSING, (*path, "TOKEN_URL"), f'is required for AUTH TYPE "{type_}".')
            self.plain_http(raw.get("TOKEN_URL"), (*path, "TOKEN_URL"), "the client credentials")
        client_auth_method = get("CLIENT_AUTH_METHOD", lambda value, p: self.choice(value, p, CLIENT_AUTH_METHODS))
        if client_auth_method == "client_secret_basic" and not credential:
            for key in ("CLIENT_ID", "CLIENT_SECRET"):
                if key not in raw and key not in AUTH_SECRETS_BY_TYPE[type_]:
                    self.report(
                        E_AUTH_MISSING,
                        (*path, key),
                        'is required with CLIENT_AUTH_METHOD "client_secret_basic": the client authenticates with HTTP Basic.',
                        'Set it, or use CLIENT_AUTH_METHOD "client_secret_post".',
                    )
        header = get("HEADER", self.string)
        query_param = get("QUERY_PARAM", self.string)
        if header and query_param:
            self.report(
                E_CONFLICT, (*path, "QUERY_PARAM"), "is set together with HEADER; an API key goes in one place.", "Remove one of them."
            )
        pipeline = None
        if type_ == "pipeline":
            pipeline = self.read(raw, "PIPELINE", path, self.string, None)
            if "PIPELINE" not in raw:
                self.report(E_AUTH_MISSING, (*path, "PIPELINE"), 'is required for AUTH TYPE "pipeline": the name of an entry of PIPELINES.')
            elif pipeline is not None and pipeline not in pipelines:
                self.report(
                    E_AUTH_PIPELINE,
                    (*path, "PIPELINE"),
                    f'names pipeline "{pipeline}", which is not defined{_suggest(pipeline, pipelines)}',
                    f'Define it in REQUESTFORGE["PIPELINES"]; defined: {_choices(pipelines) or "(none)"}.',
                )
        return AuthSpec(
            type=type_,
            token_url=get("TOKEN_URL", self.url),
            client_id=secrets["CLIENT_ID"],
            client_secret=secrets["CLIENT_SECRET"],
            scope=get("SCOPE", self.scope),
            username=secrets["USERNAME"],
            password=secrets["PASSWORD"],
            token=secrets["TOKEN"],
            key=secrets["KEY"],
            header=header or (API_KEY_DEFAULT_HEADER if type_ == "api_key" and not query_param else None),
            query_param=query_param,
            credential=credential,
            pipeline=pipeline,
            extra_params=get("EXTRA_PARAMS", self.str_map) or MappingProxyType({}),
            excluded_paths=get("EXCLUDED_PATHS", self.excluded_paths) or (),
            client_auth_method=client_auth_method or CLIENT_AUTH_METHODS[0],
            rejected_statuses=get("REJECTED_STATUSES", self.rejected_statuses) or frozenset({401}),
            token_timeout=get("TOKEN_TIMEOUT", self.optional_number),
        )

    def excluded_paths(self, value: Any, path: Path) -> Any:
        """EXCLUDED_PATHS, normalised by the one function every auth hook uses (``http.paths``)."""
        items = self.str_list(value, path)
        if items is _INVALID:
            return _INVALID
        problems = [(index, problem) for index, item in enumerate(items) if (problem := excluded_path_problem(item))]
        for index, problem in problems:
            self.invalid((*path, index), f"{problem}.")
        return _INVALID if problems else normalize_excluded_paths(items)

    def scope(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)):
            items = self.str_list(value, path)
            return items if items is _INVALID else " ".join(items)
        return self.string(value, path)

    # -- pipelines ---------------------------------------------------------------------
    def pipeline(self, name: Any, raw: Any, *, refresh_ahead: float = 60.0) -> PipelineSpec | None:
        path: Path = ("PIPELINES", name if isinstance(name, str) else repr(name))
        self.name(name, path, "pipeline name")
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, path, PIPELINE_KEYS)
        raw_steps = self.required(raw, "STEPS", path, self.step_list, ": a list of step dicts")
        raw_steps = [] if raw_steps is _INVALID else raw_steps
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
        refresh_from = self.read(raw, "REFRESH_FROM_STEP", path, self.optional_string, None)
        if refresh_from is not None and refresh_from not in seen:
            self.report(
                E_REFRESH_STEP,
                (*path, "REFRESH_FROM_STEP"),
                f'names step "{refresh_from}", which is not a step of this pipeline{_suggest(refresh_from, seen)}',
                f"Steps: {_choices(seen) or '(none)'}.",
            )
        return PipelineSpec(name=name if isinstance(name, str) else repr(name), steps=tuple(steps), refresh_from_step=refresh_from)

    def step_list(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)) and value:
            return list(value)
        if isinstance(value, (list, tuple)):
            return self.invalid(path, "must not be empty: a pipeline needs at least one step.")
        return self.invalid(path, f"must be a non-empty list of step dicts, got {_type(value)}.")

    def step(self, raw: Any, path: Path, *, refresh_ahead: float) -> StepSpec | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        name = self.required(raw, "NAME", path, lambda v, p: v if self.name(v, p, "step name") else _INVALID)
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
        data = self.read(raw, "DATA", path, self.optional(self.body_data), None)
        json_body = self.read(raw, "JSON", path, self.json_body, None)
        if data is not None and json_body is not None:
            self.report(
                E_CONFLICT, (*path, "JSON"), "is set together with DATA; a request has one body.", "Send a form (DATA) or JSON, not both."
            )
        ttl = self.read(raw, "TTL", path, self.optional_number, None)
        if ttl is not None and refresh_ahead >= ttl:
            self.refresh_ahead_warning((*path, "TTL"), refresh_ahead, ttl)
        return StepSpec(
            name=name if isinstance(name, str) else "",
            fetcher=fetcher or "body",
            url=url if isinstance(url, str) else "",
            method=self.read(raw, "METHOD", path, lambda v, p: self.choice(v, p, _HTTP_METHODS, case=str.upper), "POST"),
            headers=self.read(raw, "HEADERS", path, self.header_map, MappingProxyType({})),
            data=data,
            json=json_body,
            params=self.read(raw, "PARAMS", path, self.scalar_map, MappingProxyType({})),
            token_header=None if token_header is _INVALID else token_header,
            token_field=self.read(raw, "TOKEN_FIELD", path, self.string, "access_token"),
            token_type=self.read(raw, "TOKEN_TYPE", path, self.token_type, "Bearer"),
            expires_in_field=self.read(raw, "EXPIRES_IN_FIELD", path, self.string, "expires_in"),
            refresh_token_field=self.read(raw, "REFRESH_TOKEN_FIELD", path, self.optional_string, None),
            ttl=ttl,
            depends_on=self.read(raw, "DEPENDS_ON", path, self.str_list, ()),
            timeout=self.read(raw, "TIMEOUT", path, self.optional_number, None),
            options=self.read(raw, "OPTIONS", path, self.options, MappingProxyType({})),
        )

    def fetcher(self, value: Any, path: Path) -> Any:
        if isinstance(value, str) and value.lower() in BUILTIN_FETCHERS:
            return value.lower()
        if isinstance(value, str) and "." in value:
            return self.importable(value, path, _fetcher_kind)
        shown = f'"{value}"' if isinstance(value, str) else _type(value)
        self.report(
            E_FETCHER,
            path,
            f"is {shown}, not a known fetcher{_suggest(value, BUILTIN_FETCHERS)}",
            f"Use {_choices(BUILTIN_FETCHERS)} or the dotted path of a TokenFetcherInterface subclass.",
        )
        return _INVALID

    def body_data(self, value: Any, path: Path) -> Any:
        """Form DATA: a dict of scalars, or an already-encoded string body."""
        return value if isinstance(value, str) else self.scalar_map(value, path)

    def json_body(self, value: Any, path: Path) -> Any:
        if value is None:
            return None
        if isinstance(value, (Mapping, list, tuple)):
            return freeze(value)
        return self.invalid(path, f"must be a dict or list (the JSON body), got {_type(value)}.")

    def options(self, value: Any, path: Path) -> Any:
        mapping = self.mapping(value, path)
        if mapping is None:
            return _INVALID
        if not all(isinstance(k, str) and k.isidentifier() for k in mapping):
            return self.invalid(path, "keys must be keyword-argument names of the fetcher class.")
        return freeze(mapping)

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
                        f'names step "{dep}", which is not a step of this pipeline{_suggest(dep, index_of)}',
                        f"Steps: {_choices(index_of)}.",
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
            if isinstance(url, str) and any(p.step for p in _placeholders(url, ())):
                self.report(
                    E_TEMPLATE,
                    (*path, index, "URL"),
                    "contains a {step} placeholder, but URL is not a template; tokens go in HEADERS, DATA, JSON or PARAMS.",
                )
            for key in _TEMPLATED_STEP_KEYS:
                if key not in raw_step:
                    continue
                for found in _placeholders(raw_step[key], (*path, index, key)):
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
                        detail = f'uses the placeholder "{{{ref}}}", which names no step of this pipeline{_suggest(ref, index_of)}'
                        hint = "Placeholders name steps listed in DEPENDS_ON; write {{ and }} for literal braces."
                    self.report(E_TEMPLATE, found.path, detail, hint)


def _hook_kind(obj: Any) -> str | None:
    from .http.hooks import ErrorHookInterface, RequestHookInterface, ResponseHookInterface

    interfaces = (RequestHookInterface, ResponseHookInterface, ErrorHookInterface)
    if isinstance(obj, type) and issubclass(obj, interfaces):
        return None
    if isinstance(obj, interfaces):
        return None
    return "implements none of RequestHookInterface, ResponseHookInterface, ErrorHookInterface (AUTH configures auth hooks)"


def _fetcher_kind(obj: Any) -> str | None:
    from .tokens import TokenFetcherInterface

    if not isinstance(obj, type):
        return "is not a class"
    if not issubclass(obj, TokenFetcherInterface):
        return "is not a TokenFetcherInterface subclass"
    return None


# -- public API -------------------------------------------------------------------------------


def validate_settings(raw: Any, *, caches: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every problem of a raw ``REQUESTFORGE`` value, errors and warnings, in setting order.

    ``caches`` defaults to ``settings.CACHES`` (read now); pass it to validate a setting
    for another configuration.
    """
    validator = _Validator(caches)
    validator.settings(raw)
    return validator.problems


def raise_first_error(problems: Iterable[Problem]) -> None:
    """Raise ``ImproperlyConfigured`` naming the first error; warnings never raise."""
    from django.core.exceptions import ImproperlyConfigured

    errors = [p for p in problems if p.is_error]
    if errors:
        more = f" (and {len(errors) - 1} more; run manage.py check)" if len(errors) > 1 else ""
        raise ImproperlyConfigured(f"{errors[0]}{more}")


def parse_settings(raw: Any, *, caches: Mapping[str, Any] | None = None) -> SettingsSpec:
    """The validated, normalized :class:`SettingsSpec`; raises ``ImproperlyConfigured`` on the first error."""
    validator = _Validator(caches)
    spec = validator.settings(raw)
    raise_first_error(validator.problems)
    return spec


def validate_client(
    name: str, raw: Any, *, pipelines: Collection[str] = (), default_timeout: float | tuple[float, float] = 30.0
) -> list[Problem]:
    """Problems of one client definition (an entry of ``CLIENTS`` or an admin-defined client).

    ``pipelines`` are the names an ``AUTH`` of TYPE ``pipeline`` may refer to.
    """
    validator = _Validator({})
    validator.client(name, raw, pipelines=pipelines, default_timeout=default_timeout)
    return validator.problems


def parse_client(
    name: str, raw: Any, *, pipelines: Collection[str] = (), default_timeout: float | tuple[float, float] = 30.0
) -> ClientSpec:
    """One client's :class:`ClientSpec`; raises ``ImproperlyConfigured`` on the first error."""
    validator = _Validator({})
    spec = validator.client(name, raw, pipelines=pipelines, default_timeout=default_timeout)
    raise_first_error(validator.problems)
    assert spec is not None  # a None spec always comes with an error
    return spec


def validate_pipeline(name: str, raw: Any, *, refresh_ahead: float = float(DEFAULTS["REFRESH_AHEAD"])) -> list[Problem]:
    """Problems of one pipeline definition (an entry of ``PIPELINES`` or an admin-defined pipeline)."""
    validator = _Validator({})
    validator.pipeline(name, raw, refresh_ahead=refresh_ahead)
    return validator.problems


def parse_pipeline(name: str, raw: Any, *, refresh_ahead: float = float(DEFAULTS["REFRESH_AHEAD"])) -> PipelineSpec:
    """One pipeline's :class:`PipelineSpec`; raises ``ImproperlyConfigured`` on the first error."""
    validator = _Validator({})
    spec = validator.pipeline(name, raw, refresh_ahead=refresh_ahead)
    raise_first_error(validator.problems)
    assert spec is not None
    return spec
