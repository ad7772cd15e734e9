from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "requestforge demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Start the in-process warm-up when ``scripts/demo.sh`` asked for it (no Celery beat without a broker)."""
        from django.conf import settings

        if getattr(settings, "DEMO_WARM_THREAD", False):
            from . import warmer

            warmer.start(float(settings.REQUESTFORGE.get("WARM_INTERVAL", 30)))
