"""Rules of the OAuth AUTH TYPEs' machine credentials: the token endpoint, client authentication, keys, ASSERTION.

* ``TOKEN_URL`` or ``ISSUER`` (RFC 8414 discovery), never both (E005), one of them always (E011);
* ``CLIENT_AUTH_METHOD`` and the keys each method uses: the secret (``client_secret_*``,
  W009 when too short to sign with), a ``PRIVATE_KEY`` (``private_key_jwt``), ``ALGORITHM``
  and ``KEY_ID``; a key is parsed here, once, by the function that will sign with it
  (``tokens.signing.private_key_error``), so an unreadable key (E050) or one that does
  not fit its algorithm (E051) fails ``manage.py check``, and without the JOSE extra
  a JWT method is E055;
* ``AUDIENCE`` and ``RESOURCE`` (RFC 8707: absolute URIs without a fragment, E054);
* ``jwt_bearer``'s ``ASSERTION`` and ``token_exchange``'s ``SUBJECT_TOKEN_TYPE``.

A message names the offending key and describes a key by its type and size, never by
its content (the signing module's messages are built the same way).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ...http.exceptions import ConfigurationError
from ...tokens.signing import hmac_secret_problem, jwt_support_problem, private_key_error, validate_claims
from ..ids import E_AUTH_MISSING, E_CONFLICT, E_JWT_EXTRA, E_KEY_ALGORITHM, E_PRIVATE_KEY, E_RESOURCE, W_IGNORED, W_SHORT_SECRET
from ..keys import ASSERTION_KEYS
from ..predicates import type_name
from ..problems import Path
from ..readers import INVALID, Reader
from ..specs import ASSERTION_MAX_LIFETIME, HMAC_ALGORITHMS, JWT_CLIENT_AUTH_METHODS, KEY_ALGORITHMS, AssertionSpec, default_of

__all__ = ["OAuthRules", "error_detail", "is_absolute_uri"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def is_absolute_uri(value: str) -> bool:
    """RFC 3986 section 4.3: a scheme and something after it; here also no fragment (RFC 8707 section 2)."""
    scheme, colon, rest = value.partition(":")
    return bool(colon and rest and _SCHEME.fullmatch(scheme)) and "#" not in value and not any(c.isspace() for c in value)


def error_detail(exc: ConfigurationError) -> str:
    """The message of ``exc`` without its ``field:`` prefix (the problem names the key itself)."""
    text = exc.message
    prefix = f"{exc.field}: " if exc.field else ""
    text = text[len(prefix) :] if prefix and text.startswith(prefix) else text
    return text if text.endswith(".") else f"{text}."


#: ``(sha256 of the PEM, ALGORITHM)`` -> ``(field, detail)`` of what :func:`private_key_error` said (``None``: the key
#: can sign). An RSA key takes ~30 ms to load and check, and one process validates the same setting several times
#: (``manage.py check``, the settings spec, admin forms). Only a digest of the key and the text of the error (which
#: never quotes it) are kept, not the exception, whose traceback would hold the key in a frame.
_KEY_ERRORS: OrderedDict[tuple[str, str | None], tuple[str | None, str] | None] = OrderedDict()
_KEY_ERRORS_MAX = 64
_KEY_ERRORS_LOCK = threading.Lock()


def _key_error(pem: str, algorithm: str | None) -> tuple[str | None, str] | None:
    """``(field, detail)`` of :func:`private_key_error`, remembered per key digest and algorithm (see :data:`_KEY_ERRORS`)."""
    digest = (hashlib.sha256(pem.encode("utf-8", "replace")).hexdigest(), algorithm)
    with _KEY_ERRORS_LOCK:
        if digest in _KEY_ERRORS:
            _KEY_ERRORS.move_to_end(digest)
            return _KEY_ERRORS[digest]
    error = private_key_error(pem, algorithm)
    found = None if error is None else (error.field, error_detail(error))
    del error  # its traceback holds the key in a frame
    with _KEY_ERRORS_LOCK:
        _KEY_ERRORS[digest] = found
        while len(_KEY_ERRORS) > _KEY_ERRORS_MAX:
            _KEY_ERRORS.popitem(last=False)
    return found


class OAuthRules(Reader):
    """The machine-credential keys of an OAuth AUTH (see the module docstring); ``raw`` is the AUTH dict."""

    def token_endpoint(self, raw: Mapping[Any, Any], path: Path, type_: str) -> tuple[Any, Any]:
        """``(token_url, issuer)``: exactly one of TOKEN_URL and ISSUER (E005 both, E011 neither)."""
        token_url = self.read(raw, "TOKEN_URL", path, self.url, None)
        issuer = self.read(raw, "ISSUER", path, self.issuer, None)
        if "TOKEN_URL" in raw and "ISSUER" in raw:
            self.report(
                E_CONFLICT,
                (*path, "ISSUER"),
                "is set together with TOKEN_URL; ISSUER finds the token endpoint in the issuer's metadata.",
                "Remove one of them.",
            )
        elif "TOKEN_URL" not in raw and "ISSUER" not in raw:
            self.report(
                E_AUTH_MISSING,
                (*path, "TOKEN_URL"),
                f'is required for AUTH TYPE "{type_}", or ISSUER to discover the token endpoint (RFC 8414).',
            )
        self.plain_http(raw.get("TOKEN_URL"), (*path, "TOKEN_URL"), "the client credentials")
        self.plain_http(raw.get("ISSUER"), (*path, "ISSUER"), "the client credentials")
        return token_url, issuer

    def issuer(self, value: Any, path: Path) -> Any:
        """ISSUER: an http(s) URL without query or fragment (RFC 8414 section 2), compared exactly with the metadata's."""
        url = self.url(value, path)
        if url is INVALID:
            return INVALID
        parts = urlsplit(url)
        if parts.query or parts.fragment or "?" in url or "#" in url:
            return self.invalid(path, "must be the issuer identifier: a URL without query or fragment (RFC 8414 section 2).")
        return url

    def client_authentication(self, raw: Mapping[Any, Any], path: Path, method: str, *, credential: bool) -> Any:
        """The ALGORITHM of the client authentication; W003 for keys ``method`` does not use; checks the key or secret."""
        unused = {
            "client_secret_post": ("PRIVATE_KEY", "KEY_ID", "ALGORITHM"),
            "client_secret_basic": ("PRIVATE_KEY", "KEY_ID", "ALGORITHM"),
            "client_secret_jwt": ("PRIVATE_KEY",),
            "private_key_jwt": ("CLIENT_SECRET",),
        }[method]
        for key in unused:
            if key in raw:
                hint = (
                    'Set CLIENT_AUTH_METHOD "private_key_jwt" to sign client assertions with it, or remove it.'
                    if key == "PRIVATE_KEY"
                    else "Remove it."
                )
                self.report(W_IGNORED, (*path, key), f'has no effect with CLIENT_AUTH_METHOD "{method}".', hint)
        algorithms = HMAC_ALGORITHMS if method == "client_secret_jwt" else KEY_ALGORITHMS
        algorithm = None
        if "ALGORITHM" not in unused:
            algorithm = self.read(raw, "ALGORITHM", path, lambda v, p: self.choice(v, p, algorithms, case=str.upper), None)
        if method in JWT_CLIENT_AUTH_METHODS:
            self.jwt_extra((*path, "CLIENT_AUTH_METHOD"), f'CLIENT_AUTH_METHOD "{method}"')
        pem = raw.get("PRIVATE_KEY")
        if method == "private_key_jwt" and not credential and isinstance(pem, str) and "ALGORITHM" not in self._failed(path):
            self.signing_key(pem, algorithm, path)
        if method == "client_secret_jwt" and not credential and isinstance(raw.get("CLIENT_SECRET"), str):
            problem = hmac_secret_problem(raw["CLIENT_SECRET"])
            if problem is not None:
                self.report(
                    W_SHORT_SECRET,
                    (*path, "CLIENT_SECRET"),
                    f"is too short to sign with: {problem} (RFC 7518 section 3.2); the value is not shown.",
                    "Ask the partner for a longer secret, or use private_key_jwt.",
                )
        return algorithm

    def _failed(self, path: Path) -> set[str]:
        """Keys directly under ``path`` already reported as errors (a key is not checked against a rejected ALGORITHM)."""
        return {str(p.path[len(path)]) for p in self.problems if p.is_error and len(p.path) > len(path) and p.path[: len(path)] == path}

    def jwt_extra(self, path: Path, what: str) -> bool:
        """E055 when the JOSE extra is missing; ``True`` when signing can work."""
        problem = jwt_support_problem()
        if problem is None:
            return True
        if any(p.id == E_JWT_EXTRA and p.path[:3] == path[:3] for p in self.problems):
            return False  # once per client
        self.report(E_JWT_EXTRA, path, f"needs signed JWTs ({what}), but {problem}.", "Install the extra, or choose another method.")
        return False

    def signing_key(self, pem: str, algorithm: str | None, path: Path) -> None:
        """E050 (unreadable key) or E051 (it does not fit ALGORITHM): the key parsed as the provider will parse it."""
        if jwt_support_problem() is not None:
            return  # E055 says what is missing; the key cannot be read without it
        error = _key_error(pem, algorithm)
        if error is None:
            return
        field, detail = error
        if field == "algorithm":
            self.report(E_KEY_ALGORITHM, (*path, "ALGORITHM"), detail, "Choose an ALGORITHM the key signs with, or another key.")
        else:
            self.report(
                E_PRIVATE_KEY,
                (*path, "PRIVATE_KEY"),
                f"{detail} The value is not shown.",
                "Paste the whole unencrypted PEM (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----), RSA of 2048 bits "
                "or more, or EC on P-256, P-384 or P-521.",
            )

    def values(self, value: Any, path: Path) -> Any:
        """AUDIENCE or RESOURCE: a string or a list of strings, as a tuple."""
        if isinstance(value, str):
            value = [value]
        items = self.str_list(value, path)
        if items is INVALID or items:
            return items
        return self.invalid(path, "must be a string or a non-empty list of strings.")

    def resources(self, value: Any, path: Path) -> Any:
        """RESOURCE: each an absolute URI without a fragment (RFC 8707 section 2), else E054."""
        items = self.values(value, path)
        if items is INVALID:
            return INVALID
        bad = [index for index, item in enumerate(items) if not is_absolute_uri(item)]
        for index in bad:
            where = (*path, index) if not isinstance(value, str) else path
            self.report(
                E_RESOURCE,
                where,
                "is not an absolute URI without a fragment (RFC 8707 section 2).",
                "Write the target API's URI, e.g. https://api.example.com, without #fragment.",
            )
        return INVALID if bad else items

    def parameter_conflicts(self, raw: Mapping[Any, Any], path: Path) -> None:
        """E005: AUDIENCE or RESOURCE beside the same parameter in EXTRA_PARAMS (two values, one intent)."""
        extra = raw.get("EXTRA_PARAMS")
        if not isinstance(extra, Mapping):
            return
        for key, param in (("AUDIENCE", "audience"), ("RESOURCE", "resource")):
            if key in raw and param in extra:
                self.report(
                    E_CONFLICT,
                    (*path, key),
                    f'is set together with EXTRA_PARAMS["{param}"]; the token request would carry both.',
                    f'Keep {key} and remove "{param}" from EXTRA_PARAMS.',
                )

    def token_type_uri(self, value: Any, path: Path) -> Any:
        """SUBJECT_TOKEN_TYPE: a token type URI (RFC 8693 section 3), e.g. urn:ietf:params:oauth:token-type:jwt."""
        text = self.string(value, path)
        if text is INVALID or is_absolute_uri(text):
            return text
        return self.invalid(path, "must be a token type URI such as urn:ietf:params:oauth:token-type:access_token.")

    # -- jwt_bearer ---------------------------------------------------------------------------------

    def assertion(self, value: Any, path: Path, *, client_id: Any, credential: str | None) -> Any:
        """``ASSERTION``: the grant's JWT; ISSUER defaults to CLIENT_ID, SUBJECT to ISSUER, the key may come from CREDENTIAL."""
        raw = self.mapping(value, path)
        if raw is None:
            return INVALID
        self.keys(raw, path, ASSERTION_KEYS)
        issuer = self.read(raw, "ISSUER", path, self.string, None)
        if "ISSUER" not in raw and not client_id and not credential:
            self.report(
                E_AUTH_MISSING,
                (*path, "ISSUER"),
                'is required for AUTH TYPE "jwt_bearer" without CLIENT_ID: the assertion\'s "iss" (e.g. the service account).',
            )
        subject = self.read(raw, "SUBJECT", path, self.string, None)
        audience = self.read(raw, "AUDIENCE", path, self.single_audience, None)
        private_key = self.read(raw, "PRIVATE_KEY", path, self.secret, None)
        key_id = self.read(raw, "KEY_ID", path, self.string, None)
        for key in ("PRIVATE_KEY", "KEY_ID"):
            if credential and key in raw:
                self.report(
                    E_CONFLICT,
                    (*path, key),
                    f'is set together with CREDENTIAL "{credential}"; the credential row supplies the signing key and its id.',
                    f"Remove {key} from settings, or remove CREDENTIAL.",
                )
        if not credential and "PRIVATE_KEY" not in raw:
            self.report(
                E_AUTH_MISSING,
                (*path, "PRIVATE_KEY"),
                'is required for AUTH TYPE "jwt_bearer" (or set CREDENTIAL to a credential holding the private key).',
            )
        algorithm = self.read(raw, "ALGORITHM", path, lambda v, p: self.choice(v, p, KEY_ALGORITHMS, case=str.upper), None)
        lifetime = self.field(raw, path, AssertionSpec, "lifetime", self.lifetime)
        claims = self.read(raw, "CLAIMS", path, self.claims, default_of(AssertionSpec, "claims"))
        self.jwt_extra(path, 'AUTH TYPE "jwt_bearer"')
        if isinstance(private_key, str) and not credential and "ALGORITHM" not in self._failed(path):
            self.signing_key(private_key, algorithm, path)
        return AssertionSpec(
            issuer=issuer,
            subject=subject,
            audience=audience,
            private_key=private_key,
            key_id=key_id,
            algorithm=algorithm,
            lifetime=lifetime,
            claims=claims,
        )

    def single_audience(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)):
            return self.invalid(path, 'must be a single string: a signed assertion has one "aud" (the contract).')
        return self.string(value, path)

    def lifetime(self, value: Any, path: Path) -> Any:
        """LIFETIME: whole seconds from 1 to 300 (a signed assertion lives at most five minutes)."""
        if self._is_whole(value) and 1 <= value <= ASSERTION_MAX_LIFETIME:
            return int(value)
        return self.invalid(
            path,
            f"must be whole seconds from 1 to {ASSERTION_MAX_LIFETIME}, got {self._shown_number(value)}: "
            f"an assertion's exp is at most {ASSERTION_MAX_LIFETIME} s after its iat.",
        )

    @staticmethod
    def _is_whole(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and float(value).is_integer()

    def claims(self, value: Any, path: Path) -> Any:
        try:
            return validate_claims(value, field="CLAIMS")
        except ConfigurationError as exc:
            return self.invalid(path, error_detail(exc) if isinstance(value, Mapping) else f"must be a dict, got {type_name(value)}.")
