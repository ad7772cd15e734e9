"""The partner's token store: issued tokens in the ``"partner"`` cache, with their kind and expiry.

A token is valid while its entry exists, its lifetime has not run out and it was issued
after the last revocation of its kind (:func:`revoke_access_tokens`). Kept in
a database cache so that every process of the demo (threads of the web server, the
warm-up, ``manage.py demo_calls``) agrees on which tokens are valid.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches

from .models import PartnerRequest

CACHE_ALIAS = "partner"
#: Kinds of token the revoke lever revokes: the access tokens of "billing", "crm" and "profiles". App tokens
#: (which also open ``/api/catalog``) and device tokens stay valid, because the pipelines need them to obtain new tokens.
ACCESS_KINDS = ("oauth", "user")

#: Seconds each kind of token lives. Short on purpose: refreshes show up within minutes.
LIFETIMES = {"oauth": 120, "device": 600, "app": 300, "user": 120}

#: The demo's partner accounts (DEMO ONLY values, mirrored in settings.REQUESTFORGE and, for
#: "demo-crm", "demo-kiosk-1" and "demo-kiosk", in the admin entries ``manage.py demo_admin`` creates).
OAUTH_CLIENTS = {"demo-billing": "demo-billing-secret", "demo-crm": "demo-crm-secret"}
DEVICES = {"demo-device-1", "demo-kiosk-1"}
APPS = {"demo-app", "demo-kiosk"}
USERS = {"demo-user": "demo-password"}
API_KEYS = {"demo-legacy-key"}


@dataclass(frozen=True)
class Issued:
    token: str
    lifetime: int


def _cache() -> Any:
    return caches[CACHE_ALIAS]


def issue(kind: str, subject: str) -> Issued:
    """A new random token of ``kind`` for ``subject``."""
    lifetime = LIFETIMES[kind]
    token = f"{kind}-{secrets.token_urlsafe(18)}"
    now = time.time()
    _cache().set(f"token:{token}", {"kind": kind, "subject": subject, "issued_at": now, "expires_at": now + lifetime}, timeout=lifetime)
    return Issued(token, lifetime)


def check(token: str | None, kind: str) -> dict[str, Any] | None:
    """The record of ``token`` if it is a valid token of ``kind``, else ``None``."""
    if not token:
        return None
    record = _cache().get(f"token:{token}")
    if not isinstance(record, dict) or record.get("kind") != kind:
        return None
    now = time.time()
    revoked_before = _cache().get(f"revoked-before:{kind}") or 0.0
    if record["expires_at"] <= now or record["issued_at"] <= revoked_before:
        return None
    return record


def revoke_access_tokens() -> None:
    """Every access token issued until now stops working: the API answers 401 to them.

    Device and app tokens stay valid, so a client that replaces its rejected token
    (the auth hook does, once per rejection) gets a new one at the first try.
    """
    now = time.time()
    _cache().set_many({f"revoked-before:{kind}": now for kind in ACCESS_KINDS}, timeout=None)


def log(endpoint: str, status: int) -> None:
    PartnerRequest.objects.create(endpoint=endpoint, status=status)


def counts() -> dict[str, int]:
    """Successful requests per endpoint (token endpoints: tokens issued)."""
    from django.db.models import Count

    rows = PartnerRequest.objects.filter(status__lt=400).values("endpoint").annotate(n=Count("id"))
    return {row["endpoint"]: row["n"] for row in rows}


def rejected() -> int:
    """Requests the partner refused (401 and friends)."""
    return PartnerRequest.objects.filter(status__gte=400).count()
