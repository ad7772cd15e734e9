"""One round of demo calls through ``get_client(...)``, and what the partner saw meanwhile.

Shared by the page (``views.index``) and ``manage.py demo_calls`` so both show the same thing.
:func:`acall` is the same call for async views (``views.async_dashboard``), through
``aget_client(...)`` and ``aget``: it never blocks the event loop, so calls run side by side.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from partner_api import store

from requestforge_django import aget_client, get_client
from requestforge_django.http import HttpResponse
from requestforge_django.http.exceptions import HttpClientException

#: (client name, path, auth): one call per kind of auth. The first three clients are defined in
#: settings; "crm" and "catalog" in the database (the admin), by ``manage.py demo_admin``.
CALLS: tuple[tuple[str, str, str], ...] = (
    ("billing", "/invoices/42", "OAuth2 client credentials"),
    ("profiles", "/me", "pipeline: device -> app -> user token"),
    ("legacy", "/status", "static API key"),
    ("crm", "/contacts/7", "admin: OAuth2 client credentials, encrypted credential"),
    ("catalog", "/catalog", "admin: pipeline device -> app token"),
)
#: What the async dashboard (``views.async_dashboard``) fetches: the clients defined in settings,
#: so it needs nothing from ``manage.py demo_admin``.
DASHBOARD_CALLS: tuple[tuple[str, str, str], ...] = CALLS[:3]
#: The partner's token-issuing endpoints (``PartnerRequest.endpoint`` values).
TOKEN_ENDPOINTS: tuple[str, ...] = ("oauth", "device", "app", "user")


@dataclass(frozen=True)
class CallResult:
    client: str
    path: str
    auth: str
    status: int | None
    elapsed_ms: float
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Round:
    calls: list[CallResult]
    #: Token-endpoint requests the partner answered while the round ran, per endpoint.
    token_fetches: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(call.ok for call in self.calls)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "calls": [{**asdict(c), "ok": c.ok} for c in self.calls], "token_fetches": self.token_fetches}


def token_fetch_counts() -> dict[str, int]:
    """Tokens each partner token endpoint has issued so far (all processes, all time)."""
    counts = store.counts()
    return {endpoint: counts.get(endpoint, 0) for endpoint in TOKEN_ENDPOINTS}


def call(client: str, path: str, auth: str) -> CallResult:
    started = time.perf_counter()
    try:
        response = get_client(client).get(path)
    except HttpClientException as exc:  # str() is masked: safe to show
        return CallResult(client, path, auth, None, (time.perf_counter() - started) * 1000, error=f"{type(exc).__name__}: {exc}")
    return _result(client, path, auth, response, started)


async def acall(client: str, path: str, auth: str) -> CallResult:
    """:func:`call` for async views: awaits the partner without blocking the event loop."""
    started = time.perf_counter()
    try:
        response = await (await aget_client(client)).aget(path)
    except HttpClientException as exc:  # str() is masked: safe to show
        return CallResult(client, path, auth, None, (time.perf_counter() - started) * 1000, error=f"{type(exc).__name__}: {exc}")
    return _result(client, path, auth, response, started)


def _result(client: str, path: str, auth: str, response: HttpResponse, started: float) -> CallResult:
    elapsed = (time.perf_counter() - started) * 1000
    try:
        body: Any = response.json()
    except Exception:
        body = response.text[:200]
    return CallResult(client, path, auth, response.status_code, elapsed, body)


def run_round() -> Round:
    before = token_fetch_counts()
    calls = [call(client, path, auth) for client, path, auth in CALLS]
    after = token_fetch_counts()
    fetched = {endpoint: after[endpoint] - before[endpoint] for endpoint in TOKEN_ENDPOINTS}
    return Round(calls, {endpoint: n for endpoint, n in fetched.items() if n})
