"""Admin-editable credentials, clients and pipelines.

* :class:`Credential` holds secrets, encrypted at rest (:mod:`~requestforge_django.fields`).
  A client in settings or in the database uses it with ``AUTH["CREDENTIAL"] = name``.
* :class:`ClientDefinition` and :class:`PipelineDefinition` (with its ordered
  :class:`PipelineStep` rows) are entries of ``REQUESTFORGE["CLIENTS"]`` /
  ``["PIPELINES"]`` kept in the database. Why they produce the *raw* settings dict
  (:meth:`~ClientDefinition.to_setting`) instead of building specs themselves: the same
  :mod:`~requestforge_django.setting` code then checks and parses both sources, so a
  definition behaves exactly like the settings entry it mirrors, and the admin reports
  the same check ids as ``manage.py check``.
* Admin-defined clients never hold secrets: their AUTH names a :class:`Credential`.
* A credential is **bound** to the origins its secrets (and the tokens obtained with
  them) may be sent to (:attr:`Credential.allowed_origins`). Why: whoever may edit a
  client definition could otherwise point a ``TOKEN_URL`` or ``BASE_URL`` at a host of
  their own and receive a secret they may not even see. The binding lives on the
  credential row, so only users with change permission on credentials move it; database
  definitions that reach another origin are refused by the admin form, by the registry
  (:class:`UnboundCredentialError`, nothing sent) and by ``requestforge.E043``.
  Settings-defined clients are trusted code and are not bound.

A name lives in settings or in the database, not both (``requestforge.E031``).

The package holds one concept per module (Django finds the models here, in the app's
``models`` package; every name below is importable from ``requestforge_django.models``):

* :mod:`.base`: the name rule and the fields every admin-edited row has;
* :mod:`.origins`: origin binding (:func:`normalize_origins`, :func:`credential_destinations`,
  :class:`UnboundCredentialError`);
* :mod:`.credentials`: :class:`Credential`, :func:`get_credential`;
* :mod:`.definitions`: :class:`ClientDefinition`, :class:`PipelineDefinition`, :class:`PipelineStep`;
* :mod:`.loading`: the raw dicts the registry reads (:func:`database_definitions`, ...) and
  the names the ``REQUESTFORGE`` setting defines (:func:`settings_names`).
"""

from __future__ import annotations

from .base import name_validator
from .credentials import Credential, get_credential
from .definitions import AUTH_TYPE_CHOICES, METHOD_CHOICES, ClientDefinition, PipelineDefinition, PipelineStep
from .loading import (
    clients_using_credentials,
    database_client,
    database_definitions,
    database_pipeline,
    known_pipeline_names,
    settings_names,
)
from .origins import (
    USE_CREDENTIAL_PERMISSION,
    UnboundCredentialError,
    credential_destinations,
    ensure_bound,
    normalize_origin,
    normalize_origins,
    unbound_destinations,
)

__all__ = [
    "AUTH_TYPE_CHOICES",
    "METHOD_CHOICES",
    "USE_CREDENTIAL_PERMISSION",
    "ClientDefinition",
    "Credential",
    "PipelineDefinition",
    "PipelineStep",
    "UnboundCredentialError",
    "clients_using_credentials",
    "credential_destinations",
    "database_client",
    "database_definitions",
    "database_pipeline",
    "ensure_bound",
    "get_credential",
    "known_pipeline_names",
    "name_validator",
    "normalize_origin",
    "normalize_origins",
    "settings_names",
    "unbound_destinations",
]
