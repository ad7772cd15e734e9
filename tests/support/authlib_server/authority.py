"""Authlib's authorization server, wired to plain WSGI: the grants and client-authentication methods under test.

What Authlib provides and decides (``authlib.oauth2``):

- :class:`~authlib.oauth2.rfc6749.AuthorizationServer` with its client-authentication
  registry (``client_secret_basic``, ``client_secret_post``) and
  :class:`~authlib.oauth2.rfc6749.grants.ClientCredentialsGrant`;
- :class:`~authlib.oauth2.rfc7523.JWTBearerClientAssertion` (RFC 7523 section 2.2 client
  assertions), registered twice: as ``client_secret_jwt`` (HMAC with the client's secret)
  and as ``private_key_jwt`` (the client's public keys, chosen by ``kid``);
- :class:`~authlib.oauth2.rfc7523.JWTBearerGrant` (RFC 7523 section 2.1, an assertion as the grant);
- :class:`~authlib.oauth2.rfc6750.BearerTokenGenerator` for the token answers.

What is built here on Authlib's base classes, because the installed Authlib (1.9) ships an
empty ``authlib.oauth2.rfc8693``: :class:`TokenExchangeGrant` (RFC 8693) on
:class:`~authlib.oauth2.rfc6749.BaseGrant` + ``TokenEndpointMixin``. Also added to Authlib's
checks: a ``jti`` cache for the JWT-bearer grant (Authlib checks ``jti`` only for client
assertions), a maximum ``exp - iat`` and a required ``iat`` (the contract's 300 s), RFC 8707
``resource`` validation (``invalid_target``), and the algorithm list (Authlib alone accepts
only joserfc's recommended HS256/RS256/ES256).
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    BaseGrant,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    TokenEndpointMixin,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant
from joserfc import jwk, jws, jwt
from joserfc.errors import JoseError

from .ledger import fingerprint
from .registry import ALL_METHODS, Client, State, TokenRecord

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ASSERTION_TYPE",
    "JWT_BEARER",
    "TOKEN_EXCHANGE",
    "Authority",
    "FormRequest",
    "Headers",
]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# -- the request Authlib reads ----------------------------------------------------------------


class Headers(dict[str, str]):
    """Request headers with case-insensitive ``get`` (Authlib asks for ``"Authorization"``)."""

    def __init__(self, items: dict[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in items.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: dict[str, list[str]]) -> None:
        self._form = form

    @property
    def data(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._form.items() if values}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, {name: list(values) for name, values in self._form.items()})


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An ``application/x-www-form-urlencoded`` POST, already parsed (``form``: every value of every name)."""

    def __init__(self, uri: str, headers: Headers, form: dict[str, list[str]]) -> None:
        super().__init__("POST", uri, headers=headers)
        self.payload = FormPayload(form)

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @property
    def args(self) -> dict[str, str]:
        return {}


