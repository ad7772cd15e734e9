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
* every value the library *sent* (form, JSON and query fields, header values,
  earlier steps' tokens; passed in as ``secrets``, each a
  :class:`~requestforge_django.http.secrets.Secret`) is scrubbed from anything that is
  quoted: a partner that echoes a field back in its error text (a ``pin``, a client
  secret) cannot put it into exception text, and so not into logs, the status record,
  the admin page or ``requestforge_status``, which all show that text;
* the URL on an error is the configured endpoint without the query parameters sent;
* a redirect to another origin (refused by the token client) names only that origin.

``secrets`` arguments hold :class:`Secret` values so that a frame of these functions on
Django's DEBUG error page shows ``Secret('****')``, never the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from ..http.exceptions import (
    AuthenticationException,
    ConnectionException,
    HttpClientException,
    ResponseParseException,
    SSLException,
    TimeoutException,
    UntrustedOriginException,
)
from ..http.masking import scrub as scrub_text
from ..http.messages import HttpRequest, HttpResponse
from ..http.secrets import Secret
from .data import DEFAULT_MAX_LIFETIME, DEFAULT_MIN_LIFETIME, Clock, TokenData, header_problem, system_clock, validate_token

_DESCRIPTION_LIMIT = 300

#: Sent values shorter than this are not scrubbed (they would mangle ordinary words).
MIN_SCRUBBED_LENGTH = 4

#: Header values the library sets itself and that are no secret of anybody's.
_CONSTANT_HEADERS = frozenset({"accept", "content-type"})

#: Form fields whose values are protocol constants ("client_credentials"), not user data.
_CONSTANT_FIELDS = frozenset({"grant_type"})

_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,60}/[A-Za-z0-9!#$&^_.+-]{1,60}")

Secrets = Iterable[Secret | None]


def transport_error(
    exc: HttpClientException, *, service_name: str | None, step: str | None = None, url: str | None = None
) -> AuthenticationException:
    """An :class:`AuthenticationException` for a token request that got no HTTP answer.

    Callers handle :class:`UntrustedOriginException` with :func:`redirect_error` first.
    """
    if isinstance(exc, ResponseParseException):
        # Our own text (the answer's size cap), never the server's.
        return AuthenticationException(
            f"token endpoint answer refused: {exc.message}", service_name=service_name, step=step, method=exc.method, url=url or exc.url
        )
    if isinstance(exc, TimeoutException):
        what = f"token endpoint timed out: {exc.message}"  # our text: a read timeout, or the fetch deadline
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


def redirect_error(
    exc: UntrustedOriginException, *, service_name: str | None, step: str | None = None, url: str | None = None
) -> AuthenticationException:
    """The token endpoint redirected to another origin, which the token client refused to follow.

    Names that origin only (``scheme://host[:port]``): the path and query of the redirect
    target may carry what the partner put there. Carries no ``original`` (whose URL is the
    full target); raise it outside the ``except`` block so no ``__context__`` holds it either.
    """
    return AuthenticationException(
        f"token endpoint redirected to another origin ({exc.origin}); token requests never follow a redirect "
        "to another origin, so nothing was sent there",
        service_name=service_name,
        step=step,
        method=exc.method,
        url=url,
    )


# The raising functions below never bind the decoded body (server text, possibly echoing
# what was sent, or the refused token) to a local: their frames are what Django's DEBUG
# page shows. Helpers that hold it return before anything is raised.


def check_status(response: HttpResponse, *, service_name: str | None, step: str | None = None, secrets: Secrets = ()) -> None:
    """Raise :class:`AuthenticationException` unless ``response`` is a 2xx."""
    secrets = _as_secrets(secrets)
    if 200 <= response.status_code < 300:
        return
    message, error, description = _status_error(response, secrets)
    raise AuthenticationException(
        message,
        service_name=service_name,
        step=step,
        status_code=response.status_code,
        error=error,
        error_description=description,
        method=_method(response),
        url=_request_url(response),
    )


def json_object(response: HttpResponse, *, service_name: str | None, step: str | None = None, secrets: Secrets = ()) -> Mapping[str, Any]:
    """The response's JSON object (after :func:`check_status`), or a descriptive error."""
    secrets = _as_secrets(secrets)
    check_status(response, service_name=service_name, step=step, secrets=secrets)
    found, problem = _body_object(response)
    if found is None:
        raise _error(problem, response, service_name, step, secrets)
    return found


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
    min_lifetime: float = DEFAULT_MIN_LIFETIME,
    clock: Clock | None = None,
    secrets: Secrets = (),
) -> TokenData:
    """Parse a token endpoint's answer (status, JSON, fields) into a :class:`TokenData`.

    The token is validated before it is returned (so before anything caches it): it
    must fit in a header (:func:`~.data.header_problem`), ``token_type`` must be one
    word, and a lifetime the endpoint sends must be at least ``min_lifetime`` seconds.
    """
    secrets = _as_secrets(secrets)
    problem: str | None = None
    try:
        token = TokenData.from_response(
            json_object(response, service_name=service_name, step=step, secrets=secrets),
            token_field=token_field,
            expires_in_field=expires_in_field,
            refresh_token_field=refresh_token_field,
            token_type=token_type,
            default_lifetime=default_lifetime,
            max_lifetime=max_lifetime,
            min_lifetime=min_lifetime,
            clock=clock,
        )
        validate_token(token)
    except AuthenticationException as exc:
        if exc.status_code is not None:
            raise  # json_object's own error, complete already
        problem = exc.message
    if problem is not None:
        raise _error(problem, response, service_name, step, secrets)  # outside the except: no context holding the body
    return token


