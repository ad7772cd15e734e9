"""Admin for credentials and for clients and pipelines defined in the database.

Django's autodiscovery imports this package, which registers the ModelAdmins
(:mod:`~requestforge_django.admin.registrations`). One module per concern:

* :mod:`~requestforge_django.admin.forms`: write-only secret fields, the credential
  form, who may use a credential, problems shown on form fields;
* :mod:`~requestforge_django.admin.definitions`: the client and pipeline definition forms;
* :mod:`~requestforge_django.admin.token_status`: the token status page, the token
  column and the "refresh now" / "invalidate" actions (the operations themselves are
  :mod:`requestforge_django.operations`, shared with the commands and the tasks);
* :mod:`~requestforge_django.admin.registrations`: the ModelAdmins.

Three rules shape them:

* **Secrets are write-only.** A secret is edited through a password input that never
  renders a value (``render_value=False``, no hidden input), a blank submission keeps
  the stored value, and a "clear" checkbox erases it. Lists, detail pages and view-only
  pages only say "set" / "not set" (:func:`~requestforge_django.fields.secret_state`
  reads the stored value without decrypting it).
* **A definition is valid exactly when the same settings entry would be.** The forms
  build the raw settings dict with ``to_setting()`` and run
  :func:`~requestforge_django.setting.validate_client` /
  :func:`~requestforge_django.setting.validate_pipeline`; every error is shown on
  the matching form field (or at the top) with its check id, warnings are shown as
  messages after saving. A name already used in ``REQUESTFORGE`` is refused
  (``requestforge.E031``).
* **A credential goes only where its managers bound it.** Who may view a definition
  form is not who may see a credential, so editing a definition must never let a user
  send a credential's secret somewhere new. Forms offer only the credentials the user
  may use (``use_credential``, ``change_credential``, or superuser; see
  :func:`may_use_credential`), a POST naming another one is refused, a definition
  whose credential the user may not use is view-only for that user, and every
  definition is checked against its credential's ``allowed_origins``
  (``requestforge.E043``; the registry refuses the same at run time). Only users who
  may change credentials edit ``allowed_origins``.
"""

from __future__ import annotations

from .definitions import (
    CLIENT_FIELDS,
    CREDENTIAL_FIELD_BY_KEY,
    STEP_FIELDS,
    ClientDefinitionForm,
    PipelineDefinitionForm,
    PipelineStepFormSet,
    credential_supplies,
)
from .forms import (
    CHANGE_CREDENTIAL_PERMISSION,
    SECRET_HELP,
    CredentialForm,
    OriginsField,
    WriteOnlySecretsForm,
    add_problem,
    clear_field,
    field_for,
    may_use_credential,
    problem_text,
    refuse_settings_name,
    relative_key,
    secret_field,
    usable_credentials,
)
from .registrations import ClientDefinitionAdmin, CredentialAdmin, PipelineDefinitionAdmin, PipelineStepInline
from .token_status import (
    CHANGE_PERMISSION_BY_KIND,
    TOKEN_ACTIONS,
    TOKEN_STATUS_URL_NAME,
    VIEW_STATUS_PERMISSION,
    NoTokenError,
    TokenStatusMixin,
    TokenStatusRow,
    can_manage_tokens,
    can_view_token_status,
    invalidate_token,
    refresh_token,
    run_token_action,
    token_state,
    token_status_rows,
    token_status_view,
    token_summary,
)

__all__ = [
    "CHANGE_CREDENTIAL_PERMISSION",
    "CHANGE_PERMISSION_BY_KIND",
    "CLIENT_FIELDS",
    "CREDENTIAL_FIELD_BY_KEY",
    "SECRET_HELP",
    "STEP_FIELDS",
    "TOKEN_ACTIONS",
    "TOKEN_STATUS_URL_NAME",
    "VIEW_STATUS_PERMISSION",
    "ClientDefinitionAdmin",
    "ClientDefinitionForm",
    "CredentialAdmin",
    "CredentialForm",
    "NoTokenError",
    "OriginsField",
    "PipelineDefinitionAdmin",
    "PipelineDefinitionForm",
    "PipelineStepFormSet",
    "PipelineStepInline",
    "TokenStatusMixin",
    "TokenStatusRow",
    "WriteOnlySecretsForm",
    "add_problem",
    "can_manage_tokens",
    "can_view_token_status",
    "clear_field",
    "credential_supplies",
    "field_for",
    "invalidate_token",
    "may_use_credential",
    "problem_text",
    "refresh_token",
    "refuse_settings_name",
    "relative_key",
    "run_token_action",
    "secret_field",
    "token_state",
    "token_status_rows",
    "token_status_view",
    "token_summary",
    "usable_credentials",
]
