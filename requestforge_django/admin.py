"""Admin for credentials and for clients and pipelines defined in the database.

Two rules shape this module:

* **Secrets are write-only.** A secret is edited through a password input that never
  renders a value (``render_value=False``, no hidden input), a blank submission keeps
  the stored value, and a "clear" checkbox erases it. Lists, detail pages and view-only
  pages only say "set" / "not set" (:func:`~requestforge_django.fields.secret_state`
  reads the stored value without decrypting it).
* **A definition is valid exactly when the same settings entry would be.** The forms
  build the raw settings dict with ``to_setting()`` and run
  :func:`~requestforge_django.validation.validate_client` /
  :func:`~requestforge_django.validation.validate_pipeline`; every error is shown on
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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import Field as ModelField
from django.db.models import Model
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from .checks_encryption import E_DEFINED_TWICE, E_KEYS_MISSING
from .encryption import EncryptionError, ensure_keys
from .fields import secret_state
from .http.masking import mask_secret
from .models import (
    USE_CREDENTIAL_PERMISSION,
    ClientDefinition,
    Credential,
    PipelineDefinition,
    PipelineStep,
    normalize_origins,
    settings_names,
    unbound_destinations,
)
from .registry import UnknownNameError, registry
from .status import TokenStatus, format_seconds, token_statuses
from .token_events import describe_error
from .validation import AUTH_SECRETS_BY_TYPE, E_AUTH_MISSING, E_CREDENTIAL_ORIGIN, Problem, validate_pipeline

# django-stubs makes Django's forms and admins generic in their model, but the classes cannot be
# subscripted at run time (without django-stubs-ext): the parametrised bases exist for mypy only.
if TYPE_CHECKING:
    _AnyModelForm = forms.ModelForm[Any]
    _ClientDefinitionModelForm = forms.ModelForm[ClientDefinition]
    _PipelineDefinitionModelForm = forms.ModelForm[PipelineDefinition]
    _PipelineStepInlineFormSet = BaseInlineFormSet[PipelineStep, PipelineDefinition, forms.ModelForm[PipelineStep]]
    _AnyModelAdmin = admin.ModelAdmin[Any]
    _CredentialModelAdmin = admin.ModelAdmin[Credential]
    _PipelineStepStackedInline = admin.StackedInline[PipelineStep, PipelineDefinition]
    #: What :class:`TokenStatusMixin` is mixed into.
    _TokenStatusMixinBase = admin.ModelAdmin[Any]
else:
    _AnyModelForm = _ClientDefinitionModelForm = _PipelineDefinitionModelForm = forms.ModelForm
    _PipelineStepInlineFormSet = BaseInlineFormSet
    _AnyModelAdmin = _CredentialModelAdmin = admin.ModelAdmin
    _PipelineStepStackedInline = admin.StackedInline
    _TokenStatusMixinBase = object

SECRET_HELP = "Leave blank to keep the stored value."

_STATE_TEXT = {"empty": "not set", "set": "set", "unreadable": "set (cannot be decrypted with the current keys)"}
_STATE_HELP = {
    "empty": "Not set.",
    "set": "Currently set.",
    "unreadable": "Set, but it cannot be decrypted with the current ENCRYPTION_KEYS: enter a new value or clear it.",
}


# -- problems -> form errors ----------------------------------------------------------------------


def relative_key(path: Sequence[str | int]) -> str:
    """``("CLIENTS", "billing", "AUTH", "TOKEN_URL")`` -> ``AUTH["TOKEN_URL"]``: the key inside one definition."""
    items = list(path[2:])
    if not items:
        return "name"
    rendered = str(items[0])
    for item in items[1:]:
        rendered += f"[{item}]" if isinstance(item, int) else f'["{item}"]'
    return rendered


def problem_text(problem: Problem) -> str:
    """What a form shows for ``problem``: the key inside the definition, the detail, the hint and the check id."""
    hint = f" {problem.hint}" if problem.hint else ""
    return f"{relative_key(problem.path)} {problem.detail}{hint} ({problem.id})"


def field_for(path: Sequence[str | int], fields: Mapping[tuple[str, ...], str]) -> str | None:
    """The form field of the longest prefix of ``path`` found in ``fields`` (``None``: a form-wide error)."""
    keys = tuple(str(p) for p in path)
    for end in range(len(keys), -1, -1):
        if keys[:end] in fields:
            return fields[keys[:end]]
    return None


def add_problem(form: forms.BaseForm, problem: Problem, field: str | None) -> None:
    """Show an error on ``field`` of ``form``, or form-wide when the form has no such field."""
    form.add_error(field if field in form.fields else None, ValidationError(problem_text(problem), code=problem.id))


def refuse_settings_name(name: str, section: str) -> None:
    """Raise a ``ValidationError`` if ``name`` is an entry of ``REQUESTFORGE[section]``."""
    if name in settings_names(section):
        raise ValidationError(
            f'"{name}" is already defined in REQUESTFORGE["{section}"]; a name may be defined in settings or in the database, '
            f"not both. ({E_DEFINED_TWICE})",
            code=E_DEFINED_TWICE,
        )


# -- write-only secrets ---------------------------------------------------------------------------------


def secret_field(label: str) -> forms.CharField:
    """A form field that never renders the stored secret (nor what was typed, when the form is shown again)."""
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=SECRET_HELP,
    )


def clear_field(label: str) -> forms.BooleanField:
    """The "Clear <label>" checkbox beside a :func:`secret_field` (``label`` as it reads mid-sentence: "client secret")."""
    return forms.BooleanField(label=f"Clear {label}", required=False, help_text=f"Erase the stored {label}.")


class WriteOnlySecretsForm(_AnyModelForm):
    """Model form for the encrypted fields named in :attr:`secret_fields`; see the module docstring.

    Each secret needs a declared :func:`secret_field` and a ``<name>_clear``
    :func:`clear_field`, and must be in ``Meta.exclude`` so that Django neither binds
    the decrypted value as the field's initial value nor validates it on the model.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            if name in self.fields:
                state = secret_state(self.instance, name) if self.instance.pk is not None else "empty"
                self.fields[name].help_text = f"{_STATE_HELP[state]} {SECRET_HELP}"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned is None:  # Django's convention for clean(): None means self.cleaned_data, changed in place
            cleaned = self.cleaned_data
        entered = False
        for name in self.secret_fields:
            if cleaned.get(name) and cleaned.get(f"{name}_clear"):
                self.add_error(name, "Enter a new value or tick clear, not both.")
            entered = entered or bool(cleaned.get(name))
        if entered:
            try:
                ensure_keys()
            except (EncryptionError, ImproperlyConfigured) as exc:
                raise ValidationError(str(exc), code=E_KEYS_MISSING) from None
        return cleaned

    def apply_secrets(self, instance: Any) -> None:
        """Set the entered secrets on ``instance``, erase the cleared ones, keep the rest."""
        for name in self.secret_fields:
            if self.cleaned_data.get(f"{name}_clear"):
                setattr(instance, name, "")
            elif self.cleaned_data.get(name):
                setattr(instance, name, self.cleaned_data[name])

    def save(self, commit: bool = True) -> Any:
        self.apply_secrets(self.instance)
        return super().save(commit)