# -- checks added to Authlib's ----------------------------------------------------------------


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 section 2 / RFC 8693 section 2.2.2."""

    error = "invalid_target"


def _check_lifetime(claims: dict[str, Any], maximum: int, error: type[OAuth2Error]) -> None:
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)):
        raise error(description="Missing or invalid 'iat'/'exp'.")
    if exp - iat > maximum:
        raise error(description=f"Assertion lifetime exp - iat = {int(exp - iat)} s exceeds {maximum} s.")


def _decode(assertion: str, key: Any, algorithms: list[str], error: type[OAuth2Error]) -> dict[str, Any]:
    try:
        return dict(jwt.decode(assertion, key, algorithms=algorithms).claims)
    except JoseError as exc:
        raise error(description=exc.description or type(exc).__name__) from exc
    except ValueError as exc:
        raise error(description="Invalid JWT assertion.") from exc


def _validate_targets(request: FormRequest, state: State) -> None:
    datalist = request.payload.datalist
    for resource in datalist.get("resource", []):
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or parts.fragment:
            raise InvalidTargetError(description="'resource' must be an absolute URI without a fragment.")
    for name in ("resource", "audience"):
        for value in datalist.get(name, []):
            if value in state.config.invalid_targets:
                raise InvalidTargetError(description=f"The {name} is not acceptable.")


def presents_client_auth(request: FormRequest) -> bool:
    """Whether the request carries client credentials (HTTP Basic, a secret or a client assertion)."""
    scheme = (request.headers.get("Authorization") or "").partition(" ")[0].lower()
    return scheme == "basic" or "client_secret" in request.form or "client_assertion" in request.form


# -- client assertions (RFC 7523 section 2.2) ---------------------------------------------------------


class AssertionAuth(JWTBearerClientAssertion):  # type: ignore[misc]
    """Authlib's client-assertion method as ``client_secret_jwt`` (HS*) or ``private_key_jwt`` (everything else).

    The two are registered side by side; each handles only the assertions whose ``alg``
    family is its own, so a client allowed only one method is refused the other by
    Authlib's ``check_endpoint_auth_method``.
    """

    def __init__(self, method: str, state: State) -> None:
        super().__init__(validate_jti=True, leeway=state.config.leeway)
        self.CLIENT_AUTH_METHOD = method
        self.state = state

    def __call__(self, query_client: Any, request: FormRequest) -> Any:
        assertion = request.form.get("client_assertion")
        if request.form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        try:
            alg = str(jws.extract_compact(assertion.encode()).headers().get("alg", ""))
        except (JoseError, ValueError):
            alg = ""
        symmetric = alg.startswith("HS") or not alg  # a malformed assertion is refused by the first handler
        if symmetric != (self.CLIENT_AUTH_METHOD == "client_secret_jwt"):
            return None
        return super().__call__(query_client, request)

    def get_audiences(self) -> list[str]:
        return self.state.assertion_audiences()

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        claims = _decode(assertion, resolve_key, self.state.config.algorithms, InvalidClientError)
        self.verify_claims(claims)
        return claims

    def verify_claims(self, claims: Any) -> None:
        self.leeway = self.state.config.leeway
        _check_lifetime(claims, self.state.config.max_assertion_lifetime, InvalidClientError)
        super().verify_claims(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        return self.state.use_jti("client_assertion", str(claims["iss"]), str(jti), claims["exp"])

    def resolve_client_public_key(self, client: Client) -> Any:
        if self.CLIENT_AUTH_METHOD == "client_secret_jwt":
            if not client.secret:
                raise InvalidClientError(description="The client has no secret.")
            return jwk.OctKey.import_key(client.secret)
        if not client.keys:
            raise InvalidClientError(description="The client has no public key.")
        return client.key_set()


# -- grants ------------------------------------------------------------------------------------


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        _validate_targets(self.request, self.server.state)


class JwtBearer(JWTBearerGrant):  # type: ignore[misc]
    """RFC 7523 section 2.1: the assertion (from a trusted issuer) is the grant; client authentication is optional."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def __init__(self, request: FormRequest, server: Authority) -> None:
        super().__init__(request, server)
        self.state = server.state
        self.LEEWAY = self.state.config.leeway
        self._issuer: Client | None = None

    def validate_token_request(self) -> None:
        authenticated = None
        if presents_client_auth(self.request):
            authenticated = self.authenticate_token_endpoint_client()
            if not authenticated.check_grant_type(self.GRANT_TYPE):
                raise UnauthorizedClientError(f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'")
        super().validate_token_request()
        if authenticated is not None:
            self.request.client = authenticated
        _validate_targets(self.request, self.state)

    def process_assertion_claims(self, assertion: str) -> dict[str, Any]:
        _headers, unverified = self.extract_assertion(assertion)
        issuer = self.resolve_issuer_client(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if issuer is None:
            raise InvalidGrantError(description="The assertion issuer is not trusted by this server.")
        claims = _decode(assertion, self.resolve_client_public_key(issuer), self.state.config.algorithms, InvalidGrantError)
        self.verify_claims(claims)
        return claims

    def verify_claims(self, claims: Any) -> None:
        _check_lifetime(claims, self.state.config.max_assertion_lifetime, InvalidGrantError)
        super().verify_claims(claims)
        jti = claims.get("jti")
        if not jti:
            raise InvalidGrantError(description="Missing JWT ID.")
        if not self.state.use_jti("grant", str(claims["iss"]), str(jti), claims["exp"]):
            raise InvalidGrantError(description="JWT ID is used before.")

    def resolve_issuer_client(self, issuer: str) -> Client | None:
        self._issuer = self.state.issuers.get(issuer)
        return self._issuer

    def resolve_client_public_key(self, client: Client) -> Any:
        if not client.keys:
            raise InvalidGrantError(description="The issuer has no public key.")
        return client.key_set()

    def authenticate_user(self, subject: str) -> str | None:
        return subject if self._issuer is not None and self._issuer.allows_subject(subject) else None

    def has_granted_permission(self, client: Client, user: str) -> bool:
        return True

    def get_audiences(self) -> list[str]:
        return self.state.assertion_audiences()


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """RFC 8693 for access tokens this server issued (Authlib 1.9 has no implementation of its own)."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def _token_error(self, what: str) -> OAuth2Error:
        code = self.server.state.config.subject_token_error
        return OAuth2Error(error=code, description=f"The {what} is invalid, expired or revoked.")

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'")
        self.request.client = client
        data = self.request.payload.data
        if not data.get("subject_token") or not data.get("subject_token_type"):
            raise InvalidRequestError("Missing 'subject_token' or 'subject_token_type'.")
        if data["subject_token_type"] != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError("Unsupported 'subject_token_type'.")
        requested = data.get("requested_token_type")
        if requested and requested != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError("Unsupported 'requested_token_type'.")
        state: State = self.server.state
        subject = state.lookup_token(data["subject_token"])
        if subject is None or not subject.active():
            raise self._token_error("subject token")
        if data.get("actor_token"):
            actor = state.lookup_token(data["actor_token"])
            if data.get("actor_token_type") != ACCESS_TOKEN_TYPE or actor is None or not actor.active():
                raise self._token_error("actor token")
        self.request.subject_record = subject
        self.validate_requested_scope()
        _validate_targets(self.request, state)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.payload.scope, include_refresh_token=False)
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


# -- the server --------------------------------------------------------------------------------


def _access_token(**_: Any) -> str:
    return secrets.token_urlsafe(32)


class Authority(AuthorizationServer):  # type: ignore[misc]
    """Authlib's ``AuthorizationServer`` over :class:`State`: requests are :class:`FormRequest`, answers plain tuples."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state
        self.register_token_generator("default", BearerTokenGenerator(_access_token, expires_generator=self._expires_in))
        for method in ("client_secret_jwt", "private_key_jwt"):
            self.register_client_auth_method(method, AssertionAuth(method, state))
        for grant in (ClientCredentials, JwtBearer, TokenExchangeGrant):
            self.register_grant(grant)

    def _expires_in(self, client: Client, grant_type: str) -> int:
        return self.state.config.expires_in

    def query_client(self, client_id: str) -> Client | None:
        return self.state.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: FormRequest) -> None:
        datalist = request.payload.datalist
        subject: TokenRecord | None = getattr(request, "subject_record", None)
        record = TokenRecord(
            fingerprint=fingerprint(token["access_token"]),
            client_id=request.client.get_client_id(),
            grant_type=request.payload.grant_type,
            scope=token.get("scope", ""),
            expires_at=time.time() + int(token.get("expires_in", 0)),
            resource=list(datalist.get("resource", [])),
            audience=list(datalist.get("audience", [])),
            subject=request.user if isinstance(request.user, str) else None,
            exchanged_from=subject.fingerprint if subject else None,
            exchanged_from_client=subject.client_id if subject else None,
        )
        self.state.store_token(token["access_token"], record)

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        return status, dict(body) if body else {}, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system outside a framework integration."""
