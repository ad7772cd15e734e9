"""Keeping ``REQUESTFORGE`` secrets off Django's error reports (the ``DEBUG`` technical 500 page, error mails).

Django's :class:`~django.views.debug.SafeExceptionReporterFilter` hides a setting
whose *key* looks secret (``API``, ``AUTH``, ``TOKEN``, ``KEY``, ``SECRET``,
``PASS``...). Inside ``REQUESTFORGE`` that misses a pipeline step's ``DATA``,
``JSON``, ``HEADERS`` and ``PARAMS`` (a ``pin`` or ``device_id`` has an ordinary
name), client ``HEADERS`` with ordinary names, and proxy or base URLs carrying a
password. And for frame locals it hides nothing unless a function is decorated with
``sensitive_variables``.

:class:`RequestForgeExceptionReporterFilter` closes both gaps::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "requestforge_django.debug.RequestForgeExceptionReporterFilter"

* Settings: ``REQUESTFORGE`` is shown with every value masked except a list of
  harmless keys (names, types, timeouts, paths, retry and breaker settings...).
  Mappings keep their keys, so the shape stays readable; URLs keep scheme, host and
  path, with the password and every query value masked. Everything else is Django's.
* Frame locals: a local whose rendering contains a known secret (every secret of the
  setting, every :class:`~requestforge_django.http.secrets.Secret`, token and request
  credential found in the same frame, one level into objects) or a secret-looking
  ``name=value`` is shown masked; a foreign exception (``requests``, ``urllib3``...,
  whose message quotes the full URL) is shown as its redacted stand-in.

``manage.py check`` warns (``requestforge.W007``) when ``DEBUG`` is on, the setting
holds values the default filter would show, and this filter (or a subclass) is not
configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pprint import pformat
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from .http.exceptions import HttpClientException, RedactedException, redact_exception
from .http.masking import is_sensitive_name, mask_mapping, mask_text, mask_url
from .http.messages import HttpRequest
from .http.secrets import Secret

__all__ = [
    "FILTER_PATH",
    "RequestForgeExceptionReporterFilter",
    "cleanse_requestforge",
    "exposed_by_default_filter",
    "uses_requestforge_filter",
]

#: The dotted path to put in ``DEFAULT_EXCEPTION_REPORTER_FILTER``.
FILTER_PATH = "requestforge_django.debug.RequestForgeExceptionReporterFilter"

SETTING = "REQUESTFORGE"

# Keys whose values are shown as they are, per level of the setting. Every other key's
# value is masked (an unknown key too: safer to hide a new harmless key than to show a new secret).
_TOP_KEYS = frozenset(
    {
        "CACHE",
        "KEY_PREFIX",
        "REFRESH_AHEAD",
        "LOCK_TIMEOUT",
        "DEFAULT_TIMEOUT",
        "TOKEN_DEFAULT_LIFETIME",
        "TOKEN_MIN_LIFETIME",
        "TOKEN_MAX_BYTES",
        "WARM",
        "WARM_INTERVAL",
    }
)
_CLIENT_KEYS = frozenset(
    {
        "TIMEOUT",
        "VERIFY_SSL",
        "CLIENT_CERT",
        "ALLOW_REDIRECTS",
        "MAX_REDIRECTS",
        "POOL_CONNECTIONS",
        "POOL_MAXSIZE",
        "TRUST_ENV",
        "SENSITIVE_HEADERS",
        "RETRY",
        "CIRCUIT_BREAKER",
        "RATE_LIMIT",
        "HOOKS",
        "TRUSTED_ORIGINS",
        "CROSS_ORIGIN_REDIRECTS",
        "MAX_RESPONSE_BYTES",
        "TOTAL_TIMEOUT",
    }
)
_AUTH_KEYS = frozenset(
    {
        "TYPE",
        "CLIENT_ID",
        "USERNAME",
        "SCOPE",
        "AUDIENCE",
        "RESOURCE",
        "HEADER",
        "QUERY_PARAM",
        "CREDENTIAL",
        "PIPELINE",
        "EXCLUDED_PATHS",
        "CLIENT_AUTH_METHOD",
        "REJECTED_STATUSES",
        "TOKEN_TIMEOUT",
        "KEY_ID",
        "ALGORITHM",
        "SUBJECT_TOKEN_FROM",
        "SUBJECT_TOKEN_TYPE",
    }
)
_PIPELINE_KEYS = frozenset({"REFRESH_FROM_STEP"})
_STEP_KEYS = frozenset(
    {"NAME", "FETCHER", "METHOD", "TOKEN_HEADER", "TOKEN_FIELD", "TOKEN_TYPE", "EXPIRES_IN_FIELD", "REFRESH_TOKEN_FIELD"}
    | {"TTL", "DEPENDS_ON", "TIMEOUT"}
)
#: URL-valued keys: shown with the password and every query value masked.
_URL_KEYS = frozenset({"BASE_URL", "TOKEN_URL", "URL", "ISSUER"})


@dataclass(frozen=True)
class Hidden:
    """One value :func:`cleanse_requestforge` masked: where, what it was, and whether it is a secret.

    ``secret`` is ``False`` for values hidden only because they are not on the
    harmless list (a ``User-Agent`` header, an unknown key): they do not count for W007.
    """

    path: tuple[str | int, ...]
    value: Any
    secret: bool


class _Cleanser:
    def __init__(self, substitute: str) -> None:
        self.substitute = substitute
        self.hidden: list[Hidden] = []

    def setting(self, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return self.leaves(raw, (), secret=True)
        out: dict[Any, Any] = {}
        for key, value in raw.items():
            path = (key,)
            if key in _TOP_KEYS:
                out[key] = value
            elif key == "CLIENTS" and isinstance(value, Mapping):
                out[key] = {name: self.client(client, (key, name)) for name, client in value.items()}
            elif key == "PIPELINES" and isinstance(value, Mapping):
                out[key] = {name: self.pipeline(pipeline, (key, name)) for name, pipeline in value.items()}
            else:
                out[key] = self.leaves(value, path, secret=key == "ENCRYPTION_KEYS")
        return out

    def client(self, raw: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, Mapping):
            return self.leaves(raw, path, secret=True)
        listed = raw.get("SENSITIVE_HEADERS")
        sensitive: list[Any] | tuple[Any, ...] = listed if isinstance(listed, (list, tuple)) else ()
        out: dict[Any, Any] = {}
        for key, value in raw.items():
            where = (*path, key)
            if key in _CLIENT_KEYS:
                out[key] = value
            elif key in _URL_KEYS:
                out[key] = self.url(value, where)
            elif key == "AUTH":
                out[key] = self.auth(value, where)
            elif key == "HEADERS" and isinstance(value, Mapping):
                extra = [name for name in sensitive if isinstance(name, str)]
                out[key] = {
                    name: self.leaves(item, (*where, name), secret=not isinstance(name, str) or is_sensitive_name(name, extra))
                    for name, item in value.items()
                }
            elif key == "PROXIES" and isinstance(value, Mapping):
                out[key] = {scheme: self.url(url, (*where, scheme)) for scheme, url in value.items()}
            else:
                out[key] = self.leaves(value, where, secret=False)
        return out

    def auth(self, raw: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, Mapping):
            return self.leaves(raw, path, secret=True)
        out: dict[Any, Any] = {}
        for key, value in raw.items():
            where = (*path, key)
            if key in _AUTH_KEYS:
                out[key] = value
            elif key in _URL_KEYS:
                out[key] = self.url(value, where)
            else:
                out[key] = self.leaves(value, where, secret=True)
        return out

    def pipeline(self, raw: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, Mapping):
            return self.leaves(raw, path, secret=True)
        out: dict[Any, Any] = {}
        for key, value in raw.items():
            where = (*path, key)
            if key in _PIPELINE_KEYS:
                out[key] = value
            elif key == "STEPS" and isinstance(value, (list, tuple)):
                out[key] = [self.step(step, (*where, index)) for index, step in enumerate(value)]
            else:
                out[key] = self.leaves(value, where, secret=True)
        return out

    def step(self, raw: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, Mapping):
            return self.leaves(raw, path, secret=True)
        out: dict[Any, Any] = {}
        for key, value in raw.items():
            where = (*path, key)
            if key in _STEP_KEYS:
                out[key] = value
            elif key in _URL_KEYS:
                out[key] = self.url(value, where)
            else:  # DATA, JSON, HEADERS, PARAMS, OPTIONS: any field may be the secret one
                out[key] = self.leaves(value, where, secret=True)
        return out

    def url(self, value: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(value, str):
            return self.leaves(value, path, secret=True)
        masked = mask_url(value, all_params=True)
        if masked != value:
            self.hidden.append(Hidden(path, value, True))
        return masked

    def leaves(self, value: Any, path: tuple[Any, ...], *, secret: bool) -> Any:
        """Keys and shape kept, every leaf but ``None`` and booleans masked."""
        if isinstance(value, Mapping):
            return {key: self.leaves(item, (*path, key), secret=secret) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.leaves(item, (*path, index), secret=secret) for index, item in enumerate(value)]
        if value is None or isinstance(value, bool):
            return value
        self.hidden.append(Hidden(path, value.reveal() if isinstance(value, Secret) else value, secret))
        return self.substitute


def cleanse_requestforge(raw: Any, substitute: str = SafeExceptionReporterFilter.cleansed_substitute) -> Any:
    """``raw`` (the ``REQUESTFORGE`` value) as an error report may show it; see the module docstring."""
    return _Cleanser(substitute).setting(raw)


def hidden_values(raw: Any) -> list[Hidden]:
    """Every value :func:`cleanse_requestforge` masks in ``raw``."""
    cleanser = _Cleanser(SafeExceptionReporterFilter.cleansed_substitute)
    cleanser.setting(raw)
    return cleanser.hidden


def exposed_by_default_filter(raw: Any) -> list[Hidden]:
    """The secrets of ``raw`` that Django's own ``SafeExceptionReporterFilter`` would show on the error page."""
    shown = set(_leaf_texts(SafeExceptionReporterFilter().cleanse_setting(SETTING, raw)))
    return [item for item in hidden_values(raw) if item.secret and _text(item.value) in shown]


