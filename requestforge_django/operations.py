"""What can be done to tokens by hand: read their status, refresh them, invalidate them.

One place for the admin (token status page and change-list actions), the management
commands (``requestforge_status``, ``requestforge_invalidate``, ``requestforge_warm``) and
the Celery tasks: each surface parses its input and shows the outcome, the rules are
here.

* :func:`statuses`: the status rows (:mod:`requestforge_django.status`), read from the
  shared cache without fetching anything.
* :func:`refresh`: fetch a new token now. This needs the client (or pipeline) built.
* :func:`invalidate`: drop tokens from the shared cache, from their names alone
  (:func:`~requestforge_django.fencing.drop_tokens`, as the save receivers do): nothing is
  built, so a client whose credential was deleted, deactivated or cannot be decrypted
  loses its token too. Every process fetches a new one at its next use (one that read the
  token less than ``local_ttl``, 1 s, ago may still send it once; a 401 then replaces it).
* :func:`warm`: renew what is due (:mod:`requestforge_django.warming`).

Mistakes are :class:`~requestforge_django.registry.UnknownNameError` (a name nobody
defined, with the known ones) or :class:`NoTokenError` (a client with static
credentials or no auth); the surfaces turn them into a message or a ``CommandError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .fencing import drop_tokens
from .http.masking import mask_secret
from .registry import Definitions, Registry, UnknownNameError, registry
from .setting.specs import PipelineSpec
from .status import TokenState, TokenStatus, describe_expiry, token_statuses
from .warming import WarmResult, warm

__all__ = [
    "KINDS",
    "MANUAL",
    "InvalidationError",
    "NoTokenError",
    "Refreshed",
    "StepOfClientError",
    "TokenState",
    "WarmResult",
    "invalidate",
    "invalidate_all",
    "refresh",
    "statuses",
    "warm",
]

#: What a manual operation names: a client or a pipeline.
KINDS = ("client", "pipeline")

#: ``token_invalidated``'s reason for an invalidation asked for by a person (admin, command).
MANUAL = "manual"


class NoTokenError(UnknownNameError):
    """The client has no token to refresh or invalidate (static credentials or no auth).

    An :class:`UnknownNameError` (no token-backed client has that name), worded as the
    registry words it; ``shown`` is ``'AUTH TYPE "api_key"'`` or ``"no AUTH"``.
    """

    def __init__(self, name: str, shown: str, known: Iterable[str]) -> None:
        super().__init__(f"token-backed client or pipeline (client {name!r} has {shown})", name, known)
        self.shown = shown


class StepOfClientError(ValueError):
    """A step was given with a client's name: steps belong to pipelines."""

    def __init__(self, name: str) -> None:
        super().__init__(f"steps belong to pipelines; {name!r} is a client")
        self.name = name


class InvalidationError(RuntimeError):
    """Some tokens could not be deleted from the shared cache (it is unreachable); the others were."""

    def __init__(self, failed: list[str], dropped: list[str]) -> None:
        self.failed, self.dropped = failed, dropped
        super().__init__(f"the shared cache could not be written; not invalidated: {', '.join(failed)} (see the logs)")


# -- status ---------------------------------------------------------------------------------------------


def statuses(names: Iterable[str] | None = None, *, using: Registry | None = None) -> list[TokenStatus]:
    """The status rows of ``names`` (default: every client, then every pipeline); see :func:`token_statuses`."""
    return token_statuses(names, using=using)


# -- refresh ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    """A refresh that succeeded: what was refreshed, the new token (masked) and its time left."""

    label: str  # "billing", "partner/app and the steps depending on it", "every step of partner"
    final: bool  # a pipeline's final token
    token: str  # masked
    expires_in: float | None

    @property
    def message(self) -> str:
        what = "final token" if self.final else "token"
        expiry = describe_expiry(self.expires_in) if self.expires_in is not None else "no expiry"
        return f"Refreshed {self.label}: new {what} {self.token}, {expiry}."


def refresh(kind: str, name: str, step: str | None = None, *, using: Registry | None = None) -> Refreshed:
    """Fetch a new token now, single-flight with every other process.

    A client (``kind="client"``): its token manager's ``force_refresh()``. A pipeline:
    ``refresh_from(step)``, i.e. ``step`` and the steps depending on it, or every step
    without one. Raises what the fetch raised; the current token stays cached then.
    """
    reg = using or registry
    definitions = reg.definitions()
    if kind == "pipeline":
        _pipeline_spec(definitions, name, step)
        token = reg.get_pipeline(name).refresh_from(step)
        label = f"{name}/{step} and the steps depending on it" if step else f"every step of {name}"
        final = True
    else:
        _token_client(definitions, name)
        token = reg.get_token_manager(name).force_refresh()
        label, final = name, False
    left = token.seconds_left()
    return Refreshed(label, final, mask_secret(token.access_token), None if left is None else round(left, 1))


