"""Rules of a client's ``AUTH``: its TYPE, the keys each TYPE takes and needs, CREDENTIAL, EXCLUDED_PATHS.

The machine-credential keys of the OAuth TYPEs (token endpoint, client authentication, keys, ASSERTION) are in :mod:`.oauth`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from ...http.paths import excluded_path_problem, normalize_excluded_paths
from ..ids import E_AUTH_MISSING, E_AUTH_PIPELINE, E_AUTH_TYPE, E_CONFLICT, E_REQUIRED
from ..keys import (
    ALL_AUTH_KEYS,
    API_KEY_DEFAULT_HEADER,
    AUTH_KEYS_BY_TYPE,
    AUTH_SECRETS_BY_TYPE,
    CLIENT_AUTH_KEYS,
    SECRET_AUTH_KEYS,
    required_auth_keys,
)
from ..predicates import is_int, type_name
from ..problems import Path, choices_text, suggest
from ..readers import INVALID
from ..specs import ACCESS_TOKEN_TYPE, AUTH_TYPES, CLIENT_AUTH_METHODS, OAUTH_AUTH_TYPES, AuthSpec, default_of
from .oauth import OAuthRules

__all__ = ["AuthRules"]

#: Why each CLIENT_AUTH_METHOD needs its keys (E011 when one is missing).
_METHOD_NEEDS = {
    "client_secret_basic": "the client authenticates with HTTP Basic",
    "client_secret_jwt": "the client signs its assertion with the client secret",
    "private_key_jwt": "the client signs its assertion with its private key",
}


class AuthRules(OAuthRules):
    """``CLIENTS[name]["AUTH"]``."""

    def auth(self, value: Any, path: Path, pipelines: Collection[str]) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return INVALID
        if "TYPE" not in raw:
            self.keys(raw, path, ALL_AUTH_KEYS)
            self.report(E_REQUIRED, (*path, "TYPE"), f"is required; one of {choices_text(AUTH_TYPES)}.")
            return INVALID
        type_ = raw["TYPE"]
        if not (isinstance(type_, str) and type_.lower() in AUTH_TYPES):
            self.keys(raw, path, ALL_AUTH_KEYS)
            shown = f'"{type_}"' if isinstance(type_, str) else type_name(type_)
            self.report(
                E_AUTH_TYPE,
                (*path, "TYPE"),
                f"is {shown}, not a known AUTH TYPE{suggest(type_, AUTH_TYPES)}",
                f"Use one of {choices_text(AUTH_TYPES)}.",
            )
            return INVALID
        type_ = type_.lower()
        allowed = ("TYPE", *AUTH_KEYS_BY_TYPE[type_])
        self.keys(raw, path, allowed, {k: f'with AUTH TYPE "{type_}"' for k in ALL_AUTH_KEYS if k not in allowed})

        def get(key: str, check: Callable[[Any, Path], Any]) -> Any:
            return self.read(raw, key, path, check, None) if key in allowed else None

        credential = get("CREDENTIAL", self.string)
        secrets = {key: get(key, self.secret) for key in SECRET_AUTH_KEYS}
        method_given = "CLIENT_AUTH_METHOD" in raw and "CLIENT_AUTH_METHOD" in allowed
        client_auth_method = get("CLIENT_AUTH_METHOD", lambda value, p: self.choice(value, p, CLIENT_AUTH_METHODS))
        method = client_auth_method or default_of(AuthSpec, "client_auth_method")
        if credential:
            for key in SECRET_AUTH_KEYS:
                if key in raw and key in allowed:
                    self.report(
                        E_CONFLICT,
                        (*path, key),
                        f'is set together with CREDENTIAL "{credential}"; the credential row supplies it.',
                        f"Remove {key} from settings, or remove CREDENTIAL.",
                    )
        else:
            self.required_secrets(raw, path, type_, client_auth_method if method_given else None)
        token_url = issuer = algorithm = assertion = subject_token_from = None
        audience = resource = ()
        if type_ in OAUTH_AUTH_TYPES:
            token_url, issuer = self.token_endpoint(raw, path, type_)
            algorithm = self.client_authentication(raw, path, method, credential=bool(credential))
            audience = get("AUDIENCE", self.values) or ()
            resource = get("RESOURCE", self.resources) or ()
            self.parameter_conflicts(raw, path)
        if type_ == "jwt_bearer":
            assertion = self.read(raw, "ASSERTION", path, self.optional(self.assertion_of(secrets, credential)), None)
            if "ASSERTION" not in raw and not credential:
                self.report(
                    E_AUTH_MISSING,
                    (*path, "ASSERTION"),
                    'is required for AUTH TYPE "jwt_bearer": the signed assertion that is the grant (ISSUER, PRIVATE_KEY, ...).',
                )
        if type_ == "token_exchange":
            subject_token_from = self.read(raw, "SUBJECT_TOKEN_FROM", path, self.string, None)
            if "SUBJECT_TOKEN_FROM" not in raw:
                self.report(
                    E_AUTH_MISSING,
                    (*path, "SUBJECT_TOKEN_FROM"),
                    'is required for AUTH TYPE "token_exchange": the client or pipeline whose token is exchanged.',
                )
        header = get("HEADER", self.string)
        query_param = get("QUERY_PARAM", self.string)
        if header and query_param:
            self.report(
                E_CONFLICT, (*path, "QUERY_PARAM"), "is set together with HEADER; an API key goes in one place.", "Remove one of them."
            )
        pipeline = None
        if type_ == "pipeline":
            pipeline = self.read(raw, "PIPELINE", path, self.string, None)
            if "PIPELINE" not in raw:
                self.report(E_AUTH_MISSING, (*path, "PIPELINE"), 'is required for AUTH TYPE "pipeline": the name of an entry of PIPELINES.')
            elif pipeline is not None and pipeline not in pipelines:
                self.report(
                    E_AUTH_PIPELINE,
                    (*path, "PIPELINE"),
                    f'names pipeline "{pipeline}", which is not defined{suggest(pipeline, pipelines)}',
                    f'Define it in REQUESTFORGE["PIPELINES"]; defined: {choices_text(pipelines) or "(none)"}.',
                )
        return AuthSpec(
            type=type_,
            token_url=token_url,
            client_id=secrets["CLIENT_ID"],
            client_secret=secrets["CLIENT_SECRET"],
            scope=get("SCOPE", self.scope),
            username=secrets["USERNAME"],
            password=secrets["PASSWORD"],
            token=secrets["TOKEN"],
            key=secrets["KEY"],
            header=header or (API_KEY_DEFAULT_HEADER if type_ == "api_key" and not query_param else None),
            query_param=query_param,
            credential=credential,
            pipeline=pipeline,
            extra_params=get("EXTRA_PARAMS", self.str_map) or default_of(AuthSpec, "extra_params"),
            excluded_paths=get("EXCLUDED_PATHS", self.excluded_paths) or default_of(AuthSpec, "excluded_paths"),
            client_auth_method=method,
            rejected_statuses=get("REJECTED_STATUSES", self.rejected_statuses) or default_of(AuthSpec, "rejected_statuses"),
            token_timeout=get("TOKEN_TIMEOUT", self.optional_number),
            issuer=issuer,
            private_key=secrets["PRIVATE_KEY"],
            key_id=secrets["KEY_ID"],
            algorithm=algorithm,
            audience=audience,
            resource=resource,
            assertion=assertion,
            subject_token_from=subject_token_from,
            subject_token_type=get("SUBJECT_TOKEN_TYPE", self.token_type_uri) or default_of(AuthSpec, "subject_token_type"),
            requested_token_type=get("REQUESTED_TOKEN_TYPE", lambda v, p: self.choice(v, p, (ACCESS_TOKEN_TYPE,), case=str)),
        )

    def assertion_of(self, secrets: Mapping[str, Any], credential: str | None) -> Callable[[Any, Path], Any]:
        return lambda value, path: self.assertion(value, path, client_id=secrets.get("CLIENT_ID"), credential=credential)

    def required_secrets(self, raw: Mapping[Any, Any], path: Path, type_: str, method: str | None) -> None:
        """E011 for each key ``type_`` needs with CLIENT_AUTH_METHOD ``method`` (``None``: not given) that is missing."""
        own = AUTH_SECRETS_BY_TYPE[type_]
        reported = set()
        optional_auth = type_ in OAUTH_AUTH_TYPES and type_ not in CLIENT_AUTH_KEYS
        if optional_auth and "CLIENT_ID" not in raw and ("CLIENT_SECRET" in raw or "PRIVATE_KEY" in raw):
            self.report(
                E_AUTH_MISSING,
                (*path, "CLIENT_ID"),
                "is required when the client authenticates (CLIENT_SECRET or PRIVATE_KEY is set): the token endpoint must know whose "
                "secret or key it is.",
            )
            reported.add("CLIENT_ID")
        for key in required_auth_keys(type_, method):
            if key in raw or key in reported:
                continue
            if key in own or type_ in CLIENT_AUTH_KEYS:
                with_method = f' with CLIENT_AUTH_METHOD "{method}"' if method is not None and key not in own else ""
                self.report(
                    E_AUTH_MISSING,
                    (*path, key),
                    f'is required for AUTH TYPE "{type_}"{with_method} (or set CREDENTIAL to the name of an admin-edited credential).',
                )
            else:
                self.report(
                    E_AUTH_MISSING,
                    (*path, key),
                    f'is required with CLIENT_AUTH_METHOD "{method}": {_METHOD_NEEDS.get(str(method), "")}.',
                    'Set it, or use CLIENT_AUTH_METHOD "client_secret_post".',
                )

    def excluded_paths(self, value: Any, path: Path) -> Any:
        """EXCLUDED_PATHS, normalised by the one function every auth hook uses (``http.paths``)."""
        items = self.str_list(value, path)
        if items is INVALID:
            return INVALID
        problems = [(index, problem) for index, item in enumerate(items) if (problem := excluded_path_problem(item))]
        for index, problem in problems:
            self.invalid((*path, index), f"{problem}.")
        return INVALID if problems else normalize_excluded_paths(items)

    def scope(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple)):
            items = self.str_list(value, path)
            return items if items is INVALID else " ".join(items)
        return self.string(value, path)

    def rejected_statuses(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple, set, frozenset)) and value and all(is_int(v) and 400 <= v <= 499 for v in value):
            return frozenset(value)
        return self.invalid(path, "must be a non-empty list of HTTP 4xx status codes (integers 400-499), e.g. [401, 403].")
