"""The Django app configuration: wires checks and signal receivers once, imports nothing heavy.

Everything is imported inside :meth:`RequestforgeConfig.ready` so that listing the app
in ``INSTALLED_APPS`` costs nothing until Django is set up, and ``requestforge_django.http``
stays importable without Django settings.
"""

from __future__ import annotations

from django.apps import AppConfig

#: ``dispatch_uid`` of the ``setting_changed`` receiver; makes connecting it idempotent.
SETTINGS_RELOAD_UID = "requestforge_django.conf.reload_requestforge_settings"


class RequestforgeConfig(AppConfig):
    name = "requestforge_django"
    label = "requestforge_django"
    verbose_name = "Requestforge (outbound HTTP)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks, the settings-reload receiver and the declarative-client resolver, exactly once.

        ``ready()`` can run more than once in one process (test runners that rebuild
        the app registry, ``django.setup()`` called twice). Both registrations are
        idempotent by construction rather than by a flag: the check registry is a set
        of functions, and the receiver is connected with a ``dispatch_uid``, so a
        second ``ready()`` changes nothing and a fresh app registry is still wired.
        """
        from django.core.signals import setting_changed

        from .checks import register_checks
        from .http.declarative import set_client_resolver
        from .receivers import connect_model_receivers
        from .registry import aget_client, get_client
        from .setting.conf import reload_requestforge_settings

        register_checks()
        connect_model_receivers()  # saving a credential or definition invalidates its tokens everywhere
        setting_changed.connect(reload_requestforge_settings, dispatch_uid=SETTINGS_RELOAD_UID)
        # Declarative clients bound by name (``@http_client("billing")``) resolve through the registry.
        set_client_resolver(get_client, async_resolver=aget_client)
