"""The demo's admin-edited entries: a credential, a pipeline and two clients kept in the database.

``manage.py demo_admin`` calls :func:`ensure_definitions` on every start, so the admin
has something to show and the page calls clients that exist only in the database:

* the credential ``crm`` (client id and secret, the secret encrypted with
  ``ENCRYPTION_KEYS``), bound to the partner's origin: clients defined in the admin may
  send it there and nowhere else (``docs/admin.md``, "Where a credential may be sent");
* the client ``crm``: OAuth2 client credentials with that credential, against the
  partner's token URL (client id and secret in HTTP Basic);
* the pipeline ``kiosk``: device token (from a response header) -> app token;
* the client ``catalog``, authenticated by that pipeline.

Idempotent: it updates the rows to the values below (the partner's origin includes
``DEMO_PORT``, which changes between runs) and never creates a second one. The values
are DEMO ONLY, like the settings' secrets.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from requestforge_django.models import (
    ClientDefinition,
    Credential,
    PipelineDefinition,
    PipelineStep,
    normalize_origins,
    unbound_destinations,
)

#: The pipeline's steps, in order: fields of :class:`PipelineStep` (URLs relative to the partner).
KIOSK_STEPS: tuple[dict[str, Any], ...] = (
    {
        "name": "device_token",
        "fetcher": "header",
        "url": "/partner/v1/device/register",
        "headers": {"X-Device-ID": "demo-kiosk-1"},
        "token_header": "X-Device-Token",
        "ttl": 600,
    },
    {
        "name": "app_token",
        "fetcher": "body",
        "url": "/partner/v1/app/token",
        "headers": {"X-Device-Token": "{device_token}"},
        "data": {"client_id": "demo-kiosk"},
        "depends_on": ["device_token"],
        "ttl": 300,
    },
)


class DefinitionError(Exception):
    """An entry fails the checks ``manage.py check`` and the admin form apply (a mistake in this module)."""


def ensure_definitions(partner_url: str | None = None) -> list[str]:
    """Create or update the demo's database entries; one line per entry, saying which."""
    partner = partner_url or settings.DEMO_PARTNER_URL
    lines: list[str] = []
    with transaction.atomic():
        credential, created = Credential.objects.update_or_create(
            name="crm",
            defaults={
                "client_id": "demo-crm",
                "client_secret": "demo-crm-secret",  # DEMO ONLY; stored encrypted
                "scope": "contacts",
                "allowed_origins": normalize_origins([partner]),
                "is_active": True,
            },
        )
        lines.append(_line("credential", credential.name, created, f"encrypted client secret, allowed origin {partner}"))

        crm, created = ClientDefinition.objects.update_or_create(
            name="crm",
            defaults={
                "base_url": f"{partner}/partner/api",
                "timeout": 5,
                "headers": {"User-Agent": "requestforge-demo/1.0"},
                "retry": {"STRATEGY": "exponential", "MAX_RETRIES": 2, "BASE_DELAY": 0.2, "MAX_DELAY": 2},
                "auth_type": "client_credentials",
                "token_url": f"{partner}/partner/oauth/token",
                "client_auth_method": "client_secret_basic",
                "credential": credential,
                "is_active": True,
            },
        )
        lines.append(_line("client definition", crm.name, created, "client_credentials with credential crm"))

        kiosk, created = PipelineDefinition.objects.update_or_create(
            name="kiosk", defaults={"refresh_from_step": "app_token", "is_active": True}
        )
        names = []
        for order, step in enumerate(KIOSK_STEPS, start=1):
            values = {**step, "url": partner + step["url"], "order": order}
            PipelineStep.objects.update_or_create(pipeline=kiosk, name=values.pop("name"), defaults=values)
            names.append(step["name"])
        kiosk.steps.exclude(name__in=names).delete()
        lines.append(_line("pipeline definition", kiosk.name, created, " -> ".join(names)))

        catalog, created = ClientDefinition.objects.update_or_create(
            name="catalog",
            defaults={"base_url": f"{partner}/partner/api", "timeout": 5, "auth_type": "pipeline", "pipeline": "kiosk", "is_active": True},
        )
        lines.append(_line("client definition", catalog.name, created, "pipeline kiosk"))

        # The checks the admin form and ``manage.py check --database default`` apply.
        errors = [f"{p.id} {p.message}" for p in (*kiosk.problems(), *crm.problems(), *catalog.problems()) if p.is_error]
        errors += [
            f"crm would send credential crm to {origin} ({key})"
            for key, origin in unbound_destinations(credential, crm.credential_destinations())
        ]
        if errors:
            raise DefinitionError("; ".join(errors))
    return lines


def _line(kind: str, name: str, created: bool, detail: str) -> str:
    return f"  {'created' if created else 'updated'} {kind} {name!r}: {detail}"
