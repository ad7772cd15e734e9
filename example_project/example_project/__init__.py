"""The example project: a shop calling partner APIs through requestforge_django (five clients, two defined in the admin).

The Celery app is imported here (the usual Django + Celery layout) so that
``@shared_task`` functions, including ``requestforge_django.tasks``, bind to it.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