# -- credential use --------------------------------------------------------------------------------------

CHANGE_CREDENTIAL_PERMISSION = "requestforge_django.change_credential"


def may_use_credential(user: Any, credential: Credential | None = None) -> bool:
    """Whether ``user`` may choose ``credential`` (any credential when ``None``) in a client definition.

    ``use_credential`` or ``change_credential`` on the model (superusers have both), or,
    with an object-permission backend, on that row. View permission alone is not enough:
    viewing is for auditing, using decides where a secret goes.
    """
    if user is None or not getattr(user, "is_active", False):
        return False
    for permission in (USE_CREDENTIAL_PERMISSION, CHANGE_CREDENTIAL_PERMISSION):
        if user.has_perm(permission) or (credential is not None and user.has_perm(permission, credential)):
            return True
    return False


def usable_credentials(user: Any, queryset: Any) -> Any:
    """``queryset`` narrowed to the credentials ``user`` may use (see :func:`may_use_credential`)."""
    if may_use_credential(user):
        return queryset
    return queryset.filter(pk__in=[c.pk for c in queryset if may_use_credential(user, c)])


class OriginsField(forms.Field):
    """``allowed_origins``: one origin per line in a textarea, stored as a normalized list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "https://auth.example.com\nhttps://api.example.com"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, (list, tuple)):
            return normalize_origins(list(value))
        lines = [line.strip() for line in str(value or "").splitlines()]
        return normalize_origins([line for line in lines if line])

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(initial) != self.to_python(data)
        except ValidationError:
            return True


def _model_help_text(model: type[Model], name: str) -> str:
    """The ``help_text`` of the model field ``name`` (empty for a reverse relation, which has none)."""
    field = model._meta.get_field(name)
    return str(field.help_text) if isinstance(field, ModelField) else ""


class CredentialForm(WriteOnlySecretsForm):
    secret_fields = Credential.SECRET_FIELDS

    allowed_origins = OriginsField(
        label="Allowed origins",
        required=False,
        help_text=_model_help_text(Credential, "allowed_origins") + " One per line, e.g. https://auth.example.com.",
    )

    # Labels capitalised like the labels Django derives from the model fields ("Client id", "Username").
    client_secret = secret_field("Client secret")
    client_secret_clear = clear_field("client secret")
    password = secret_field("Password")
    password_clear = clear_field("password")
    api_key = secret_field("API key")
    api_key_clear = clear_field("API key")
    token = secret_field("Bearer token")
    token_clear = clear_field("bearer token")

    class Meta:
        model = Credential
        exclude = Credential.SECRET_FIELDS


# -- client definitions -----------------------------------------------------------------------------

#: Settings key path inside a client -> form field showing its errors.
CLIENT_FIELDS: Mapping[tuple[str, ...], str] = {
    (): "name",
    ("BASE_URL",): "base_url",
    ("TIMEOUT",): "timeout",
    ("HEADERS",): "headers",
    ("VERIFY_SSL",): "ca_bundle",
    ("RETRY",): "retry",
    ("CIRCUIT_BREAKER",): "circuit_breaker",
    ("RATE_LIMIT",): "rate_limit",
    ("HOOKS",): "hooks",
    ("AUTH",): "auth_type",
    ("AUTH", "TOKEN_URL"): "token_url",
    ("AUTH", "CLIENT_AUTH_METHOD"): "client_auth_method",
    ("AUTH", "SCOPE"): "scope",
    ("AUTH", "HEADER"): "api_key_header",
    ("AUTH", "QUERY_PARAM"): "api_key_query_param",
    ("AUTH", "PIPELINE"): "pipeline",
    ("AUTH", "EXCLUDED_PATHS"): "excluded_paths",
    **{("AUTH", key): "credential" for key in ("CREDENTIAL", "CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "TOKEN", "KEY")},
}

#: AUTH secret key -> the Credential field that supplies it.
CREDENTIAL_FIELD_BY_KEY: Mapping[str, str] = {
    "CLIENT_ID": "client_id",
    "CLIENT_SECRET": "client_secret",
    "USERNAME": "username",
    "PASSWORD": "password",
    "TOKEN": "token",
    "KEY": "api_key",
}


def credential_supplies(credential: Credential, key: str) -> bool:
    """Whether ``credential`` has a value for the AUTH ``key`` (secrets are checked without decrypting)."""
    field = CREDENTIAL_FIELD_BY_KEY[key]
    if field in Credential.SECRET_FIELDS:
        return secret_state(credential, field) != "empty"
    return bool(getattr(credential, field))


class ClientDefinitionForm(_ClientDefinitionModelForm):
    """Validates the client with the rules of ``manage.py check`` (see the module docstring).

    ``requestforge_user`` (set by :meth:`ClientDefinitionAdmin.get_form`) limits the
    credential choices to those the user may use; ``None`` (a form built in code) offers
    every credential. The origin binding is checked either way.
    """

    requestforge_user: ClassVar[Any] = None

    class Meta:
        model = ClientDefinition
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requestforge_warnings: list[str] = []
        field = self.fields.get("credential")
        if field is not None and self.requestforge_user is not None:
            assert isinstance(field, forms.ModelChoiceField)  # the form field of the credential ForeignKey
            # Choices and validation both use this queryset: a POST naming another credential is "not a valid choice".
            field.queryset = usable_credentials(self.requestforge_user, field.queryset)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        refuse_settings_name(name, "CLIENTS")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned is None:  # Django's convention for clean(): None means self.cleaned_data, changed in place
            cleaned = self.cleaned_data
        credential = cleaned.get("credential")
        auth_type: str | None = cleaned.get("auth_type")
        if credential is not None and auth_type is not None and auth_type in AUTH_SECRETS_BY_TYPE and auth_type != "pipeline":
            if not credential.is_active:
                self.add_error("credential", f'Credential "{credential}" is inactive; activate it or choose another one.')
            required = list(AUTH_SECRETS_BY_TYPE[auth_type])
            for_what = f'AUTH TYPE "{auth_type}"'
            if auth_type in ("client_credentials", "password") and cleaned.get("client_auth_method") == "client_secret_basic":
                required += [key for key in ("CLIENT_ID", "CLIENT_SECRET") if key not in required]
                for_what += " with client_secret_basic"
            missing = [key for key in required if not credential_supplies(credential, key)]
            if missing:
                self.add_error(
                    "credential",
                    ValidationError(
                        f'Credential "{credential}" has no {" or ".join(missing)}, required for {for_what}. ({E_AUTH_MISSING})',
                        code=E_AUTH_MISSING,
                    ),
                )
        return cleaned

    def _post_clean(self) -> None:
        # Django's hook that runs after the form values are copied onto self.instance:
        # the raw dict can only be built from a complete instance.
        super()._post_clean()  # type: ignore[misc]  # Django's private hook; not in django-stubs
        if self.errors:
            return  # fix the fields first: the raw dict would be built from partial values
        for problem in self.instance.problems():
            if problem.is_error:
                add_problem(self, problem, field_for(problem.path[2:], CLIENT_FIELDS))
            else:
                self.requestforge_warnings.append(problem_text(problem))
        if not self.errors:
            self._check_binding()

    def _check_binding(self) -> None:
        """``requestforge.E043`` on the field whose origin the chosen credential is not bound to."""
        definition = self.instance
        if not definition.uses_credential():
            return
        credential = definition.credential
        assert credential is not None  # uses_credential(): credential_id is set
        allowed = ", ".join(credential.allowed_origin_set()) or "none: only clients defined in settings may use it"
        for key, origin in unbound_destinations(credential, definition.credential_destinations()):
            field = {"AUTH.TOKEN_URL": "token_url", "BASE_URL": "base_url"}.get(key)
            self.add_error(
                field if field in self.fields else None,
                ValidationError(
                    f'Credential "{credential}" may not be sent to {origin}: its allowed origins are {allowed}. '
                    f"A user with change permission on credentials must add the origin to the credential first. "
                    f"({E_CREDENTIAL_ORIGIN})",
                    code=E_CREDENTIAL_ORIGIN,
                ),
            )


# -- pipeline definitions --------------------------------------------------------------------------

#: Settings key inside a step -> step form field.
STEP_FIELDS: Mapping[tuple[str, ...], str] = {
    ("NAME",): "name",
    ("FETCHER",): "fetcher",
    ("URL",): "url",
    ("METHOD",): "method",
    ("HEADERS",): "headers",
    ("DATA",): "data",
    ("JSON",): "json",
    ("PARAMS",): "params",
    ("TOKEN_HEADER",): "token_header",
    ("TOKEN_FIELD",): "token_field",
    ("EXPIRES_IN_FIELD",): "expires_in_field",
    ("TTL",): "ttl",
    ("DEPENDS_ON",): "depends_on",
}


class PipelineDefinitionForm(_PipelineDefinitionModelForm):
    class Meta:
        model = PipelineDefinition
        fields = "__all__"

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        refuse_settings_name(name, "PIPELINES")
        # The name rule (requestforge.E008) from the validator itself; the steps formset skips it.
        for problem in validate_pipeline(name, {}):
            if len(problem.path) == 2:
                raise ValidationError(problem_text(problem), code=problem.id)
        return name


class PipelineStepFormSet(_PipelineStepInlineFormSet):
    """Validates the whole pipeline (its fields and every step, in run order) like ``manage.py check``.

    Step problems are shown on the step's field; pipeline-wide ones (no steps,
    ``REFRESH_FROM_STEP``, the name) above the steps.
    """

    requestforge_warnings: list[str]

    def clean(self) -> None:
        super().clean()
        self.requestforge_warnings = []
        if any(self.errors):
            return  # fix the fields first: the raw dict would be built from partial values
        kept = [f for f in self.forms if f.cleaned_data and not (self.can_delete and f.cleaned_data.get("DELETE"))]
        kept.sort(key=lambda f: (f.cleaned_data.get("order") or 0, f.instance.pk is None, f.instance.pk or 0))
        problems = self.instance.problems([form.instance for form in kept])
        pipeline_wide: list[ValidationError] = []
        for problem in problems:
            path = problem.path
            if len(path) == 2:
                continue  # the pipeline name: reported on the pipeline form (which may not have a valid name yet)
            if not problem.is_error:
                self.requestforge_warnings.append(problem_text(problem))
            elif len(path) >= 4 and path[2] == "STEPS" and isinstance(path[3], int) and path[3] < len(kept):
                add_problem(kept[path[3]], problem, field_for(path[4:], STEP_FIELDS))
            else:
                pipeline_wide.append(ValidationError(problem_text(problem), code=problem.id))
        if pipeline_wide:
            raise ValidationError(pipeline_wide)


# -- token status -------------------------------------------------------------------------------------
#
# Who may do what (docs/admin.md, "Permissions"):
#
# * the token status page: permission to view client definitions
#   (``requestforge_django.view_clientdefinition``; ``change_clientdefinition`` implies it);
# * "refresh now" / "invalidate" of a client's token: ``change_clientdefinition``; of a
#   pipeline's (or one step's) tokens: ``change_pipelinedefinition``. The same rule holds
#   for the admin actions of the two change lists, and for settings-defined names.
#
# Everyone else gets 403; like every admin view the page is for active staff only (others
# are sent to the login page). A token is only ever rendered masked (``mask_secret``: a
# four-character prefix), and error texts are the library's exception strings, which
# mask secrets themselves.

#: ``reverse(f"admin:{TOKEN_STATUS_URL_NAME}")``: the token status page.
TOKEN_STATUS_URL_NAME = "requestforge_django_tokenstatus"
VIEW_STATUS_PERMISSION = "requestforge_django.view_clientdefinition"
CHANGE_PERMISSION_BY_KIND: Mapping[str, str] = {
    "client": "requestforge_django.change_clientdefinition",
    "pipeline": "requestforge_django.change_pipelinedefinition",
}
#: POSTed ``action`` -> button label.
TOKEN_ACTIONS: Mapping[str, str] = {"refresh": "Refresh now", "invalidate": "Invalidate"}


def can_view_token_status(user: Any) -> bool:
    """Whether ``user`` may see the token status page (see the rule above)."""
    return bool(
        user.is_active and user.is_staff and (user.has_perm(VIEW_STATUS_PERMISSION) or user.has_perm(CHANGE_PERMISSION_BY_KIND["client"]))
    )


def can_manage_tokens(user: Any, kind: str) -> bool:
    """Whether ``user`` may refresh or invalidate the tokens of a ``kind`` (``"client"`` / ``"pipeline"``)."""
    return bool(user.is_active and user.is_staff and user.has_perm(CHANGE_PERMISSION_BY_KIND[kind]))


class NoTokenError(Exception):
    """The client has no token to refresh or invalidate (static credentials, no auth, inactive)."""


def describe_seconds(seconds: float | None) -> str:
    """``"59m 58s"``, ``"expired 3s ago"`` or ``"-"`` (the format of ``requestforge_status``)."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return f"expired {format_seconds(-seconds)} ago"
    return format_seconds(seconds)


