"""Every check id of the ``REQUESTFORGE`` setting, with its level and title: the one catalogue.

The table in ``docs/checks.md`` is written from :data:`CHECKS`. Some ids are reported
outside the validator (marked below): by ``checks_encryption`` (needs the database) or by
the admin forms (database definitions); they are listed here all the same, so a
newcomer finds every id in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

__all__ = ["CHECKS", "CheckInfo", "Level"]


class Level(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class CheckInfo:
    """What a check id means; the source of the table in ``docs/checks.md``."""

    id: str
    level: Level
    title: str


def _info(id_: str, title: str) -> CheckInfo:
    return CheckInfo(id_, Level.WARNING if ".W" in id_ else Level.ERROR, title)


E_NOT_A_DICT = "requestforge.E001"
E_UNKNOWN_KEY = "requestforge.E002"
E_INVALID = "requestforge.E003"
E_REQUIRED = "requestforge.E004"
E_CONFLICT = "requestforge.E005"
E_CACHE_ALIAS = "requestforge.E006"
E_ENCRYPTION_KEY = "requestforge.E007"
E_NAME = "requestforge.E008"
E_KEYS_MISSING = "requestforge.E009"  # an empty entry here; missing keys by checks_encryption (needs the database)
E_AUTH_TYPE = "requestforge.E010"
E_AUTH_MISSING = "requestforge.E011"
E_AUTH_PIPELINE = "requestforge.E012"
E_IMPORT = "requestforge.E013"
E_IMPORT_KIND = "requestforge.E014"
E_STEP_DUPLICATE = "requestforge.E021"
E_FETCHER = "requestforge.E022"
E_DEPENDS_UNKNOWN = "requestforge.E023"
E_DEPENDS_ORDER = "requestforge.E024"
E_DEPENDS_CYCLE = "requestforge.E025"
E_TEMPLATE = "requestforge.E026"
E_REFRESH_STEP = "requestforge.E027"
E_WARM = "requestforge.E030"
E_DEFINED_TWICE = "requestforge.E031"  # reported by checks_encryption and the admin forms
E_SHARED_NAME = "requestforge.E032"
E_HEADER_VALUE = "requestforge.E040"
E_PATH_MISSING = "requestforge.E041"
E_TRUSTED_ORIGIN = "requestforge.E042"
E_MIN_LIFETIME = "requestforge.E045"
E_FETCH_DEADLINE = "requestforge.E046"
E_TOKEN_TYPE = "requestforge.E047"
E_CREDENTIAL_ORIGIN = "requestforge.E043"  # reported by checks_encryption and the admin forms (database definitions)
E_PRIVATE_KEY = "requestforge.E050"
E_KEY_ALGORITHM = "requestforge.E051"
E_SUBJECT_TOKEN = "requestforge.E052"
E_SUBJECT_CYCLE = "requestforge.E053"
E_RESOURCE = "requestforge.E054"
E_JWT_EXTRA = "requestforge.E055"
W_LOCAL_CACHE = "requestforge.W001"
W_REFRESH_AHEAD = "requestforge.W002"
W_IGNORED = "requestforge.W003"
W_NO_TLS_VERIFY = "requestforge.W004"
W_PLAIN_HTTP = "requestforge.W005"
W_WARM_INTERVAL = "requestforge.W006"
W_DEBUG_FILTER = "requestforge.W007"
W_CREDENTIAL_MISSING = "requestforge.W008"  # reported by checks_encryption (needs the database)
W_SHORT_SECRET = "requestforge.W009"

#: Every check id, in documentation order.
CHECKS: Mapping[str, CheckInfo] = MappingProxyType(
    {
        info.id: info
        for info in (
            _info(E_NOT_A_DICT, "REQUESTFORGE is not a dict"),
            _info(E_UNKNOWN_KEY, "unknown key (with a did-you-mean)"),
            _info(E_INVALID, "a value has the wrong type or is out of range"),
            _info(E_REQUIRED, "a required key is missing"),
            _info(E_CONFLICT, "two keys that exclude each other are both set"),
            _info(E_CACHE_ALIAS, "CACHE is not an alias in settings.CACHES"),
            _info(E_ENCRYPTION_KEY, "an ENCRYPTION_KEYS entry is not a Fernet key"),
            _info(E_NAME, "a client, pipeline or step name is not usable"),
            _info(E_KEYS_MISSING, "ENCRYPTION_KEYS (or one of its entries) is empty"),
            _info(E_AUTH_TYPE, "unknown AUTH TYPE"),
            _info(E_AUTH_MISSING, "a key required by the AUTH TYPE is missing"),
            _info(E_AUTH_PIPELINE, "AUTH PIPELINE names an undefined pipeline"),
            _info(E_IMPORT, "an import string (HOOKS, FETCHER) cannot be imported"),
            _info(E_IMPORT_KIND, "an imported hook or fetcher is not the right kind of object"),
            _info(E_STEP_DUPLICATE, "two steps of a pipeline have the same NAME"),
            _info(E_FETCHER, "unknown FETCHER"),
            _info(E_DEPENDS_UNKNOWN, "DEPENDS_ON names a step that does not exist"),
            _info(E_DEPENDS_ORDER, "DEPENDS_ON names a step that comes later"),
            _info(E_DEPENDS_CYCLE, "steps depend on each other in a cycle"),
            _info(E_TEMPLATE, "a {step} placeholder names a step not in DEPENDS_ON"),
            _info(E_REFRESH_STEP, "REFRESH_FROM_STEP names a step that does not exist"),
            _info(E_WARM, "WARM names an undefined client or pipeline"),
            _info(E_DEFINED_TWICE, "a name is defined in settings and in the database"),
            _info(E_SHARED_NAME, "a client and a pipeline share a name, and the client is not authenticated by that pipeline"),
            _info(E_HEADER_VALUE, "a header name or value cannot be sent (line break, NUL, not a token)"),
            _info(E_PATH_MISSING, "VERIFY_SSL or CLIENT_CERT names a file or folder that does not exist"),
            _info(E_TRUSTED_ORIGIN, "a TRUSTED_ORIGINS entry is not an origin (scheme://host[:port], nothing more)"),
            _info(E_MIN_LIFETIME, "TOKEN_DEFAULT_LIFETIME or a step TTL is shorter than TOKEN_MIN_LIFETIME"),
            _info(E_FETCH_DEADLINE, "LOCK_TIMEOUT leaves no time for a token fetch to finish inside the lease"),
            _info(E_TOKEN_TYPE, "a step's TOKEN_TYPE is not one word of visible ASCII"),
            _info(E_CREDENTIAL_ORIGIN, "a database client would send its credential to an origin the credential is not bound to"),
            _info(E_PRIVATE_KEY, "a PRIVATE_KEY is not a PEM private key that can be read (the value is never shown)"),
            _info(E_KEY_ALGORITHM, "a private key does not fit its ALGORITHM (an RSA key with ES256, a P-256 key with ES384, ...)"),
            _info(E_SUBJECT_TOKEN, "SUBJECT_TOKEN_FROM names no token-backed client or pipeline"),
            _info(E_SUBJECT_CYCLE, "token_exchange clients take their subject tokens from each other in a cycle"),
            _info(E_RESOURCE, "a RESOURCE is not an absolute URI, or has a fragment (RFC 8707)"),
            _info(E_JWT_EXTRA, "a signed-JWT method or a private key is configured but the JOSE extra is not installed"),
            _info(W_LOCAL_CACHE, "the token cache is per-process (LocMemCache) or stores nothing (DummyCache)"),
            _info(W_REFRESH_AHEAD, "REFRESH_AHEAD is not shorter than a token lifetime"),
            _info(W_IGNORED, "a key has no effect in its context"),
            _info(W_NO_TLS_VERIFY, "VERIFY_SSL is False"),
            _info(W_PLAIN_HTTP, "credentials or tokens would be sent over plain http://"),
            _info(W_WARM_INTERVAL, "WARM_INTERVAL is too long for the refresh-ahead window"),
            _info(W_DEBUG_FILTER, "DEBUG is on and Django's default error-page filter would show REQUESTFORGE secrets"),
            _info(W_CREDENTIAL_MISSING, "a client's AUTH CREDENTIAL names no active credential in the database"),
            _info(W_SHORT_SECRET, "a client_secret_jwt CLIENT_SECRET is shorter than its HMAC needs (32 bytes for HS256)"),
        )
    }
)
