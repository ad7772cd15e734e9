"""``requestforge_settings``: the one object through which the app reads ``settings.REQUESTFORGE``.

Modelled on Django REST framework's ``api_settings``: attribute access returns the
user's value or the default from :data:`DEFAULTS`, evaluated lazily (so importing this
module never touches ``django.conf.settings``) and cached until :meth:`reload`.
:attr:`RequestforgeSettings.spec` is the validated, normalized view
(:class:`~requestforge_django.setting.SettingsSpec`) that the registry builds clients
and pipelines from.

Why a reload hook: tests use ``override_settings(REQUESTFORGE=...)``, and the
registry caches clients built from the old settings. :func:`reload_requestforge_settings`
(connected to ``setting_changed`` in ``apps.ready()``) clears the cached values, then
calls every callback registered with :meth:`RequestforgeSettings.on_reload`, so the
registry can drop what it built. ``CACHES`` changes reload too, because the token
storage is bound to a cache alias whose backend Django has just replaced.

This is the only module-level state of the app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from .keys import DEFAULTS
from .problems import SETTING_NAME, Problem
from .specs import SettingsSpec
from .validate import parse_settings, validate_settings

__all__ = [
    "DEFAULTS",
    "SETTING_NAME",
    "RELOAD_ON",
    "RequestforgeSettings",
    "import_from_string",
    "reload_requestforge_settings",
    "requestforge_settings",
    "parse_settings",
    "validate_settings",
    "Problem",
]


#: Django settings whose change (``override_settings``, ``settings`` fixture) reloads ours.
RELOAD_ON: frozenset[str] = frozenset({SETTING_NAME, "CACHES"})

ReloadCallback = Callable[[], object]


def import_from_string(value: str, setting_name: str) -> Any:
    """Import a dotted path, or raise ``ImportError`` naming the setting it came from."""
    from django.utils.module_loading import import_string

    try:
        return import_string(value)
    except ImportError as exc:
        raise ImportError(f'Could not import "{value}" for {setting_name}: {type(exc).__name__}: {exc}.') from exc


class RequestforgeSettings:
    """Lazy view of ``settings.REQUESTFORGE`` with defaults; see the module docstring.

    ``requestforge_settings.REFRESH_AHEAD`` is the raw user value or default (exactly
    what was written, for display and for code that needs no normalization);
    ``requestforge_settings.spec`` is the validated :class:`SettingsSpec` and raises
    ``ImproperlyConfigured`` naming the first error.
    """

    def __init__(self, setting_name: str = SETTING_NAME, defaults: Mapping[str, Any] = DEFAULTS) -> None:
        self._setting_name = setting_name
        self._defaults = defaults
        self._lock = threading.RLock()
        self._callbacks: list[ReloadCallback] = []
        self._cached: dict[str, Any] = {}
        self._spec: SettingsSpec | None = None

    @property
    def raw(self) -> Any:
        """The setting exactly as the user wrote it (``{}`` when it is not set); may be invalid."""
        from django.conf import settings

        return getattr(settings, self._setting_name, {})

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in self._defaults:
            raise AttributeError(f"{attr!r} is not a {self._setting_name} setting; known: {', '.join(self._defaults)}")
        try:
            return self._cached[attr]
        except KeyError:
            pass
        raw = self.raw
        if not isinstance(raw, Mapping):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"{self._setting_name} must be a dict, got {type(raw).__name__} (requestforge.E001).")
        value = raw.get(attr, self._defaults[attr])
        self._cached[attr] = value
        return value

    @property
    def spec(self) -> SettingsSpec:
        """The validated, normalized setting; computed once per reload."""
        spec = self._spec
        if spec is None:
            with self._lock:
                if self._spec is None:
                    self._spec = parse_settings(self.raw)
                spec = self._spec
        return spec

    def problems(self) -> list[Problem]:
        """Every problem of the current setting (not cached: ``CACHES`` may have changed)."""
        return validate_settings(self.raw)

    def reload(self) -> None:
        """Forget cached values, then call the reload callbacks in registration order.

        Every callback runs even if an earlier one raises; the first exception is then
        re-raised so a broken callback is not silently ignored.
        """
        with self._lock:
            self._cached = {}
            self._spec = None
            callbacks = list(self._callbacks)
        first_error: BaseException | None = None
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def on_reload(self, callback: ReloadCallback) -> ReloadCallback:
        """Call ``callback()`` after every reload; idempotent, and usable as a decorator."""
        with self._lock:
            if callback not in self._callbacks:
                self._callbacks.append(callback)
        return callback

    def remove_on_reload(self, callback: ReloadCallback) -> None:
        """Stop calling ``callback`` on reload (no error if it was not registered)."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def __repr__(self) -> str:
        return f"<RequestforgeSettings {self._setting_name}>"


requestforge_settings = RequestforgeSettings()


def reload_requestforge_settings(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: reload when ``REQUESTFORGE`` or ``CACHES`` changes."""
    if setting in RELOAD_ON:
        requestforge_settings.reload()