def _token_client(name: str) -> None:
    """Raise unless ``name`` is a client whose auth obtains tokens."""
    definitions = registry.definitions()
    spec = definitions.clients.get(name)
    if spec is None:
        raise UnknownNameError("client", name, definitions.clients)
    if spec.auth is None or not spec.auth.uses_tokens:
        shown = "no AUTH" if spec.auth is None else f'AUTH TYPE "{spec.auth.type}"'
        raise NoTokenError(f'Client "{name}" has {shown}: it has no token to refresh or invalidate.')


def _pipeline(name: str, step: str | None) -> Any:
    definitions = registry.definitions()
    if name not in definitions.pipelines:
        raise UnknownNameError("pipeline", name, definitions.pipelines)
    pipeline = registry.get_pipeline(name)
    if step is not None and pipeline.get_step(step) is None:
        raise UnknownNameError(f"step of pipeline {name!r}", step, pipeline.step_names)
    return pipeline


def refresh_token(kind: str, name: str, step: str | None = None) -> str:
    """Fetch a new token now (a pipeline: from ``step``, or every step); returns the success message.

    A client: ``registry.get_token_manager(name).force_refresh()``. A pipeline:
    ``registry.get_pipeline(name).refresh_from(step)`` (``step`` and the steps depending
    on it; every step without one). Raises what the fetch raised; the current token
    stays cached then.
    """
    if kind == "pipeline":
        token = _pipeline(name, step).refresh_from(step)
        label = f"{name}/{step} and the steps depending on it" if step else f"every step of {name}"
        what = "final token"
    else:
        _token_client(name)
        token = registry.get_token_manager(name).force_refresh()
        label, what = name, "token"
    return f"Refreshed {label}: new {what} {mask_secret(token.access_token)}, expires in {describe_seconds(token.seconds_left())}."


