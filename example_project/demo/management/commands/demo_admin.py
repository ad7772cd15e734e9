"""``manage.py demo_admin``: create (or reset) the demo's admin login and print it, and the entries the admin shows.

DEMO ONLY: the password is fixed (override with ``DEMO_ADMIN_PASSWORD``) because the
demo server listens on 127.0.0.1 only and the login has to be typed by a person.

It also creates or updates the database-defined entries the demo page calls (a
credential, a pipeline and two clients; see :mod:`demo.definitions`), so the admin has
them to show. Run it again after changing ``DEMO_PORT``: the entries follow the port.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ...definitions import DefinitionError, ensure_definitions


class Command(BaseCommand):
    help = (
        "Create or reset the demo superuser (DEMO_ADMIN_USER / DEMO_ADMIN_PASSWORD) and print the login; "
        "create or update the demo's credential, pipeline and clients defined in the database."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DEMO_ADMIN_USER", "demo")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "requestforge-demo")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(f"{verb} the demo admin login (DEMO ONLY):")
        self.stdout.write(f"  URL:      {settings.DEMO_PARTNER_URL}/admin/")
        self.stdout.write(f"  user:     {username}")
        self.stdout.write(f"  password: {password}")
        try:
            lines = ensure_definitions()
        except DefinitionError as exc:
            raise CommandError(f"the demo's database definitions do not pass the checks: {exc}") from exc
        self.stdout.write("Entries defined in the admin (requestforge_django), which the demo page calls too:")
        for line in lines:
            self.stdout.write(line)
