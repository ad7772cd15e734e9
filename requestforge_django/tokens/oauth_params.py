"""Validation of the token-request parameters that may repeat: ``audience`` and ``resource``.

Why here, framework-free: the providers validate them when built and ``manage.py
check`` validates the ``AUDIENCE``/``RESOURCE`` settings with the same functions, so a
value the check accepts is one the provider accepts. Each is a string or a list of
strings and is sent as one form parameter per value (RFC 8693 section 2.1, RFC 8707
section 2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..http.exceptions import ConfigurationError

#: RFC 3986 section 3.1: a scheme, then ``:``; what makes a URI absolute.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def text_values(value: Any, *, field: str) -> tuple[str, ...]:
    """``None`` -> ``()``, a string -> ``(value,)``, a list/tuple of non-empty strings -> a tuple; else :class:`ConfigurationError`."""
    if value is None:
        return ()
    items: Sequence[Any] = (value,) if isinstance(value, str) else value if isinstance(value, (list, tuple)) else ()
    if not items or not all(isinstance(item, str) and item.strip() for item in items):
        raise ConfigurationError("must be a non-empty string or a list of non-empty strings", field=field)
    return tuple(items)


def resource_values(value: Any, *, field: str = "resource") -> tuple[str, ...]:
    """Like :func:`text_values`, each an absolute URI without a fragment (RFC 8707 section 2)."""
    values = text_values(value, field=field)
    for item in values:
        if not _SCHEME.match(item) or any(char.isspace() for char in item):
            raise ConfigurationError(f"must be an absolute URI (RFC 8707), got {item!r}", field=field)
        if "#" in item:
            raise ConfigurationError(f"must not have a fragment (RFC 8707), got {item!r}", field=field)
    return values