def invalidate_token(kind: str, name: str, step: str | None = None) -> str:
    """Drop the token(s) from the shared cache (reason ``"manual"``); returns the success message."""
    if kind == "pipeline":
        pipeline = _pipeline(name, step)
        if step is None:
            pipeline.invalidate_all(reason="manual")
            dropped = list(pipeline.step_names)
        else:
            pipeline.invalidate_step(step, reason="manual")
            dropped = [step, *pipeline.dependents_of(step)]
        labels = ", ".join(f"{name}/{s}" for s in dropped)
    else:
        _token_client(name)
        registry.get_token_manager(name).invalidate_token(reason="manual")
        labels = name
    return f"Invalidated {labels}: every process fetches a new token on next use."


_TOKEN_FUNCTIONS: Mapping[str, Any] = {"refresh": refresh_token, "invalidate": invalidate_token}
_FAILURE_VERB = {"refresh": "refresh", "invalidate": "invalidate"}


def run_token_action(request: HttpRequest, action: str, kind: str, name: str, step: str | None = None) -> bool:
    """Run ``action`` and report the outcome with ``messages``; whether it succeeded."""
    label = f"{name}/{step}" if step else name
    try:
        text = _TOKEN_FUNCTIONS[action](kind, name, step)
    except NoTokenError as exc:
        messages.warning(request, str(exc))
        return False
    except Exception as exc:  # the library's exception strings are masked
        messages.error(request, f"Could not {_FAILURE_VERB[action]} {label}: {describe_error(exc)}")
        return False
    messages.success(request, text)
    return True


