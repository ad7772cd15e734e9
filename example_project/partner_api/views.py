"""The partner endpoints: token issuing and protected resources, strict about tokens.

Every answer is logged in :class:`~partner_api.models.PartnerRequest`, so the demo can
show how often each endpoint was really called, whichever process called it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import store


def _answer(endpoint: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JsonResponse:
    store.log(endpoint, status)
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _unauthorized(endpoint: str, scheme: str, description: str) -> JsonResponse:
    return _answer(
        endpoint, 401, {"error": "invalid_token", "error_description": description}, {"WWW-Authenticate": f'{scheme} error="invalid_token"'}
    )


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _secret_matches(expected: str | None, given: str | None) -> bool:
    return expected is not None and given is not None and secrets.compare_digest(expected, given)


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# -- token endpoints ------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def oauth_token(request: HttpRequest) -> JsonResponse:
    """OAuth2 client credentials: form ``grant_type=client_credentials`` with the client in the body or HTTP Basic."""
    if request.POST.get("grant_type") != "client_credentials":
        return _answer("oauth", 400, {"error": "unsupported_grant_type"})
    client_id, client_secret = _basic_credentials(request) or (request.POST.get("client_id"), request.POST.get("client_secret"))
    if not _secret_matches(store.OAUTH_CLIENTS.get(client_id or ""), client_secret):
        return _answer("oauth", 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="partner"'})
    issued = store.issue("oauth", client_id or "")
    scope = request.POST.get("scope") or "invoices"
    body = {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.lifetime, "scope": scope}
    return _answer("oauth", 200, body)


@csrf_exempt
@require_POST
def device_register(request: HttpRequest) -> JsonResponse:
    """Step 1: a known ``X-Device-ID`` gets a device token, **in the ``X-Device-Token`` response header**."""
    device = request.headers.get("X-Device-ID", "")
    if device not in store.DEVICES:
        return _answer("device", 400, {"error": "invalid_request", "error_description": "unknown X-Device-ID"})
    issued = store.issue("device", device)
    return _answer("device", 200, {"registered": True}, {"X-Device-Token": issued.token})


@csrf_exempt
@require_POST
def app_token(request: HttpRequest) -> JsonResponse:
    """Step 2: needs a valid device token (``X-Device-Token``) and a known ``client_id``; answers in the body."""
    device = store.check(request.headers.get("X-Device-Token"), "device")
    if device is None:
        return _answer("app", 401, {"error": "invalid_grant", "error_description": "device token missing, expired or revoked"})
    if request.POST.get("client_id") not in store.APPS:
        return _answer("app", 401, {"error": "invalid_client"})
    issued = store.issue("app", request.POST["client_id"])
    return _answer("app", 200, {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.lifetime})


@csrf_exempt
@require_POST
def user_token(request: HttpRequest) -> JsonResponse:
    """Step 3: needs a valid app token (``X-App-Token``) and the user's password; answers in the body."""
    if store.check(request.headers.get("X-App-Token"), "app") is None:
        return _answer("user", 401, {"error": "invalid_grant", "error_description": "app token missing, expired or revoked"})
    username = request.POST.get("username", "")
    if not _secret_matches(store.USERS.get(username), request.POST.get("password")):
        return _answer("user", 401, {"error": "invalid_grant", "error_description": "wrong username or password"})
    issued = store.issue("user", username)
    return _answer("user", 200, {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.lifetime})


# -- protected endpoints ----------------------------------------------------------------------------


def _protected(endpoint: str, kind: str, build: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[HttpRequest], JsonResponse]:
    def view(request: HttpRequest, **kwargs: Any) -> JsonResponse:
        record = store.check(_bearer(request), kind)
        if record is None:
            return _unauthorized(endpoint, "Bearer", f"a valid {kind} token is required")
        return _answer(endpoint, 200, build({**record, **kwargs}))

    return view


invoice = require_GET(
    _protected("invoices", "oauth", lambda ctx: {"invoice": ctx["number"], "customer": "ACME Corp", "amount": "120.00", "currency": "EUR"})
)
profile = require_GET(_protected("profile", "user", lambda ctx: {"user": ctx["subject"], "plan": "gold", "devices": 1}))
contact = require_GET(
    _protected("contacts", "oauth", lambda ctx: {"contact": ctx["number"], "name": "Ada Lovelace", "company": "ACME Corp"})
)
catalog = require_GET(_protected("catalog", "app", lambda ctx: {"app": ctx["subject"], "products": 3, "currency": "EUR"}))


@require_GET
def legacy_status(request: HttpRequest) -> JsonResponse:
    """A legacy API guarded by a static ``X-API-Key``."""
    if request.headers.get("X-API-Key") not in store.API_KEYS:
        return _answer("legacy", 401, {"error": "invalid_api_key"}, {"WWW-Authenticate": 'ApiKey realm="legacy"'})
    return _answer("legacy", 200, {"status": "ok", "version": "1.9.3"})


# -- demo counters --------------------------------------------------------------------------------------


@require_GET
def stats(request: HttpRequest) -> JsonResponse:
    """Successful requests per endpoint and the number of refused ones (what the partner saw)."""
    return JsonResponse({"counts": store.counts(), "rejected": store.rejected()})
