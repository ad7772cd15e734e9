"""Turning a token endpoint's HTTP answer into a :class:`TokenData`, or into a clear error.

Shared by the OAuth2 providers and the pipeline fetchers, so "what counts as a failed
token call and what the error says" is decided once:

* a transport failure (timeout, refused connection, TLS) becomes an
  :class:`AuthenticationException` whose ``original`` is the transport exception;
* a non-2xx answer carries ``status_code`` and, when the body is an OAuth2 error
  object, ``error`` and ``error_description``;
* a body that is not JSON is described by its content type and size only
  ("token endpoint answered non-JSON (text/html, 1234 bytes)"): an HTML error page
  may echo the request, secrets included, so it is never quoted;
* known secrets (client secret, password) are scrubbed from anything that is quoted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from ..http.exceptions import AuthenticationException, ConnectionException, HttpClientException, SSLException, TimeoutException
from ..http.masking import MASK
from ..http.messages import HttpResponse
from .data import DEFAULT_MAX_LIFETIME, Clock, TokenData, system_clock

_DESCRIPTION_LIMIT = 300


def transport_error(
    exc: HttpClientException, *, service_name: str | None, step: str | None = None, url: str | None = None
) -> AuthenticationException:
    """An :class:`AuthenticationException` for a token request that got no HTTP answer."""
    if isinstance(exc, TimeoutException):
        what = "token endpoint timed out"
    elif isinstance(exc, SSLException):
        what = "TLS failure talking to the token endpoint"
    elif isinstance(exc, ConnectionException):
        what = "token endpoint unreachable"
    else:
        what = "token request failed"
    return AuthenticationException(
        f"{what} ({type(exc).__name__})",
        service_name=service_name,
        step=step,
        method=exc.method,
        url=url or exc.url,
        original=exc,
    )


def check_status(response: HttpResponse, *, service_name: str | None, step: str | None = None, secrets: Iterable[str | None] = ()) -> None:
    """Raise :class:`AuthenticationException` unless ``response`` is a 2xx."""
    if 200 <= response.status_code < 300:
        return
    body = _json_or_none(response)
    error = description = None
    if isinstance(body, Mapping):
        error = _clean(body.get("error"), secrets, 100)
        description = _clean(body.get("error_description") or body.get("message"), secrets, _DESCRIPTION_LIMIT)
    message = f"token endpoint answered HTTP {response.status_code}"
    if body is None and response.content:
        message += f" with non-JSON ({_content_type(response)}, {len(response.content)} bytes)"
    raise AuthenticationException(
        message,
        service_name=service_name,
        step=step,
        status_code=response.status_code,
        error=error,
        error_description=description,
        method=_method(response),
        url=response.url,
    )


def json_object(
    response: HttpResponse, *, service_name: str | None, step: str | None = None, secrets: Iterable[str | None] = ()
) -> Mapping[str, Any]:
    """The response's JSON object (after :func:`check_status`), or a descriptive error."""
    check_status(response, service_name=service_name, step=step, secrets=secrets)
    body = _json_or_none(response)
    if body is None:
        raise _error(
            f"token endpoint answered non-JSON ({_content_type(response)}, {len(response.content)} bytes)", response, service_name, step
        )
    if not isinstance(body, Mapping):
        raise _error(f"token endpoint answered JSON that is not an object ({type(body).__name__})", response, service_name, step)
    return body


def token_from_response(
    response: HttpResponse,
    *,
    service_name: str | None,
    step: str | None = None,
    token_field: str = "access_token",
    expires_in_field: str = "expires_in",
    refresh_token_field: str | None = "refresh_token",
    token_type: str | None = None,
    default_lifetime: float | None = 3600.0,
    max_lifetime: float = DEFAULT_MAX_LIFETIME,
    clock: Clock | None = None,
    secrets: Iterable[str | None] = (),
) -> TokenData:
    """Parse a token endpoint's answer (status, JSON, fields) into a :class:`TokenData`."""
    body = json_object(response, service_name=service_name, step=step, secrets=secrets)
    try:
        return TokenData.from_response(
            body,
            token_field=token_field,
            expires_in_field=expires_in_field,
            refresh_token_field=refresh_token_field,
            token_type=token_type,
            default_lifetime=default_lifetime,
            max_lifetime=max_lifetime,
            clock=clock,
        )
    except AuthenticationException as exc:
        raise _error(exc.message, response, service_name, step) from None


def token_from_header(
    response: HttpResponse,
    header_name: str,
    *,
    service_name: str | None,
    step: str | None = None,
    token_type: str = "Bearer",
    lifetime: float | None = None,
    clock: Clock | None = None,
    secrets: Iterable[str | None] = (),
) -> TokenData:
    """Take the token from response header ``header_name`` (after :func:`check_status`)."""
    check_status(response, service_name=service_name, step=step, secrets=secrets)
    value = response.header(header_name)
    if value is None or not value.strip():
        raise _error(f"token endpoint answer has no {header_name!r} header", response, service_name, step)
    value = value.strip()
    if any(c in value for c in "\r\n\x00"):
        raise _error(f"token header {header_name!r} contains control characters", response, service_name, step)
    now = (clock or system_clock)()
    return TokenData(
        access_token=value,
        token_type=token_type,
        expires_at=now + timedelta(seconds=lifetime) if lifetime is not None else None,
        obtained_at=now,
    )


# -- helpers --------------------------------------------------------------------------------


def _error(message: str, response: HttpResponse, service_name: str | None, step: str | None) -> AuthenticationException:
    return AuthenticationException(
        message, service_name=service_name, step=step, status_code=response.status_code, method=_method(response), url=response.url
    )


def _method(response: HttpResponse) -> str | None:
    return response.request.method.value if response.request is not None else None


def _json_or_none(response: HttpResponse) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def _content_type(response: HttpResponse) -> str:
    value = response.header("Content-Type")
    if not value:
        return "no content type"
    return value.split(";", 1)[0].strip() or "no content type"


def _clean(value: Any, secrets: Iterable[str | None], limit: int) -> str | None:
    """A quotable server-sent string: text only, secrets scrubbed, length capped."""
    if not isinstance(value, str) or not value:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            value = value.replace(secret, MASK)
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 3] + "..."
