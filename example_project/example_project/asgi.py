"""ASGI entry point, for the async view ``/async/``.

From the example_project directory::

    DEMO_PORT=8000 uvicorn example_project.asgi:application --port 8000

Under ASGI, ``async def`` views run on the server's event loop, so one process serves many
pages that are waiting on partner calls at the same time; sync views still work (Django runs
them in a worker thread).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

application = get_asgi_application()
