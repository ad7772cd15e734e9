"""A long-lived Django process that calls clients from the registry on command (stdin/stdout, JSON lines).

Run as ``python -m tests.support.registry_worker`` with
``DJANGO_SETTINGS_MODULE=tests.support.process_settings``. Each input line is a client
name; the worker sends ``GET /api/protected`` through ``get_client(name)`` and answers
``{"status": ..., "token": <fingerprint of the token used>}``. Only fingerprints ever
leave the process.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import django

    django.setup()
    from requestforge_django import get_client, get_token_manager
    from tests.support.token_server import PROTECTED_PATH
    from tests.support.workers import fingerprint

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        response = get_client(name).get(PROTECTED_PATH)
        token = get_token_manager(name).get_token().access_token
        print(json.dumps({"status": response.status_code, "token": fingerprint(token)}), flush=True)


if __name__ == "__main__":
    main()
