"""The WSGI application of the Authlib server: token endpoint, metadata, a protected API, test control.

``POST /oauth/token``
    Authlib's token endpoint (:mod:`.authority`). Every request is filed in the ledger
    with what the client presented (decoded from the raw request, so refused requests
    are described too) and what Authlib answered.
``GET /.well-known/oauth-authorization-server[<issuer path>]`` and ``GET [<issuer path>]/.well-known/openid-configuration``
    RFC 8414 and OpenID Connect Discovery documents (Authlib's metadata models), shaped
    by the switches of :class:`.registry.Config`; every ``/.well-known/`` request is counted.
``GET /jwks``
    An empty key set (the OpenID document must name one; this server signs nothing).
``GET|POST /api/whoami``
    A protected API: a bearer token this server issued gets ``200`` with who it belongs
    to (``token`` a fingerprint); anything else ``401`` with an RFC 6750 challenge.
``/_control/...``
    Test control (JSON): ``GET health/``, ``GET ledger/``, ``GET clients/``, ``GET tokens/``,
    ``POST clients/``, ``POST issuers/``, ``POST configure/``, ``POST revoke/``,
    ``POST reset-ledger/``, ``POST reset/``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata, get_well_known_url
from authlib.oidc.discovery import OpenIDProviderMetadata
from authlib.oidc.discovery import get_well_known_url as openid_well_known_url
from joserfc import jws

from .authority import ASSERTION_TYPE, JWT_BEARER, TOKEN_EXCHANGE, Authority, FormRequest, Headers
from .ledger import Ledger, fingerprint
from .registry import ALL_METHODS, Client, State

__all__ = ["ServerApp"]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


def _assertion_facts(assertion: str | None) -> dict[str, Any] | None:
    """Header and claims of a JWT, read without verifying it (the ledger describes refused ones too)."""
    if not assertion:
        return None
    facts: dict[str, Any] = {"fingerprint": fingerprint(assertion)}
    try:
        compact = jws.extract_compact(assertion.encode())
        header, claims = compact.headers(), json.loads(compact.payload)
    except Exception:  # any malformation: the fingerprint is all there is
        return facts | {"malformed": True}
    facts.update({name: header.get(name) for name in ("alg", "kid", "typ")})
    facts.update({name: claims.get(name) for name in ("iss", "sub", "aud", "iat", "exp", "nbf", "jti")})
    iat, exp = claims.get("iat"), claims.get("exp")
    facts["lifetime"] = exp - iat if isinstance(iat, (int, float)) and isinstance(exp, (int, float)) else None
    facts["claims"] = sorted(claims)
    return facts


def _basic(headers: Headers) -> tuple[str | None, str | None]:
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
    except ValueError:
        return None, None
    return unquote(user), unquote(password)


def _presented(headers: Headers, form: dict[str, list[str]]) -> dict[str, Any]:
    """Which client authentication the request used, and for which client, from the raw request."""
    first = {name: values[0] for name, values in form.items() if values}
    basic_id, basic_secret = _basic(headers)
    client_assertion = _assertion_facts(first.get("client_assertion"))
    client_id: str | None
    secret: str | None
    if basic_id is not None:
        method, client_id, secret = "client_secret_basic", basic_id, basic_secret
    elif "client_secret" in first:
        method, client_id, secret = "client_secret_post", first.get("client_id"), first["client_secret"]
    elif client_assertion is not None and first.get("client_assertion_type") == ASSERTION_TYPE:
        alg = str(client_assertion.get("alg") or "")
        method = "client_secret_jwt" if alg.startswith("HS") else "private_key_jwt"
        client_id, secret = client_assertion.get("sub") or first.get("client_id"), None
    else:
        method, client_id, secret = "none", first.get("client_id"), None
    grant_assertion = _assertion_facts(first.get("assertion"))
    if client_id is None and grant_assertion is not None:
        client_id = grant_assertion.get("iss")
    return {
        "auth_method": method,
        "client_id": client_id,
        "secret": fingerprint(secret) if secret else None,
        "client_assertion": client_assertion,
        "jti": (client_assertion or {}).get("jti"),
        "assertion": grant_assertion,
        "assertion_jti": (grant_assertion or {}).get("jti"),
    }


class ServerApp:
    """The WSGI callable; one per server process, over one :class:`State` and one :class:`Ledger`."""

    def __init__(self, state: State, ledger: Ledger) -> None:
        self.state = state
        self.ledger = ledger
        self.authority = Authority(state)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/oauth/token":
                status, body, headers = self.token(environ) if method == "POST" else (405, {"error": "method_not_allowed"}, [])
            elif "/.well-known/" in path:
                status, body, headers = self.metadata(path)
            elif path == "/jwks":
                status, body, headers = 200, {"keys": []}, []
            elif path == "/api/whoami":
                status, body, headers = self.whoami(environ)
            elif path.startswith("/_control/"):
                status, body, headers = self.control(path[len("/_control/") :], method, environ)
            else:
                status, body, headers = 404, {"error": "not_found"}, []
        except Exception as exc:  # a bug here must show in the test, not hang it
            status, body, headers = 500, {"error": "server_error", "error_description": f"{type(exc).__name__}: {exc}"}, []
        payload = json.dumps(body).encode()
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), ("Cache-Control", "no-store")]
        start_response(f"{status} {REASONS.get(status, 'Status')}", headers)
        return [payload]

    # -- token endpoint ------------------------------------------------------------------------

    def token(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        arrived = time.time()
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode("utf-8", "replace")
        form = parse_qs(raw, keep_blank_values=True)
        headers = Headers({k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")})
        host = environ.get("HTTP_HOST", "")
        if self.state.config.token_delay:
            time.sleep(self.state.config.token_delay)  # the partner is slow on purpose (a race window)
        request = FormRequest(f"http://{host}/oauth/token", headers, form)
        status, body, answer_headers = self.authority.create_token_response(request)
        self.ledger.record_token_request(self._entry(arrived, host, environ, form, headers, status, body))
        return status, body, answer_headers

    def _entry(
        self,
        arrived: float,
        host: str,
        environ: dict[str, Any],
        form: dict[str, list[str]],
        headers: Headers,
        status: int,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        first = {name: values[0] for name, values in form.items() if values}
        subject_token, actor_token = first.get("subject_token"), first.get("actor_token")
        subject = self.state.lookup_token(subject_token) if subject_token else None
        access_token = body.get("access_token")
        return {
            "at": arrived,
            "answered": time.time(),
            "host": host,
            "content_type": environ.get("CONTENT_TYPE"),
            "grant_type": first.get("grant_type"),
            **_presented(headers, form),
            "params": sorted(form),
            "scope": first.get("scope"),
            "resource": form.get("resource", []),
            "audience": form.get("audience", []),
            "subject_token": fingerprint(subject_token) if subject_token else None,
            "subject_token_type": first.get("subject_token_type"),
            "subject_client": subject.client_id if subject else None,
            "actor_token": fingerprint(actor_token) if actor_token else None,
            "requested_token_type": first.get("requested_token_type"),
            "status": status,
            "result": "issued" if status == 200 and access_token else "refused",
            "error": body.get("error"),
            "error_description": body.get("error_description"),
            "token": fingerprint(access_token) if access_token else None,
            "expires_in": body.get("expires_in"),
            "issued_token_type": body.get("issued_token_type"),
        }

    # -- metadata -----------------------------------------------------------------------------

    def metadata(self, path: str) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        issuer = self.state.issuer
        kinds = {get_well_known_url(issuer): "oauth", openid_well_known_url(issuer): "openid"}
        kind = kinds.get(path)
        served = kind is not None and kind in self.state.config.documents
        body = self.document(kind) if served and kind else {"error": "not_found"}
        status = 200 if served else 404
        self.ledger.record_metadata_fetch({"at": time.time(), "path": path, "kind": kind, "status": status})
        return status, body, []

    def document(self, kind: str) -> dict[str, Any]:
        """The RFC 8414 (``"oauth"``) or OpenID (``"openid"``) document, with the configured overrides."""
        config, origin = self.state.config, self.state.origin
        algorithms = list(config.algorithms)
        data: dict[str, Any] = {
            "issuer": config.issuer_override or self.state.issuer,
            "token_endpoint": config.token_endpoint_override or self.state.token_url,
            "jwks_uri": origin + "/jwks",
            "grant_types_supported": ["client_credentials", JWT_BEARER, TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": list(ALL_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
            "response_types_supported": ["token"],
        }
        if kind == "openid":
            data.update(
                authorization_endpoint=origin + "/authorize",
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
            )
            return dict(OpenIDProviderMetadata(data))
        return dict(AuthorizationServerMetadata(data))

    # -- protected API ------------------------------------------------------------------------------

    def whoami(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        record = self.state.lookup_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        status = 200 if record is not None and record.active() else 401
        self.ledger.record_call(
            {
                "at": time.time(),
                "status": status,
                "token": fingerprint(token.strip()) if token.strip() else None,
                "client_id": record.client_id if record else None,
            }
        )
        if status == 401:
            challenge = 'Bearer error="invalid_token", error_description="The access token is invalid."'
            return 401, {"error": "invalid_token"}, [("WWW-Authenticate", challenge)]
        assert record is not None
        return 200, {"ok": True, **record.public(), "token": record.fingerprint}, []

    # -- test control ------------------------------------------------------------------------------

    def control(self, name: str, method: str, environ: dict[str, Any]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        if method == "GET":
            getters: dict[str, Callable[[], dict[str, Any]]] = {
                "health/": lambda: {"ok": True, "origin": self.state.origin},
                "ledger/": self.ledger.snapshot,
                "clients/": lambda: {
                    "clients": {cid: c.public() for cid, c in self.state.clients.items()},
                    "issuers": {iss: c.public() for iss, c in self.state.issuers.items()},
                },
                "tokens/": lambda: {"tokens": self.state.tokens()},
                "config/": lambda: {"config": vars(self.state.config), "issuer": self.state.issuer, "token_url": self.state.token_url},
            }
            return (200, getters[name](), []) if name in getters else (404, {"error": "not_found"}, [])
        data = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        if name == "clients/":
            client = Client(
                client_id=data["client_id"],
                methods=tuple(data["methods"]),
                secret=data.get("secret"),
                keys=list(data.get("keys", [])),
                grants=tuple(data.get("grants", ["client_credentials"])),
                scope=data.get("scope"),
            )
            client.key_set()  # a bad public key fails the registration, not a later token request
            with self.state.lock:
                self.state.clients[client.client_id] = client
            return 200, client.public(), []
        if name == "issuers/":
            subjects = data.get("subjects")
            issuer = Client(
                client_id=data["issuer"],
                keys=list(data["keys"]),
                grants=(JWT_BEARER,),
                scope=data.get("scope"),
                issuer=True,
                subjects=tuple(subjects) if subjects is not None else None,
            )
            issuer.key_set()
            with self.state.lock:
                self.state.issuers[issuer.client_id] = issuer
            return 200, issuer.public(), []
        if name == "configure/":
            with self.state.lock:
                self.state.config.update(data)
            return 200, {"config": vars(self.state.config), "issuer": self.state.issuer}, []
        if name == "revoke/":
            return 200, {"revoked": self.state.revoke_tokens(data.get("client_id")), "at": time.time()}, []
        if name == "reset-ledger/":
            self.ledger.clear()
            return 200, {"ok": True}, []
        if name == "reset/":
            self.state.reset()
            self.ledger.clear()
            return 200, {"ok": True}, []
        return 404, {"error": "not_found"}, []
