"""Rules of a ``CLIENTS`` entry: its keys, TLS and redirects, RETRY, CIRCUIT_BREAKER, RATE_LIMIT and HOOKS."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ...http.config import CROSS_ORIGIN_REDIRECTS, DEFAULT_TIMEOUT
from ...http.rate_limit import default_burst
from ..ids import E_TRUSTED_ORIGIN, W_NO_TLS_VERIFY
from ..keys import BREAKER_KEYS, CLIENT_KEYS, RATE_LIMIT_KEYS, RETRY_KEYS, RETRY_UNUSED
from ..predicates import is_int, type_name
from ..problems import Path
from ..readers import INVALID
from ..specs import FROM_BASE_DELAY, RETRY_STRATEGIES, BreakerSpec, ClientSpec, RateLimitSpec, RetrySpec
from .auth import AuthRules

__all__ = ["ClientRules", "hook_kind"]


class ClientRules(AuthRules):
    """``CLIENTS[name]``, and through :class:`AuthRules` its ``AUTH``."""

    def client(self, name: Any, raw: Any, *, pipelines: Collection[str], default_timeout: Any = DEFAULT_TIMEOUT) -> ClientSpec | None:
        path: Path = ("CLIENTS", name if isinstance(name, str) else repr(name))
        self.name(name, path, "client name")
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, path, CLIENT_KEYS)
        base_url = self.required(raw, "BASE_URL", path, self.url)
        base_url = base_url.rstrip("/") if isinstance(base_url, str) else ""
        verify = self.field(raw, path, ClientSpec, "verify_ssl", self.verify_ssl)
        if verify is False:
            self.report(
                W_NO_TLS_VERIFY,
                (*path, "VERIFY_SSL"),
                "is False: TLS certificates are not checked, so anyone on the network path can read and alter the traffic.",
                "Set it to the path of a CA bundle instead.",
            )
        auth = self.field(raw, path, ClientSpec, "auth", self.optional(lambda v, p: self.auth(v, p, pipelines)))
        if auth is not None:
            self.plain_http(raw.get("BASE_URL"), (*path, "BASE_URL"), "the credentials or tokens of AUTH")
        return ClientSpec(
            name=name if isinstance(name, str) else repr(name),
            base_url=base_url,
            timeout=self.read(raw, "TIMEOUT", path, self.timeout, default_timeout),
            headers=self.field(raw, path, ClientSpec, "headers", self.header_map),
            verify_ssl=verify,
            client_cert=self.field(raw, path, ClientSpec, "client_cert", self.client_cert),
            allow_redirects=self.field(raw, path, ClientSpec, "allow_redirects", self.boolean),
            max_redirects=self.field(raw, path, ClientSpec, "max_redirects", self.integer),
            pool_connections=self.field(raw, path, ClientSpec, "pool_connections", self.positive_int),
            pool_maxsize=self.field(raw, path, ClientSpec, "pool_maxsize", self.positive_int),
            proxies=self.field(raw, path, ClientSpec, "proxies", self.optional(self.str_map)),
            trust_env=self.field(raw, path, ClientSpec, "trust_env", self.boolean),
            sensitive_headers=frozenset(self.field(raw, path, ClientSpec, "sensitive_headers", self.str_list)),
            retry=self.field(raw, path, ClientSpec, "retry", self.optional(self.retry)),
            circuit_breaker=self.field(raw, path, ClientSpec, "circuit_breaker", self.optional(self.breaker)),
            rate_limit=self.field(raw, path, ClientSpec, "rate_limit", self.optional(self.rate_limit)),
            auth=auth,
            hooks=self.field(raw, path, ClientSpec, "hooks", self.hooks),
            trusted_origins=self.field(raw, path, ClientSpec, "trusted_origins", self.trusted_origins),
            cross_origin_redirects=self.field(
                raw, path, ClientSpec, "cross_origin_redirects", lambda v, p: self.choice(v, p, CROSS_ORIGIN_REDIRECTS)
            ),
            max_response_bytes=self.field(raw, path, ClientSpec, "max_response_bytes", self.optional(self.positive_int)),
            total_timeout=self.field(raw, path, ClientSpec, "total_timeout", self.optional_number),
        )

    def trusted_origins(self, value: Any, path: Path) -> Any:
        """TRUSTED_ORIGINS: a list of ``scheme://host[:port]``; E042 names each malformed entry."""
        from ...http.config import parse_origin
        from ...http.exceptions import ConfigurationError

        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return self.invalid(path, f"must be a list of origins such as 'https://api.example.com', got {type_name(value)}.")
        before = len(self.problems)
        origins: list[str] = []
        for index, item in enumerate(value):
            try:
                origin = str(parse_origin(item))
            except ConfigurationError as exc:
                hint = "Write only scheme://host[:port], e.g. 'https://auth.example.com'."
                self.report(E_TRUSTED_ORIGIN, (*path, index), f"{exc.message}.", hint)
                continue
            if origin not in origins:
                origins.append(origin)
        return tuple(origins) if len(self.problems) == before else INVALID

    def verify_ssl(self, value: Any, path: Path) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
            self.existing_path(value, path)
            return value
        return self.invalid(path, f"must be True, False or the path of a CA bundle, got {type_name(value)}.")

    def client_cert(self, value: Any, path: Path) -> Any:
        if value is None or (isinstance(value, str) and value):
            self.existing_path(value, path)
            return value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
            self.existing_path(value[0], (*path, 0))
            self.existing_path(value[1], (*path, 1))
            return (value[0], value[1])
        return self.invalid(path, f"must be a certificate path or a (cert, key) pair of paths, got {type_name(value)}.")

    def retry(self, value: Any, path: Path) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return INVALID
        strategy = self.field(raw, path, RetrySpec, "strategy", lambda v, p: self.choice(v, p, RETRY_STRATEGIES))
        unused = {key: f'with STRATEGY "{strategy}"' for key in RETRY_UNUSED[strategy]}
        self.keys(raw, path, [k for k in RETRY_KEYS if k not in unused], unused)
        base_delay = self.field(raw, path, RetrySpec, "base_delay", self.non_negative)
        # Absent or invalid: FROM_BASE_DELAY, which RetrySpec turns into http.retry.default_max_delay(base_delay).
        max_delay = self.field(raw, path, RetrySpec, "max_delay", self.non_negative)
        if max_delay != FROM_BASE_DELAY and max_delay < base_delay:
            self.invalid((*path, "MAX_DELAY"), f"must be >= BASE_DELAY ({base_delay:g}), got {max_delay:g}.")
        return RetrySpec(
            strategy=strategy,
            max_retries=0 if strategy == "none" else self.field(raw, path, RetrySpec, "max_retries", self.integer),
            base_delay=base_delay,
            max_delay=max_delay,
            multiplier=self.field(raw, path, RetrySpec, "multiplier", lambda v, p: self.number(v, p, minimum=1.0)),
            jitter=self.field(raw, path, RetrySpec, "jitter", self.boolean),
            retry_on_status=self.field(raw, path, RetrySpec, "retry_on_status", self.statuses),
            retry_non_idempotent=self.field(raw, path, RetrySpec, "retry_non_idempotent", self.boolean),
            respect_retry_after=self.field(raw, path, RetrySpec, "respect_retry_after", self.boolean),
        )

    def statuses(self, value: Any, path: Path) -> Any:
        if isinstance(value, (list, tuple, set, frozenset)) and all(is_int(v) and 100 <= v <= 599 for v in value):
            return frozenset(value)
        return self.invalid(path, "must be a list of HTTP status codes (integers 100-599).")

    def breaker(self, value: Any, path: Path) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return INVALID
        self.keys(raw, path, BREAKER_KEYS)
        return BreakerSpec(
            failure_threshold=self.field(raw, path, BreakerSpec, "failure_threshold", self.positive_int),
            recovery_timeout=self.field(raw, path, BreakerSpec, "recovery_timeout", self.number),
            shared=self.field(raw, path, BreakerSpec, "shared", self.boolean),
        )

    def rate_limit(self, value: Any, path: Path) -> Any:
        raw = self.mapping(value, path)
        if raw is None:
            return INVALID
        self.keys(raw, path, RATE_LIMIT_KEYS)
        rate = self.required(raw, "RATE", path, self.number, " (requests per second)")
        rate = 1.0 if rate is INVALID else rate
        return RateLimitSpec(
            rate=rate,
            burst=self.read(raw, "BURST", path, self.positive_int, default_burst(rate)),
            wait=self.field(raw, path, RateLimitSpec, "wait", self.boolean),
            max_wait=self.field(raw, path, RateLimitSpec, "max_wait", self.optional(self.non_negative)),
            shared=self.field(raw, path, RateLimitSpec, "shared", self.boolean),
        )

    def hooks(self, value: Any, path: Path) -> Any:
        items = self.str_list(value, path)
        if items is INVALID:
            return INVALID
        ok = all([self.importable(item, (*path, index), hook_kind) is not INVALID for index, item in enumerate(items)])
        return items if ok else INVALID


def hook_kind(obj: Any) -> str | None:
    from ...http.hooks import ErrorHookInterface, RequestHookInterface, ResponseHookInterface

    interfaces = (RequestHookInterface, ResponseHookInterface, ErrorHookInterface)
    if isinstance(obj, type) and issubclass(obj, interfaces):
        return None
    if isinstance(obj, interfaces):
        return None
    return "implements none of RequestHookInterface, ResponseHookInterface, ErrorHookInterface (AUTH configures auth hooks)"
