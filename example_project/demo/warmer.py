"""The warm-up that Celery beat would run, as a thread of the web process, for the broker-less demo.

Trade-off: a thread in one web process is enough for this single-process demo, but
in production every web process would run its own loop (harmless -- each token is
still fetched once, under the cross-process lease -- but wasteful) and the loop dies
with its process. With a broker, run ``refresh_due_tokens`` from Celery beat instead
(``example_project/celery.py``, ``docs/celery.md``).
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections

from requestforge_django.warming import warm

logger = logging.getLogger("demo.warmer")

_lock = threading.Lock()
_thread: threading.Thread | None = None

#: Seconds to wait before the first run, so the server is listening (the partner lives in it).
FIRST_RUN_DELAY = 2.0


def start(interval: float) -> threading.Thread:
    """Start the loop once per process; later calls return the running thread."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_loop, args=(interval,), name="demo-token-warmer", daemon=True)
            _thread.start()
            logger.info("Token warm-up thread started: every %g s (what Celery beat does with a broker)", interval)
        return _thread


def _loop(interval: float) -> None:
    time.sleep(min(interval, FIRST_RUN_DELAY))
    while True:
        try:
            for result in warm():
                if result.status in ("renewed", "failed", "error"):
                    log = logger.info if result.ok else logger.warning
                    log("warm-up: %s %s%s", result.label, result.status, f" ({result.error})" if result.error else "")
        except Exception:
            logger.exception("warm-up run failed")
        finally:
            close_old_connections()
        time.sleep(interval)
