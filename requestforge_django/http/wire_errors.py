"""A ``requests`` exception as one of the library's typed exceptions.

Kept apart from the transport so the mapping is one table to read: timeouts, TLS,
connection and redirect failures each become their own :class:`HttpClientException`
subclass, with the original kept (redacted by the exception) for debugging.
"""

from __future__ import annotations

import requests

from .exceptions import ConnectionException, HttpClientException, SSLException, TimeoutException


def translate_requests_error(exc: BaseException, method: str, url: str) -> HttpClientException:
    """Map a ``requests`` exception to ours, keeping the original (redacted by the exception) for debugging."""
    original = exc
    detail = type(exc).__name__
    if isinstance(exc, requests.exceptions.Timeout):
        kind = "Connect timeout" if isinstance(exc, requests.exceptions.ConnectTimeout) else "Read timeout"
        return TimeoutException(f"{kind} ({detail})", method=method, url=url, original=original)
    if isinstance(exc, requests.exceptions.SSLError):
        return SSLException(f"TLS error ({detail})", method=method, url=url, original=original)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionException(f"Connection failed ({detail})", method=method, url=url, original=original)
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return HttpClientException(f"Too many redirects ({detail})", method=method, url=url, original=original)
    return HttpClientException(f"Request failed ({detail})", method=method, url=url, original=original)
