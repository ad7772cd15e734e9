"""``manage.py requestforge_call NAME METHOD PATH [--data JSON] [--curl]``: one request through a live client.

For debugging a configured client from a shell: the request goes through the whole
lifecycle (auth, token cache, retry, breaker, hooks), exactly as application code
would send it. Output is masked: the response headers and ``--curl`` hide
credentials (every header the auth hook marked sensitive, whatever its name), and the
body is shortened.

``PATH`` is a path relative to the client's ``BASE_URL``, or an absolute URL on that
origin or one of its ``TRUSTED_ORIGINS``. Any other origin is refused before anything
is sent, whether or not the client has credentials: the command exists to exercise a
configured partner, not to carry its credentials somewhere else.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...http.exceptions import HttpClientException
from ...http.masking import mask_headers, mask_mapping
from ...http.messages import HttpMethod, HttpRequest
from ...http.secrets import Origin
from ...registry import registry
from ._base import run_or_fail

#: Longest response body printed (characters).
MAX_BODY = 4000


class Command(BaseCommand):
    help = "Send one request through a configured client and print the response (credentials masked)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", help="client name")
        parser.add_argument("method", type=str.upper, choices=[m.value for m in HttpMethod])
        parser.add_argument("path", help="path relative to the client's BASE_URL (or an absolute URL on its origin or a trusted one)")
        parser.add_argument("--data", help="JSON request body")
        parser.add_argument("--header", "-H", action="append", default=[], help="extra header 'Name: value' (repeatable)")
        parser.add_argument("--curl", action="store_true", help="also print the request as a curl command (credentials masked)")

    def handle(
        self, *args: Any, name: str, method: str, path: str, data: str | None, header: list[str], curl: bool, **options: Any
    ) -> None:
        client = run_or_fail(lambda: registry.get_client(name))
        _check_destination(name, client, path)
        request = HttpRequest(HttpMethod(method), path, headers=_headers(header), json_data=_json(data))
        try:
            response = client.request(request)
        except HttpClientException as exc:  # str() is masked
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        sensitive = client.config.sensitive_headers
        if curl and response.request is not None:  # with the absolute URL, so it can be pasted
            sent = response.request  # the first hop's URL: after a redirect, response.url is where the credentials were stripped
            self.stdout.write(sent.with_url(client.absolute_url(sent.url)).to_curl(sensitive_headers=sensitive | sent.sensitive))
        self.stdout.write(f"HTTP {response.status_code} {response.reason}  ({response.elapsed_ms:.0f} ms)")
        for key, value in mask_headers(response.headers, sensitive).items():
            self.stdout.write(f"{key}: {value}")
        self.stdout.write("")
        self.stdout.write(_body(response))
        if response.status_code >= 400:
            raise CommandError(f"{name} answered HTTP {response.status_code}")


def _check_destination(name: str, client: Any, path: str) -> None:
    """A path, or an absolute URL on the client's own or a trusted origin; anything else is refused here, unsent."""
    if "://" not in path and not path.startswith("//"):
        return
    target = client.absolute_url(path)
    if client.trusts(target):
        return
    origin = Origin.of(target)
    shown = str(origin) if origin is not None else "a URL that is not http(s)"
    raise CommandError(
        f"Refused: {shown} is not the origin of client {name!r} nor one of its TRUSTED_ORIGINS; "
        "give a path relative to its BASE_URL. Nothing was sent."
    )


def _json(data: str | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}") from exc


def _headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        key, sep, content = value.partition(":")
        if not sep or not key.strip():
            raise CommandError(f"--header must look like 'Name: value', got {value!r}")
        headers[key.strip()] = content.strip()
    return headers


def _body(response: Any) -> str:
    """The body, JSON pretty-printed with secret-looking fields (``access_token``, ``password``...) masked."""
    try:
        text = json.dumps(mask_mapping(response.json()), indent=2, sort_keys=True)
    except Exception:
        text = response.text
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + f"\n... ({len(text) - MAX_BODY} more characters)"
