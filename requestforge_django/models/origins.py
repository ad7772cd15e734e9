"""The origins a credential is bound to, and the error raised when a database client would leave them.

See the package docstring for why a credential is bound; :attr:`Credential.allowed_origins`
holds the binding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from ..http.exceptions import ConfigurationError
from ..http.secrets import Origin
from ..setting.ids import E_CREDENTIAL_ORIGIN

if TYPE_CHECKING:
    from .credentials import Credential

#: ``user.has_perm(USE_CREDENTIAL_PERMISSION)``: may choose credentials in client definitions.
USE_CREDENTIAL_PERMISSION = "requestforge_django.use_credential"


def normalize_origin(text: Any) -> str:
    """``"HTTPS://Auth.Example.com:443/"`` -> ``"https://auth.example.com"``; ``ValueError`` unless an http(s) origin.

    An origin is scheme, host and port only: a path, query, fragment or user info is
    refused rather than dropped, so that what the credential manager typed is exactly
    what is enforced.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a non-empty string")
    value = text.strip()
    origin = Origin.of(value)
    if origin is None:
        raise ValueError("must be an http:// or https:// origin such as https://auth.example.com")
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("must be scheme://host[:port] only (no path, query, fragment or user info)")
    return str(origin)


def normalize_origins(values: Any) -> list[str]:
    """The normalized, de-duplicated origins of ``values``; ``ValidationError`` naming each bad entry."""
    if values is None or values == "":
        return []
    if not isinstance(values, (list, tuple)):
        raise ValidationError('Must be a list of origins, e.g. ["https://auth.example.com"].')
    origins: list[str] = []
    errors: list[str] = []
    for index, value in enumerate(values):
        try:
            origin = normalize_origin(value)
        except ValueError as exc:
            shown = repr(value) if isinstance(value, str) and len(value) <= 200 else type(value).__name__
            errors.append(f"Entry {index + 1} ({shown}) {exc}.")
            continue
        if origin not in origins:
            origins.append(origin)
    if errors:
        raise ValidationError(errors)
    return origins


def _origin(url: Any) -> str | None:
    origin = Origin.of(url) if isinstance(url, str) else None
    return None if origin is None else str(origin)


def credential_destinations(
    base_url: Any, token_url: Any = None, trusted_origins: Iterable[Any] = (), *, issuer: Any = None
) -> list[tuple[str, str]]:
    """``(key, origin)`` for every origin a client sends its credential's secrets or tokens to.

    ``TOKEN_URL`` receives the secrets themselves (client secret, password, a client
    assertion signed with the private key); with ``ISSUER`` instead, the token endpoint
    its metadata names, which discovery accepts only on the issuer's own origin, so the
    issuer's origin is where the secrets go. ``BASE_URL`` (and any origin the client
    trusts) receives the static secrets (API key, bearer token, Basic) and the tokens
    obtained with the credential. A URL that is not an absolute http(s) URL sends nothing
    and is left to the settings validation.
    """
    pairs: list[tuple[str, str]] = []
    endpoints = (("AUTH.TOKEN_URL", token_url), ("AUTH.ISSUER", issuer))
    for key, url in (*endpoints, ("BASE_URL", base_url), *(("TRUSTED_ORIGINS", o) for o in trusted_origins)):
        origin = _origin(url)
        if origin is not None and (key, origin) not in pairs:
            pairs.append((key, origin))
    return pairs


def unbound_destinations(credential: Credential, destinations: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(key, origin)`` pairs of ``destinations`` that ``credential`` is not bound to."""
    allowed = credential.allowed_origin_set()
    return [(key, origin) for key, origin in destinations if origin not in allowed]


class UnboundCredentialError(ConfigurationError):
    """A database-defined client would send a credential to an origin the credential is not bound to.

    Raised when the client (or its token manager) is built, before anything is sent.
    ``definition``, ``credential`` and ``origin`` name what was refused; never a secret.
    """

    def __init__(self, definition: str, credential: str, origin: str, key: str, allowed: Iterable[str] = ()) -> None:
        self.definition = definition
        self.credential = credential
        self.origin = origin
        self.key = key
        shown = ", ".join(allowed) or "none"
        super().__init__(
            f'database client "{definition}" would send credential "{credential}" to {origin} ({key}), which is not one of '
            f"the credential's allowed origins ({shown}); nothing was sent. A user with change permission on credentials must "
            f"add the origin to the credential, or fix the definition ({E_CREDENTIAL_ORIGIN}).",
            field="AUTH.CREDENTIAL",
        )


def ensure_bound(definition: str, credential: Credential, destinations: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`UnboundCredentialError` for the first destination ``credential`` is not bound to."""
    for key, origin in unbound_destinations(credential, destinations):
        raise UnboundCredentialError(definition, credential.name, origin, key, credential.allowed_origin_set())