@dataclass(frozen=True)
class TokenStatusRow:
    """One line of the status page: a :class:`~requestforge_django.status.TokenStatus` and how to show it."""

    status: TokenStatus
    state: str  # "cached" | "expired" | "missing" | "error" | "static" | "pipeline"
    state_text: str
    expires_in: str
    change_url: str | None
    can_act: bool

    @property
    def row_id(self) -> str:
        return f"token-{self.status.kind}-{self.status.name}" + (f"-{self.status.step}" if self.status.step else "")


def token_state(row: TokenStatus) -> tuple[str, str]:
    """``(state, text)`` for one status row, e.g. ``("cached", "cached")`` or ``("static", "static credentials")``."""
    if row.problem:
        return "error", row.problem
    if row.error:
        return "error", f"cache unreadable: {row.error}"
    if row.auth == "pipeline":
        return "pipeline", "via its pipeline"
    if not row.uses_tokens:
        return "static", "no auth" if row.auth == "none" else "static credentials"
    if not row.cached:
        return "missing", "not cached"
    if row.expires_in is not None and row.expires_in <= 0:
        return "expired", "cached (expired)"
    return "cached", "cached"


def token_summary(row: TokenStatus) -> str:
    """One line for the change lists' token column: state, expiry and last error."""
    state, text = token_state(row)
    parts = [text]
    if state in ("cached", "expired"):
        parts.append(f"expires in {describe_seconds(row.expires_in)}" if state == "cached" else describe_seconds(row.expires_in))
    if row.last_error:
        parts.append(f"last error: {row.last_error}")
    line = ", ".join(parts)
    return f"{row.step}: {line}" if row.step else line