# -- invalidate -----------------------------------------------------------------------------------------


def invalidate(names: Sequence[str], *, kind: str | None = None, step: str | None = None, using: Registry | None = None) -> list[str]:
    """Drop the tokens of ``names`` from the shared cache (reason ``"manual"``); the labels dropped, in order.

    A name is a token-backed client or a pipeline (``kind`` ``"client"`` / ``"pipeline"``
    says which to look for; default: a client first, as the registry does). A client
    authenticated by a pipeline stands for its pipeline's ``REFRESH_FROM_STEP`` and the
    steps depending on it (every step without one), as its token manager does. ``step``
    (one pipeline only) drops that step and the steps depending on it; without it every
    step is dropped. Every name is checked before anything is dropped. Nothing is built.
    """
    definitions = (using or registry).definitions()
    if step is not None and len(names) != 1:
        raise ValueError("a step needs exactly one pipeline name")
    clients: list[str] = []
    pairs: list[tuple[str, str]] = []
    for name in names:
        if kind != "pipeline" and name in definitions.clients:
            if step is not None:
                raise StepOfClientError(name)
            pipeline = _token_client(definitions, name)
            if pipeline is None:
                clients.append(name)
            elif pipeline in definitions.pipelines:  # else nothing is cached for it
                spec = definitions.pipelines[pipeline]
                pairs.extend((pipeline, s) for s in _steps_from(spec, spec.refresh_from_step))
        elif kind != "client" and name in definitions.pipelines:
            pairs.extend((name, s) for s in _steps_from(definitions.pipelines[name], step))
        elif kind == "client":
            raise UnknownNameError("client", name, definitions.clients)
        elif kind == "pipeline":
            raise UnknownNameError("pipeline", name, definitions.pipelines)
        else:
            raise UnknownNameError("token-backed client or pipeline", name, definitions.token_names())
    return _drop(definitions, clients, pairs)


def invalidate_all(*, using: Registry | None = None) -> list[str]:
    """Drop the token of every token-backed client and every pipeline step (reason ``"manual"``)."""
    return invalidate((using or registry).definitions().token_names(), using=using)


def _drop(definitions: Definitions, clients: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    unique_clients, unique_pairs = list(dict.fromkeys(clients)), list(dict.fromkeys(pairs))
    dropped = drop_tokens(definitions, clients=unique_clients, steps=unique_pairs, reason=MANUAL)
    failed = [label for label in [*unique_clients, *(f"{p}/{s}" for p, s in unique_pairs)] if label not in dropped]
    if failed:
        raise InvalidationError(failed, dropped)
    return dropped


def _token_client(definitions: Definitions, name: str) -> str | None:
    """Raise unless ``name`` is a client whose auth obtains tokens; the pipeline it uses, if any."""
    spec = definitions.clients.get(name)
    if spec is None:
        raise UnknownNameError("client", name, definitions.clients)
    auth = spec.auth
    if auth is None or not auth.uses_tokens:
        raise NoTokenError(name, "no AUTH" if auth is None else f'AUTH TYPE "{auth.type}"', definitions.token_names())
    return auth.pipeline if auth.type == "pipeline" else None


def _pipeline_spec(definitions: Definitions, name: str, step: str | None) -> PipelineSpec:
    spec = definitions.pipelines.get(name)
    if spec is None:
        raise UnknownNameError("pipeline", name, definitions.pipelines)
    _steps_from(spec, step)
    return spec


def _steps_from(spec: PipelineSpec, step: str | None) -> list[str]:
    """``step`` and the steps depending on it (directly or transitively), in order; every step for ``None``."""
    names = spec.step_names
    if step is None:
        return names
    if step not in names:
        raise UnknownNameError(f"step of pipeline {spec.name!r}", step, names)
    found = {step}
    for candidate in spec.steps:  # a step depends only on earlier ones (PipelineSpec): one pass in order
        if found.intersection(candidate.depends_on):
            found.add(candidate.name)
    return [name for name in names if name in found]
