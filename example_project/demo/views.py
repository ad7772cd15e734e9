"""The demo page: live calls through ``get_client(...)``, the token status, and a few levers.

Every load of ``/`` calls the partner APIs (served by this same server) through five clients and shows
what happened: the answers, how many tokens the partner had to issue meanwhile (none,
once tokens are cached), and every token's state. ``/?format=json`` returns the same
as JSON (``scripts/demo.sh --check`` uses it); ``/?refresh=5`` reloads every 5 s so
you can watch tokens being renewed before they expire.

``/async/`` (:func:`async_dashboard`) is the async version of one page's calls: an
``async def`` view that awaits three partner calls at once. Serve it with an ASGI server
(``uvicorn example_project.asgi:application``) to run many such pages on one event loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from partner_api import store

from requestforge_django import get_pipeline, get_token_manager
from requestforge_django.status import token_statuses
from requestforge_django.tasks import refresh_due_tokens

from .calls import DASHBOARD_CALLS, TOKEN_ENDPOINTS, acall, run_round, token_fetch_counts


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    result = run_round()
    statuses = token_statuses()
    if request.GET.get("format") == "json":
        return JsonResponse(
            {**result.to_json(), "token_fetches_total": token_fetch_counts(), "tokens": [row.to_json() for row in statuses]}
        )
    refresh = request.GET.get("refresh", "")
    context = {
        "round": result,
        "fetched_now": sum(result.token_fetches.values()),
        "totals": token_fetch_counts(),
        "token_endpoints": TOKEN_ENDPOINTS,
        "statuses": statuses,
        "rejected": store.rejected(),
        "refresh": int(refresh) if refresh.isdigit() and 1 <= int(refresh) <= 600 else None,
        "settings": settings.REQUESTFORGE,
        "redis": bool(settings.REDIS_URL),
        "warm_thread": settings.DEMO_WARM_THREAD,
        "partner_url": settings.DEMO_PARTNER_URL,
    }
    return render(request, "demo/index.html", context)


async def async_dashboard(request: HttpRequest) -> HttpResponse:
    """Three partner calls awaited together: the page takes as long as the slowest call, not the sum.

    Each call goes through ``await aget_client(name)`` and ``await client.aget(path)``: tokens
    come from the shared cache (fetched once, whichever task asks first) and nothing blocks
    the event loop, so under ASGI one process serves many of these pages at the same time.
    The answers are the partner's bodies; errors are shown masked, tokens never.
    """
    if request.method != "GET":  # require_GET wraps async views only from Django 5.0 on
        return HttpResponseNotAllowed(["GET"])
    started = time.perf_counter()
    calls = await asyncio.gather(*(acall(client, path, auth) for client, path, auth in DASHBOARD_CALLS))
    return JsonResponse(
        {
            "ok": all(call.ok for call in calls),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            "calls": [{**asdict(call), "ok": call.ok} for call in calls],
        }
    )


@require_POST
def act(request: HttpRequest, action: str) -> HttpResponseRedirect:
    """The levers: drop a token, make the partner revoke its access tokens, or run the Celery warm-up task."""
    if action == "invalidate":
        name = request.POST.get("name", "")
        if name == "billing":
            get_token_manager(name).invalidate_token(reason="manual")
            messages.info(request, "Invalidated the billing token in the shared cache: the next call fetches a new one.")
        elif name == "partner":
            get_pipeline(name).invalidate_all(reason="manual")
            messages.info(request, "Invalidated every step of the partner pipeline: the next call runs all three steps again.")
    elif action == "revoke":
        store.revoke_access_tokens()
        messages.info(
            request,
            "The partner revoked every access token: the next billing and profiles calls get 401, "
            "fetch a new token once and are sent again.",
        )
    elif action == "warm":
        outcome = refresh_due_tokens.delay()
        if settings.CELERY_TASK_ALWAYS_EAGER:
            summary = ", ".join(f"{label}: {status}" for label, status in outcome.get().items())
            messages.info(request, f"refresh_due_tokens ran eagerly (no broker): {summary}.")
        else:
            messages.info(request, "refresh_due_tokens was queued; a Celery worker runs it.")
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return HttpResponseRedirect(reverse("demo:index"))