def _change_urls(rows: Iterable[TokenStatus], user: Any) -> dict[tuple[str, str], str]:
    """``(kind, name) -> change page URL`` for the database-defined rows ``user`` may open."""
    urls: dict[tuple[str, str], str] = {}
    for kind, model in (("client", ClientDefinition), ("pipeline", PipelineDefinition)):
        opts = model._meta
        if not (user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(f"{opts.app_label}.change_{opts.model_name}")):
            continue
        names = {row.name for row in rows if row.kind == kind and row.source == "database"}
        for pk, name in model.objects.filter(name__in=names).values_list("pk", "name"):
            urls[(kind, name)] = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=(pk,))
    return urls


def token_status_rows(user: Any) -> list[TokenStatusRow]:
    """Every client and pipeline step (settings and database), as shown to ``user``."""
    statuses = token_statuses()
    urls = _change_urls(statuses, user)
    may_act = {kind: can_manage_tokens(user, kind) for kind in CHANGE_PERMISSION_BY_KIND}
    rows = []
    for status in statuses:
        state, text = token_state(status)
        rows.append(
            TokenStatusRow(
                status=status,
                state=state,
                state_text=text,
                expires_in=describe_seconds(status.expires_in),
                change_url=urls.get((status.kind, status.name)),
                can_act=status.uses_tokens and may_act[status.kind],
            )
        )
    return rows