def token_from_header(
    response: HttpResponse,
    header_name: str,
    *,
    service_name: str | None,
    step: str | None = None,
    token_type: str = "Bearer",
    lifetime: float | None = None,
    clock: Clock | None = None,
    secrets: Secrets = (),
) -> TokenData:
    """Take the token from response header ``header_name`` (after :func:`check_status`).

    The value is validated like a body token (see :func:`token_from_response`).
    """
    secrets = _as_secrets(secrets)
    check_status(response, service_name=service_name, step=step, secrets=secrets)
    if not (response.header(header_name) or "").strip():
        raise _error(f"token endpoint answer has no {header_name!r} header", response, service_name, step, secrets)
    problem = header_problem((response.header(header_name) or "").strip())
    if problem:
        raise _error(f"token header {header_name!r} {problem}; it cannot be sent in a header", response, service_name, step, secrets)
    now = (clock or system_clock)()
    token = TokenData(
        access_token=(response.header(header_name) or "").strip(),
        token_type=token_type,
        expires_at=now + timedelta(seconds=lifetime) if lifetime is not None else None,
        obtained_at=now,
    )
    problem = None
    try:
        validate_token(token)
    except AuthenticationException as exc:
        problem = exc.message
    if problem is not None:
        raise _error(problem, response, service_name, step, secrets)
    return token


def sent_values(request: HttpRequest | None, *, extra: Iterable[Any] = ()) -> tuple[Secret, ...]:
    """Every value a token request carried, as :class:`Secret` values to scrub from error text.

    Form, JSON and query values (leaves of nested ones too), header values except the
    constant ``Accept``/``Content-Type``, and ``extra`` (e.g. the earlier steps' tokens a
    template filled in, or a client secret sent inside a Basic header). ``grant_type``
    values are protocol constants and stay readable.
    """
    found: list[Any] = list(extra)
    if request is not None:
        found += [value for name, value in request.headers.items() if name.lower() not in _CONSTANT_HEADERS]
        found += _leaves(request.params)
        found += _leaves(request.json_data)
        data = request.data
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        if isinstance(data, str):
            found += [value for key, value in parse_qsl(data, keep_blank_values=True) if key not in _CONSTANT_FIELDS]
            found.append(data)
        elif isinstance(data, Mapping):
            found += _leaves({key: value for key, value in data.items() if key not in _CONSTANT_FIELDS})
        else:
            found += _leaves(data)
    return tuple(Secret(text) for text in dict.fromkeys(_as_text(value) for value in found) if text)


def scrub(text: str, secrets: Secrets) -> str:
    """``text`` with every secret (and its URL-encoded forms) replaced by ``****``, longest first."""
    return scrub_text(text, (secret for secret in secrets if secret), MIN_SCRUBBED_LENGTH)


# -- helpers --------------------------------------------------------------------------------


def _error(message: str, response: HttpResponse, service_name: str | None, step: str | None, secrets: Secrets) -> AuthenticationException:
    return AuthenticationException(
        scrub(message, secrets),
        service_name=service_name,
        step=step,
        status_code=response.status_code,
        method=_method(response),
        url=_request_url(response),
    )


def _status_error(response: HttpResponse, secrets: tuple[Secret, ...]) -> tuple[str, str | None, str | None]:
    """Message, ``error`` and ``error_description`` of a non-2xx answer, scrubbed."""
    body = _json_or_none(response)
    error = description = None
    if isinstance(body, Mapping):
        error = _clean(body.get("error"), secrets, 100)
        description = _clean(body.get("error_description") or body.get("message"), secrets, _DESCRIPTION_LIMIT)
    message = f"token endpoint answered HTTP {response.status_code}"
    if body is None and response.content:
        message += f" with non-JSON ({_content_type(response)}, {len(response.content)} bytes)"
    return scrub(message, secrets), error, description


def _body_object(response: HttpResponse) -> tuple[Mapping[str, Any] | None, str]:
    """The answer's JSON object, or ``None`` and why not."""
    body = _json_or_none(response)
    if isinstance(body, Mapping):
        return body, ""
    if body is None:
        return None, f"token endpoint answered non-JSON ({_content_type(response)}, {len(response.content)} bytes)"
    return None, f"token endpoint answered JSON that is not an object ({type(body).__name__})"


def _as_secrets(secrets: Iterable[Secret | str | None]) -> tuple[Secret, ...]:
    """A tuple of :class:`Secret` (plain strings from custom callers are wrapped at once)."""
    return tuple(secret if isinstance(secret, Secret) else Secret(secret) for secret in secrets if secret)


def _request_url(response: HttpResponse) -> str:
    """The URL the request was made to, without the query parameters sent (they may hold tokens)."""
    return response.request.url if response.request is not None else response.url.split("?", 1)[0]


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value


def _as_text(value: Any) -> str:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return ""


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
    """The media type, if it looks like one (the header is server text: nothing else of it is quoted)."""
    value = (response.header("Content-Type") or "").split(";", 1)[0].strip()
    if not value:
        return "no content type"
    return value if _MEDIA_TYPE.fullmatch(value) else "unrecognised content type"


def _clean(value: Any, secrets: Secrets, limit: int) -> str | None:
    """A quotable server-sent string: text only, sent values scrubbed, length capped."""
    if not isinstance(value, str) or not value:
        return None
    cleaned: str = " ".join(scrub(value, secrets).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
