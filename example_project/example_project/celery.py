"""The Celery app of the example project: configured from Django settings (``CELERY_*``).

Without ``REDIS_URL`` there is no broker: tasks run eagerly, in the process that calls
``.delay()`` (see ``CELERY_TASK_ALWAYS_EAGER`` in settings), and the periodic warm-up
runs in a thread of the web process instead of Celery beat. With ``REDIS_URL`` set, run
a worker with beat next to the web server::

    cd example_project && celery -A example_project worker --beat --loglevel=info
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # finds requestforge_django.tasks