def token_status_view(admin_site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    """The token status page (GET) and its "refresh now" / "invalidate" buttons (POST, then back here)."""
    if not can_view_token_status(request.user):
        raise PermissionDenied
    if request.method == "POST":
        action, kind, name = (request.POST.get(key, "") for key in ("action", "kind", "name"))
        step = request.POST.get("step") or None
        if action not in TOKEN_ACTIONS or kind not in CHANGE_PERMISSION_BY_KIND or not name:
            return HttpResponseBadRequest("Unknown token action.")
        if not can_manage_tokens(request.user, kind):
            raise PermissionDenied
        run_token_action(request, action, kind, name, step)
        return HttpResponseRedirect(request.path)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    from .conf import requestforge_settings

    context = {
        **admin_site.each_context(request),
        "title": "Token status",
        "rows": token_status_rows(request.user),
        "actions": list(TOKEN_ACTIONS.items()),
        "cache_alias": requestforge_settings.spec.cache,
        "app_label": ClientDefinition._meta.app_label,
        "app_verbose_name": apps.get_app_config(ClientDefinition._meta.app_label).verbose_name,
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "requestforge_django/admin/token_status.html", context)


class TokenStatusMixin(_TokenStatusMixinBase):
    """The token column and the "refresh now" / "invalidate" actions of the client and pipeline change lists.

    ``token_kind`` says what a row is (``"client"`` or ``"pipeline"``). The column reads
    the shared cache (nothing is fetched); the actions need the model's change permission
    and report each row with ``messages``.
    """

    token_kind: ClassVar[str] = "client"
    actions = ("refresh_tokens", "invalidate_tokens")
    change_list_template = "requestforge_django/admin/definition_change_list.html"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        status_url = reverse(f"admin:{TOKEN_STATUS_URL_NAME}") if can_view_token_status(request.user) else None
        return super().changelist_view(request, {"token_status_url": status_url, **(extra_context or {})})

    def token_rows(self, name: str) -> list[TokenStatus] | str:
        """The status rows of the definition called ``name``, or why there are none."""
        definitions = registry.definitions()
        section = definitions.clients if self.token_kind == "client" else definitions.pipelines
        if name not in section:
            return "not loaded (invalid, or changed less than a second ago: see the logs)"
        if definitions.sources.get(name) == "settings":
            return f"the settings entry of this name is used ({E_DEFINED_TWICE})"
        collides = self.token_kind == "pipeline" and name in definitions.clients
        rows = token_statuses(None if collides else [name])
        return [row for row in rows if row.kind == self.token_kind and row.name == name]

    @admin.display(description="token")
    def token_status(self, obj: Any) -> str:
        if not obj.is_active:
            return "inactive"
        try:
            rows = self.token_rows(obj.name)
        except Exception as exc:
            return f"status unavailable: {describe_error(exc)}"
        if isinstance(rows, str):
            return rows
        return format_html_join(mark_safe("<br>"), "{}", ((token_summary(row),) for row in rows))

    def _token_action(self, request: HttpRequest, queryset: Any, action: str) -> None:
        for obj in queryset:
            if not obj.is_active:
                messages.warning(request, f'"{obj.name}" is inactive: it has no token.')
                continue
            run_token_action(request, action, self.token_kind, obj.name)

    @admin.action(description="Refresh tokens now", permissions=["change"])
    def refresh_tokens(self, request: HttpRequest, queryset: Any) -> None:
        self._token_action(request, queryset, "refresh")

    @admin.action(description="Invalidate tokens", permissions=["change"])
    def invalidate_tokens(self, request: HttpRequest, queryset: Any) -> None:
        self._token_action(request, queryset, "invalidate")


# -- admins ------------------------------------------------------------------------------------------


def _state_display(name: str, label: str) -> Any:
    @admin.display(description=label)
    def display(self: Any, obj: Credential) -> str:
        return _STATE_TEXT[secret_state(obj, name)]

    display.__name__ = f"{name}_state"
    return display


@admin.register(Credential)
class CredentialAdmin(_CredentialModelAdmin):
    form = CredentialForm
    list_display = ("name", "client_id", "username", "client_secret_state", "password_state", "api_key_state", "token_state", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "client_id", "username")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "is_active")}),
        ("Identity", {"fields": ("client_id", "username", "scope", "extra_params")}),
        (
            "Where it may be sent",
            {
                "description": "Clients defined in the admin may send this credential's secrets, and the tokens obtained "
                "with them, only to these origins (their token URL and base URL). Clients defined in settings are not limited.",
                "fields": ("allowed_origins",),
            },
        ),
        (
            "Secrets",
            {
                "description": "Secrets are stored encrypted and never shown again. " + SECRET_HELP,
                "fields": tuple((name, f"{name}_clear") for name in Credential.SECRET_FIELDS),
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    client_secret_state = _state_display("client_secret", "Client secret")
    password_state = _state_display("password", "Password")
    api_key_state = _state_display("api_key", "API key")
    token_state = _state_display("token", "Bearer token")

    def get_fieldsets(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        """Without change permission every field is shown read-only: show the secrets' state, never their value."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (title, {**options, "fields": tuple(f"{pair[0]}_state" if isinstance(pair, tuple) else pair for pair in options["fields"])})
            for title, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            readonly += tuple(f"{name}_state" for name in Credential.SECRET_FIELDS)
        return readonly

    def save_model(self, request: HttpRequest, obj: Credential, form: Any, change: bool) -> None:
        """Saves, then warns about the client definitions the (new) allowed origins no longer cover."""
        super().save_model(request, obj, form, change)
        if not change:
            return
        for definition in obj.client_definitions.filter(is_active=True).order_by("name"):
            unbound = unbound_destinations(obj, definition.credential_destinations())
            if unbound:
                origins = ", ".join(dict.fromkeys(origin for _, origin in unbound))
                messages.warning(
                    request,
                    f'Client definition "{definition.name}" sends this credential to {origins}, which is no longer allowed: '
                    f"it is refused until the origin is allowed again or the definition changes ({E_CREDENTIAL_ORIGIN}).",
                )


class _WarningsAdmin(_AnyModelAdmin):
    """Shows the warnings (``requestforge.W0xx``) of a saved definition as admin messages."""

    def show_warnings(self, request: HttpRequest, warnings: Iterable[str]) -> None:
        for warning in warnings:
            messages.warning(request, warning)


@admin.register(ClientDefinition)
class ClientDefinitionAdmin(TokenStatusMixin, _WarningsAdmin):
    form = ClientDefinitionForm
    token_kind = "client"
    list_display = ("name", "base_url", "auth_type", "credential", "is_active", "token_status", "updated_at")
    list_filter = ("is_active", "auth_type")
    search_fields = ("name", "base_url")
    list_select_related = ("credential",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "is_active", "base_url", "timeout", "headers", "verify_ssl", "ca_bundle")}),
        (
            "Authentication",
            {
                "description": "Secrets come from the chosen credential; a definition never holds them itself.",
                "fields": (
                    "auth_type",
                    "credential",
                    "token_url",
                    "client_auth_method",
                    "scope",
                    "api_key_header",
                    "api_key_query_param",
                    "pipeline",
                    "excluded_paths",
                ),
            },
        ),
        ("Resilience", {"fields": ("retry", "circuit_breaker", "rate_limit")}),
        ("Hooks", {"fields": ("hooks",)}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        """The form, bound to ``request.user`` (its credential choices are the ones the user may use)."""
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"requestforge_user": request.user})

    def has_change_permission(self, request: HttpRequest, obj: ClientDefinition | None = None) -> bool:
        """A definition whose credential the user may not use is view-only for that user.

        Otherwise a user who may not see a credential could re-point a definition that
        already uses it (base URL, token URL, TLS settings, hooks).
        """
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or obj.credential_id is None or may_use_credential(request.user, obj.credential)

    def get_urls(self) -> list[Any]:
        """Adds the token status page (of every client and pipeline, settings ones included)."""
        status = self.admin_site.admin_view(self.token_status_page)
        return [path("token-status/", status, name=TOKEN_STATUS_URL_NAME), *super().get_urls()]

    def token_status_page(self, request: HttpRequest) -> HttpResponse:
        return token_status_view(self.admin_site, request)

    def save_model(self, request: HttpRequest, obj: ClientDefinition, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self.show_warnings(request, getattr(form, "requestforge_warnings", ()))


class PipelineStepInline(_PipelineStepStackedInline):
    model = PipelineStep
    formset = PipelineStepFormSet
    extra = 0
    ordering = ("order", "pk")
    fields = (
        ("order", "name"),
        ("fetcher", "method"),
        "url",
        "headers",
        ("data", "json"),
        "params",
        ("token_header", "token_field", "expires_in_field"),
        ("ttl", "depends_on"),
    )

    def get_extra(self, request: HttpRequest, obj: PipelineDefinition | None = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0


@admin.register(PipelineDefinition)
class PipelineDefinitionAdmin(TokenStatusMixin, _WarningsAdmin):
    form = PipelineDefinitionForm
    inlines = (PipelineStepInline,)
    token_kind = "pipeline"
    list_display = ("name", "step_names", "refresh_from_step", "is_active", "token_status", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    fields = ("name", "is_active", "refresh_from_step", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("steps")

    @admin.display(description="steps")
    def step_names(self, obj: PipelineDefinition) -> str:
        return " -> ".join(step.name for step in obj.steps.all())

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        self.show_warnings(request, getattr(formset, "requestforge_warnings", ()))
