"""The Celery app of the warm-up integration tests: worker and beat run it as real processes.

``celery -A tests.support.celery_app worker|beat`` with the environment of
:mod:`tests.support.process_settings` plus ``RF_BROKER_URL``. Beat runs
``refresh_due_tokens`` every ``RF_WARM_INTERVAL`` seconds through
:func:`requestforge_django.celery.beat_schedule`. The token signals sent in the worker
are counted in Redis (``rf-signals:<signal>:<name>``), so the test, another process,
can assert that a failure was signalled.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.process_settings")
django.setup()

import redis  # noqa: E402
from celery import Celery  # noqa: E402

from requestforge_django.celery import beat_schedule  # noqa: E402
from requestforge_django.signals import token_obtained, token_refresh_failed  # noqa: E402

app = Celery("rf_tests", broker=os.environ["RF_BROKER_URL"])
app.conf.update(
    imports=("requestforge_django.tasks",),
    beat_schedule=beat_schedule(float(os.environ["RF_WARM_INTERVAL"])),
    beat_max_loop_interval=0.2,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)

_counters = redis.Redis.from_url(os.environ["RF_REDIS_URL"])


def _count(signal_name: str):  # type: ignore[no-untyped-def]
    def receiver(sender, name, **kwargs):  # type: ignore[no-untyped-def]
        _counters.incr(f"rf-signals:{signal_name}:{name}")

    return receiver


_on_obtained = _count("token_obtained")
_on_failed = _count("token_refresh_failed")
token_obtained.connect(_on_obtained)
token_refresh_failed.connect(_on_failed)