def uses_requestforge_filter(path: object) -> bool:
    """Whether ``DEFAULT_EXCEPTION_REPORTER_FILTER`` (a dotted path) is our filter or a subclass of it."""
    from django.utils.module_loading import import_string

    if not isinstance(path, str):
        return False
    try:
        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, RequestForgeExceptionReporterFilter)


def _text(value: Any) -> str:
    return value.reveal() if isinstance(value, Secret) else str(value)


def _leaf_texts(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaf_texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaf_texts(item)
    elif value is not None and not isinstance(value, bool):
        yield _text(value)


# -- frame locals ------------------------------------------------------------------------------------


class _Shown:
    """A frame local replaced by its masked rendering (``pprint`` shows it without quotes)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


#: How far into a frame local's attributes and items secrets are looked for.
_SEARCH_DEPTH = 2
_SEARCH_ITEMS = 200


def secrets_in(values: Iterable[Any]) -> set[str]:
    """Plain values of the secrets reachable from ``values``: Secrets, tokens, a request's credentials."""
    from .tokens.data import TokenData

    found: set[str] = set()
    seen: set[int] = set()
    budget = [_SEARCH_ITEMS]

    def visit(value: Any, depth: int) -> None:
        if budget[0] <= 0 or id(value) in seen or value is None or isinstance(value, (bool, int, float, bytes, str)):
            return
        seen.add(id(value))
        budget[0] -= 1
        if isinstance(value, Secret):
            found.add(value.reveal())
            return
        if isinstance(value, TokenData):
            found.update(v for v in (value.access_token, value.refresh_token) if v)
            return
        if isinstance(value, HttpRequest):
            found.update(value.secret_values())
            return
        if depth <= 0:
            return
        if isinstance(value, Mapping):
            try:
                items = list(value.items())[:_SEARCH_ITEMS]
            except Exception:
                return
            for key, item in items:
                if isinstance(key, str) and isinstance(item, str) and is_sensitive_name(key):
                    found.add(item)
                visit(item, depth - 1)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in list(value)[:_SEARCH_ITEMS]:
                visit(item, depth - 1)
        else:
            for attrs in _attributes(value):
                visit(attrs, depth - 1)

    for value in values:
        visit(value, _SEARCH_DEPTH)
    return {value for value in found if isinstance(value, str) and len(value) >= 4}


def _attributes(value: Any) -> list[Any]:
    """An object's instance attributes (``__dict__`` and ``__slots__``), never calling properties."""
    found: list[Any] = list(getattr(value, "__dict__", {}).values()) if isinstance(getattr(value, "__dict__", None), dict) else []
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            try:
                found.append(object.__getattribute__(value, name))
            except (AttributeError, TypeError):
                continue
    return found


def _cleanse_local(value: Any, secrets: set[str]) -> Any:
    """``value``, or its masked rendering when that differs from what Django would show."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, BaseException) and not isinstance(value, (HttpClientException, RedactedException)):
        return _Shown(repr(redact_exception(value, tuple(secrets))))
    try:
        shown = pformat(value)
        cleaned = mask_text(pformat(mask_mapping(value)) if isinstance(value, Mapping) else shown, _longest_first(secrets))
    except Exception:
        return value  # Django shows "Error in formatting" itself
    return value if cleaned == shown else _Shown(cleaned)


class RequestForgeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's safe filter, plus ``REQUESTFORGE`` cleansing and masked frame locals (see the module docstring)."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if key == SETTING:
            return cleanse_requestforge(value, self.cleansed_substitute)
        return super().cleanse_setting(key, value)

    def known_secrets(self) -> set[str]:
        """Every secret value of the current ``REQUESTFORGE`` setting (looked for in frame locals)."""
        from django.conf import settings

        raw = getattr(settings, SETTING, None)
        if raw is None:
            return set()
        return {_text(item.value) for item in hidden_values(raw) if item.secret and len(_text(item.value)) >= 4}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = list(super().get_traceback_frame_variables(request, tb_frame))
        try:
            secrets = self.known_secrets() | secrets_in(value for _, value in variables)
        except Exception:  # an error report must never fail because of its filter
            secrets = set()
        return [(name, _cleanse_local(value, secrets)) for name, value in variables]


def _longest_first(secrets: Iterable[Any]) -> list[Any]:
    """Longer secrets first, so one that contains another is masked whole."""
    return sorted(secrets, key=lambda secret: len(str(secret)), reverse=True)
