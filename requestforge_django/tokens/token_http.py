"""The HTTP side of every token request: the private token client, the wire request, the send.

Shared by the OAuth2 providers, metadata discovery and the pipeline fetchers (so it
sits below all of them). The private token client (:func:`build_token_client`) draws the
trust boundary of a token request:

* it never follows a redirect to another origin (scheme, host, port): such a hop is
  refused before anything is sent there and becomes an :class:`AuthenticationException`
  naming the other origin. Redirects within the endpoint's own origin are followed
  (at most :data:`MAX_TOKEN_REDIRECTS`), as HTTP says: 307/308 repeat the POST with its
  form, 301/302/303 turn it into a body-less GET;
* it reads at most ``max_response_bytes`` of an answer, and the whole exchange
  (connect, redirects, body) must finish within ``deadline`` seconds, which the
  Django layer keeps below ``LOCK_TIMEOUT`` (:func:`fetch_deadline`) so the
  cross-process lease never expires under the process fetching.

Secrets are held as :class:`~requestforge_django.http.secrets.Secret` values and
revealed only inside :func:`wire_request`, where the wire request is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..http.client import HttpClient
from ..http.config import HttpClientConfig
from ..http.exceptions import AuthenticationException, HttpClientException, UntrustedOriginException
from ..http.messages import HttpMethod, HttpRequest, HttpResponse
from ..http.secrets import Origin, Secret, reveal_all
from .parsing import redirect_error, transport_error

#: Default per-read timeout (seconds) of a token request: of providers built directly and of
#: pipeline steps without ``TIMEOUT``. The registry gives an OAuth client's provider that
#: client's ``AUTH["TOKEN_TIMEOUT"]`` or ``TIMEOUT`` (``registry.token_request_timeout``).
DEFAULT_TOKEN_TIMEOUT: float = 10.0

#: Default cap on a token answer's size (``TOKEN_MAX_BYTES``): 1 MiB.
DEFAULT_TOKEN_MAX_BYTES: int = 1024 * 1024

#: Same-origin redirects a token request follows at most.
MAX_TOKEN_REDIRECTS: int = 5

#: Seconds a fetch's deadline stays below the lease (``LOCK_TIMEOUT``), for storing the token.
LEASE_MARGIN: float = 1.0

#: The shortest fetch deadline that makes sense; a ``LOCK_TIMEOUT`` below it plus the margin is a check error.
MIN_FETCH_DEADLINE: float = 1.0


def fetch_deadline(timeout: float, lock_timeout: float) -> float:
    """The overall deadline of one token fetch: ``timeout``, but never past the lease.

    ``min(timeout, lock_timeout - LEASE_MARGIN)``, at least :data:`MIN_FETCH_DEADLINE`
    (settings whose ``LOCK_TIMEOUT`` cannot fit that are a ``manage.py check`` error).
    """
    return max(min(float(timeout), float(lock_timeout) - LEASE_MARGIN), MIN_FETCH_DEADLINE)


def build_token_client(
    timeout: float,
    name: str,
    *,
    endpoint: str | None = None,
    verify_ssl: bool | str = True,
    deadline: float | None = None,
    max_response_bytes: int | None = DEFAULT_TOKEN_MAX_BYTES,
) -> HttpClient:
    """A private client for a token endpoint (see the module doc).

    No auth hook, no retries; it trusts only ``endpoint``'s origin (the one place its
    secrets may go) and never follows a redirect to another origin; answers capped at
    ``max_response_bytes``; the whole exchange bounded by ``deadline`` (default ``timeout``).
    """
    origin = Origin.of(endpoint) if endpoint else None
    return HttpClient(
        HttpClientConfig(
            default_timeout=timeout,
            name=name,
            trusted_origins=(str(origin),) if origin is not None else (),
            verify_ssl=verify_ssl,
            max_redirects=MAX_TOKEN_REDIRECTS,
            cross_origin_redirects="refuse",
            max_response_bytes=max_response_bytes,
            total_timeout=deadline if deadline is not None else timeout,
        )
    )


def wire_request(
    method: HttpMethod,
    url: str,
    *,
    headers: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    json_data: Any = None,
    data: Any = None,
    timeout: float | None = None,
) -> HttpRequest:
    """The wire request: the one place the :class:`Secret` values of a token request are revealed.

    Names whose values were secrets are marked ``sensitive`` on the request (masked
    wherever it is shown). The revealed copies are temporaries of this one expression,
    so no frame local anywhere in the token layer holds them.
    """
    return HttpRequest(
        method,
        url,
        headers=reveal_all(dict(headers)),
        params=reveal_all(dict(params)) if params else None,
        json_data=reveal_all(json_data),
        data=reveal_all(data),
        timeout=timeout,
        sensitive=frozenset(_secret_names(headers, params, json_data, data)),
    )


def send_token_request(http: HttpClient, request: HttpRequest, *, service_name: str | None, step: str | None, url: str) -> HttpResponse:
    """Send a token request; every failure becomes an :class:`AuthenticationException`.

    A redirect to another origin (refused by the token client) names only that origin
    and is raised outside the ``except`` block, so no exception chain carries the
    redirect target's path or query.
    """
    refused: AuthenticationException | None = None
    try:
        return http.request(request)
    except UntrustedOriginException as exc:
        if exc.origin == str(Origin.of(url)):
            # Not a redirect: a caller-supplied client that does not trust the endpoint itself.
            refused = AuthenticationException(
                f"the HTTP client given for the token endpoint does not trust its origin ({exc.origin}); build it with that "
                "origin as its base URL or a trusted origin",
                service_name=service_name,
                step=step,
                method=exc.method,
                url=url,
            )
        else:
            refused = redirect_error(exc, service_name=service_name, step=step, url=url)
    except HttpClientException as exc:
        raise transport_error(exc, service_name=service_name, step=step, url=url) from exc
    raise refused


def _secret_names(*values: Any) -> set[str]:
    """Lower-case names (header, param, top-level field) whose values are :class:`Secret`."""
    names: set[str] = set()
    for value in values:
        if isinstance(value, Mapping):
            names.update(str(k).lower() for k, v in value.items() if isinstance(v, Secret))
        elif isinstance(value, (list, tuple)):
            pairs = [item for item in value if isinstance(item, tuple) and len(item) == 2]
            names.update(str(key).lower() for key, item in pairs if isinstance(item, Secret))
    return names
