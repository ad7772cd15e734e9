"""Protected resources and test-control endpoints of the test authorization server.

Protected resources (all answer ``{"ok", "client_id", "application", "user",
"token", "secret_version"}`` for a valid token; ``token`` is a fingerprint):

``/api/bearer-401/`` (also ``/api/protected``)
    DOT's RFC 9728 opt-in view (``ProtectedResourceMetadataView``): an invalid or
    revoked token gets ``401`` with ``WWW-Authenticate: Bearer error="invalid_token",
    error_description="The access token is invalid.",resource_metadata="<url>"`` (no
    space after the commas; an expired one says ``"The access token has expired."``);
    no token at all gets ``401`` with ``Bearer resource_metadata="<url>"``.
``/api/dot-default/``
    DOT's historical default (``ProtectedResourceView``): a bare ``403`` with no
    ``WWW-Authenticate`` at all.
``/api/bearer-403/``
    The same challenge as ``bearer-401`` with status ``403``: the answer RFC 6750
    permits and some servers give, which a client must also read as "token rejected".

Every call is filed in the ledger with its status and the token it carried.

Test control (this server only, JSON): ``GET /_control/ledger``,
``GET /_control/counts/<client_id>/``, ``POST /_control/secret/`` (``client_id``,
``secret``, ``keep_old``, ``revoke_tokens``), ``POST /_control/revoke/``
(``client_id``), ``POST /_control/reset/``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model
from oauth2_provider.views import ProtectedResourceMetadataView, ProtectedResourceView

from .ledger import fingerprint, ledger

# -- protected resources ---------------------------------------------------------------------


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _owner_json(token: str, oauthlib_request: Any) -> dict[str, Any]:
    """Who the token DOT just accepted belongs to (from DOT's own lookup: a rotation may delete the row meanwhile)."""
    client, user = getattr(oauthlib_request, "client", None), getattr(oauthlib_request, "user", None)
    return {
        "ok": True,
        "client_id": getattr(client, "client_id", None),
        "application": getattr(client, "name", None),
        "user": user.get_username() if user is not None else None,
        "token": fingerprint(token),
        "secret_version": (ledger.issue_record(token) or {}).get("secret_version"),
    }


class _Recorded:
    """Files every call in the ledger around DOT's own ``dispatch`` (which decides the answer)."""

    endpoint = ""
    _oauthlib_request: Any = None

    def verify_request(self, request: HttpRequest) -> Any:
        valid, oauthlib_request = super().verify_request(request)  # type: ignore[misc]
        self._oauthlib_request = oauthlib_request  # a view instance serves one request
        return valid, oauthlib_request

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        token = _bearer(request)
        record = ledger.issue_record(token) if token else None
        ledger.record_call(
            {
                "at": time.time(),
                "endpoint": self.endpoint,
                "status": response.status_code,
                "token": fingerprint(token) if token else None,
                "client_id": (record or {}).get("client_id"),
                "secret_version": (record or {}).get("secret_version"),
            }
        )
        return response

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return JsonResponse(_owner_json(_bearer(request) or "", self._oauthlib_request))

    post = get


class Bearer401Resource(_Recorded, ProtectedResourceMetadataView):
    endpoint = "bearer-401"


class DotDefaultResource(_Recorded, ProtectedResourceView):
    endpoint = "dot-default"


class Bearer403Resource(_Recorded, ProtectedResourceMetadataView):
    endpoint = "bearer-403"

    def unauthenticated_response(self, request: HttpRequest, oauthlib_request: Any = None) -> HttpResponse:
        response = super().unauthenticated_response(request, oauthlib_request)
        response.status_code = 403
        return response


# -- recording the token endpoint -------------------------------------------------------------


class TokenRequestRecorder:
    """Middleware: files every request to DOT's token endpoint (grant, auth style, outcome)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        arrived = time.time()
        response = self.get_response(request)
        if request.path == "/o/token/":
            ledger.record_token_request(_token_request_entry(request, response, arrived))
        return response


def _token_request_entry(request: HttpRequest, response: HttpResponse, arrived: float) -> dict[str, Any]:
    client_id, method = request.POST.get("client_id"), "none"
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        method = "client_secret_basic"
        try:
            client_id = unquote_plus(base64.b64decode(value).decode("utf-8").partition(":")[0])
        except ValueError:
            client_id = None
    elif "client_secret" in request.POST:
        method = "client_secret_post"
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        body = {}
    refresh = request.POST.get("refresh_token")
    return {
        "arrived": arrived,
        "answered": time.time(),
        "grant_type": request.POST.get("grant_type"),
        "client_id": client_id,
        "auth_method": method,
        "status": response.status_code,
        "error": body.get("error") if isinstance(body, dict) else None,
        "token": fingerprint(body["access_token"]) if isinstance(body, dict) and body.get("access_token") else None,
        "refresh_token_used": fingerprint(refresh) if refresh else None,
    }


# -- test control ----------------------------------------------------------------------------------


def _json_body(request: HttpRequest) -> dict[str, Any]:
    return json.loads(request.body or b"{}")


def _application(client_id: str) -> Any:
    return get_application_model().objects.get(client_id=client_id)


def control_ledger(request: HttpRequest) -> JsonResponse:
    return JsonResponse(ledger.snapshot())


def control_counts(request: HttpRequest, client_id: str) -> JsonResponse:
    """Rows in DOT's tables for one application (revoked access tokens are deleted; refresh tokens are marked)."""
    app = _application(client_id)
    refresh = get_refresh_token_model().objects.filter(application=app)
    issued = [e for e in ledger.snapshot()["issued"] if e["client_id"] == client_id]
    return JsonResponse(
        {
            "access_tokens": get_access_token_model().objects.filter(application=app).count(),
            "refresh_tokens": refresh.count(),
            "refresh_tokens_active": refresh.filter(revoked__isnull=True).count(),
            "issued": len(issued),
        }
    )


@csrf_exempt
def control_secret(request: HttpRequest) -> JsonResponse:
    """Give an application a new secret (hashed by DOT on save), optionally still accepting the old ones."""
    data = _json_body(request)
    # The ledger learns the new version first, so a token obtained with it the instant the
    # row commits is already attributed to it (the old secret keeps its own version meanwhile).
    version = ledger.add_secret(data["client_id"], data["secret"], keep_old=bool(data.get("keep_old")))
    with transaction.atomic():
        app = _application(data["client_id"])
        app.client_secret = data["secret"]
        app.save()
        revoked = _revoke_all(app) if data.get("revoke_tokens") else 0
    return JsonResponse({"version": version.version, "changed_at": time.time(), "revoked": revoked})


def _revoke_all(app: Any) -> int:
    """DOT's own revocation of every token of ``app``: refresh tokens (with their access tokens), then the rest."""
    revoked = 0
    for refresh in get_refresh_token_model().objects.filter(application=app, revoked__isnull=True):
        refresh.revoke()
        revoked += 1
    for access in get_access_token_model().objects.filter(application=app):
        access.revoke()
        revoked += 1
    return revoked


@csrf_exempt
def control_revoke(request: HttpRequest) -> JsonResponse:
    app = _application(_json_body(request)["client_id"])
    return JsonResponse({"revoked": _revoke_all(app), "at": time.time()})


@csrf_exempt
def control_reset(request: HttpRequest) -> JsonResponse:
    """Delete every token and forget the history (applications, users and secrets stay)."""
    get_refresh_token_model().objects.all().delete()
    get_access_token_model().objects.all().delete()
    ledger.clear_history()
    return JsonResponse({"ok": True})
