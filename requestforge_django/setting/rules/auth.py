"""Rules of a client's ``AUTH``: its TYPE, the keys each TYPE takes and needs, CREDENTIAL, EXCLUDED_PATHS."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from ...http.paths import excluded_path_problem, normalize_excluded_paths
from ..ids import E_AUTH_MISSING, E_AUTH_PIPELINE, E_AUTH_TYPE, E_CONFLICT, E_REQUIRED
from ..keys import ALL_AUTH_KEYS, API_KEY_DEFAULT_HEADER, AUTH_KEYS_BY_TYPE, AUTH_SECRETS_BY_TYPE, SECRET_AUTH_KEYS
from ..predicates import is_int, type_name
from ..problems import Path, choices_text, suggest
from ..readers import INVALID, Reader
from ..specs import AUTH_TYPES, CLIENT_AUTH_METHODS, OAUTH_AUTH_TYPES, AuthSpec, default_of

__all__ = ["AuthRules"]


class AuthRules(Reader):
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
            for key in AUTH_SECRETS_BY_TYPE[type_]:
                if key not in raw:
                    self.report(
                        E_AUTH_MISSING,
                        (*path, key),
                        f'is required for AUTH TYPE "{type_}" (or set CREDENTIAL to the name of an admin-edited credential).',
                    )
        if type_ in OAUTH_AUTH_TYPES:
            if "TOKEN_URL" not in raw:
                self.report(E_AUTH_MISSING, (*path, "TOKEN_URL"), f'is required for AUTH TYPE "{type_}".')
            self.plain_http(raw.get("TOKEN_URL"), (*path, "TOKEN_URL"), "the client credentials")
        client_auth_method = get("CLIENT_AUTH_METHOD", lambda value, p: self.choice(value, p, CLIENT_AUTH_METHODS))
        if client_auth_method == "client_secret_basic" and not credential:
            for key in ("CLIENT_ID", "CLIENT_SECRET"):
                if key not in raw and key not in AUTH_SECRETS_BY_TYPE[type_]:
                    self.report(
                        E_AUTH_MISSING,
                        (*path, key),
                        'is required with CLIENT_AUTH_METHOD "client_secret_basic": the client authenticates with HTTP Basic.',
                        'Set it, or use CLIENT_AUTH_METHOD "client_secret_post".',
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
            token_url=get("TOKEN_URL", self.url),
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
            client_auth_method=client_auth_method or default_of(AuthSpec, "client_auth_method"),
            rejected_statuses=get("REJECTED_STATUSES", self.rejected_statuses) or default_of(AuthSpec, "rejected_statuses"),
            token_timeout=get("TOKEN_TIMEOUT", self.optional_number),
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
