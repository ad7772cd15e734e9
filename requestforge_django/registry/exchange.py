"""The trust boundary of token exchange for database clients: a subject token goes only where its source already sends it.

A ``token_exchange`` client sends the token of ``SUBJECT_TOKEN_FROM`` (another client or
a pipeline) to its own token endpoint. In settings that is trusted code. A client defined
in the admin, though, may be edited by users who may not see that other client's
credential: pointing its token URL at a host of their own would hand them a token obtained
with a secret they may not even view. So a database client may exchange a subject token
only at an origin the subject's source already sends its secrets or tokens to:

* a database client with a ``CREDENTIAL``: that credential's ``allowed_origins`` (what
  its managers bound it to);
* a settings client: the origins of its token endpoint (``TOKEN_URL`` or ``ISSUER``), its
  ``BASE_URL`` and its ``TRUSTED_ORIGINS``, plus its pipeline's step URLs if it has one;
* a pipeline: the origins of its steps' URLs (each step sends earlier tokens there).

The registry refuses to build anything else (:class:`UnboundSubjectError`, nothing
sent), the admin form reports it as ``requestforge.E043`` before it is saved, and the
database check (``manage.py check --database``) reports it for rows already saved.
"""

from __future__ import annotations

from collections.abc import Callable

from ..http.exceptions import ConfigurationError
from ..http.secrets import Origin
from ..setting.ids import E_CREDENTIAL_ORIGIN
from ..setting.specs import AuthSpec, ClientSpec, PipelineSpec

__all__ = ["UnboundSubjectError", "ensure_subject_bound", "exchange_origin", "subject_origins"]

ClientLookup = Callable[[str], ClientSpec | None]
PipelineLookup = Callable[[str], PipelineSpec | None]


class UnboundSubjectError(ConfigurationError):
    """A database ``token_exchange`` client would send its subject token to an origin its source does not send it to."""

    def __init__(self, client: str, subject: str, origin: str, allowed: list[str]) -> None:
        self.client, self.subject, self.origin, self.allowed = client, subject, origin, list(allowed)
        shown = ", ".join(allowed) or "none"
        super().__init__(
            f'database client "{client}" would send the token of "{subject}" to {origin} for token exchange, which is not an '
            f'origin "{subject}" sends its secrets or tokens to ({shown}); nothing was sent ({E_CREDENTIAL_ORIGIN}).',
            field="AUTH.SUBJECT_TOKEN_FROM",
        )


def _origin(url: str | None) -> str | None:
    origin = Origin.of(url) if isinstance(url, str) else None
    return None if origin is None else str(origin)


def exchange_origin(auth: AuthSpec) -> str | None:
    """The origin a token exchange sends the subject token to: TOKEN_URL's, or ISSUER's (discovery keeps the endpoint there)."""
    return _origin(auth.token_url or auth.issuer)


def _pipeline_origins(spec: PipelineSpec | None) -> list[str]:
    return [origin for step in (spec.steps if spec is not None else ()) if (origin := _origin(step.url)) is not None]


def subject_origins(
    subject: str, client_spec: ClientLookup, pipeline_spec: PipelineLookup, from_database: Callable[[str], bool]
) -> list[str]:
    """The origins ``subject``'s secrets or tokens already go to (see the module docstring), de-duplicated."""
    spec = client_spec(subject)
    found: list[str] = []
    if spec is None:
        found = _pipeline_origins(pipeline_spec(subject))
    elif spec.auth is not None and spec.auth.credential and from_database(subject):
        from .. import models

        credential = models.get_credential(spec.auth.credential)
        found = credential.allowed_origin_set() if credential is not None else []
    else:
        auth = spec.auth
        urls = [spec.base_url, *spec.trusted_origins]
        if auth is not None:
            urls += [auth.token_url or "", auth.issuer or ""]
        found = [origin for url in urls if (origin := _origin(url)) is not None]
        if auth is not None and auth.type == "pipeline" and auth.pipeline:
            found += _pipeline_origins(pipeline_spec(auth.pipeline))
    return list(dict.fromkeys(found))


def ensure_subject_bound(
    client: str,
    auth: AuthSpec,
    client_spec: ClientLookup,
    pipeline_spec: PipelineLookup,
    from_database: Callable[[str], bool],
) -> None:
    """Raise :class:`UnboundSubjectError` unless database client ``client`` exchanges where its subject token already goes."""
    subject = auth.subject_token_from
    origin = exchange_origin(auth)
    if subject is None or origin is None:
        return
    allowed = subject_origins(subject, client_spec, pipeline_spec, from_database)
    if origin not in allowed:
        raise UnboundSubjectError(client, subject, origin, allowed)
