"""Renew every token that is missing or due, now: shared by ``requestforge_warm`` and the Celery tasks.

Each token is renewed through
:meth:`~requestforge_django.tokens.single_flight.SingleFlightTokenCache.renew_if_due`,
i.e. under the same cross-process lease as the request path: a warm-up that runs in
beat, in two workers by mistake, and alongside web processes still fetches each token
once. One name failing never stops the others; its still-valid token stays cached
and the failure has already been signalled (``token_refresh_failed``).

Clients and pipelines are renewed in parallel (the steps of one pipeline in order):
tokens fetched together at start-up fall due together, and renewing them one after the
other would eat the refresh-ahead window of the last one by the sum of every endpoint's
latency.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .registry import Definitions, Registry, UnknownNameError, registry
from .shared.status_records import describe_error
from .tokens.single_flight import RenewResult

__all__ = ["MAX_PARALLEL", "WarmResult", "warm", "warm_targets"]

#: Most clients/pipelines renewed at the same time by one warm-up run.
MAX_PARALLEL = 8


@dataclass(frozen=True)
class WarmResult:
    """What happened to one token: ``status`` is ``"fresh"``, ``"renewed"``, ``"busy"`` (another
    process is renewing it), ``"failed"`` (renewal failed, the valid token stays) or ``"error"``
    (no valid token could be had; ``error`` says why)."""

    name: str
    step: str | None
    status: str
    expires_in: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("fresh", "renewed", "busy")

    @property
    def label(self) -> str:
        return f"{self.name}/{self.step}" if self.step else self.name


def warm_targets(definitions: Definitions, names: Iterable[str] | None = None) -> list[str]:
    """The token-backed clients and pipelines to keep warm, each once.

    Default: the ``WARM`` setting, or every token-backed client and pipeline. A client
    authenticated by a pipeline stands for that pipeline (its steps are the tokens).
    """
    wanted = list(names) if names is not None else list(definitions.settings.warm or definitions.token_names())
    targets: list[str] = []
    for name in wanted:
        client = definitions.clients.get(name)
        if client is not None:
            auth = client.auth
            if auth is None or not auth.uses_tokens:
                continue  # static credentials: nothing to renew
            target = auth.pipeline if auth.type == "pipeline" and auth.pipeline else name
        elif name in definitions.pipelines:
            target = name
        else:
            raise UnknownNameError("client or pipeline", name, [*definitions.clients, *definitions.pipelines])
        if target not in targets:
            targets.append(target)
    return targets


def warm(names: Iterable[str] | None = None, *, using: Registry | None = None) -> list[WarmResult]:
    """Renew what is due among ``names`` (see :func:`warm_targets`); one result per token, in order.

    Raises :class:`UnknownNameError` before renewing anything if a name is unknown.
    """
    reg = using or registry
    definitions = reg.definitions()
    targets = warm_targets(definitions, names)
    if len(targets) <= 1:
        return [result for target in targets for result in _warm_one(reg, definitions, target)]
    with ThreadPoolExecutor(max_workers=min(len(targets), MAX_PARALLEL), thread_name_prefix="requestforge-warm") as pool:
        batches = list(pool.map(lambda target: _warm_in_thread(reg, definitions, target), targets))
    return [result for batch in batches for result in batch]


def _warm_one(reg: Registry, definitions: Definitions, target: str) -> list[WarmResult]:
    try:
        if target in definitions.pipelines:
            renewed = reg.get_pipeline(target).renew_due()
            return [_result(target, step, outcome) for step, outcome in renewed.items()]
        return [_result(target, None, reg.get_token_manager(target).renew_if_due())]
    except Exception as exc:
        return [WarmResult(target, None, "error", error=describe_error(exc))]


def _warm_in_thread(reg: Registry, definitions: Definitions, target: str) -> list[WarmResult]:
    try:
        return _warm_one(reg, definitions, target)
    finally:
        from django.db import connections

        connections.close_all()  # building a client may have read a credential in this thread


def _result(name: str, step: str | None, outcome: RenewResult) -> WarmResult:
    left = outcome.token.seconds_left()
    return WarmResult(name, step, outcome.status, None if left is None else round(left, 1))
