"""The admin's forms for credentials: write-only secrets, who may use a credential, problems shown on fields.

* **Secrets are write-only.** A secret is edited through a password input that never
  renders a value (``render_value=False``, no hidden input), a blank submission keeps
  the stored value, and a "clear" checkbox erases it. Lists, detail pages and view-only
  pages only say "set" / "not set" (:func:`~requestforge_django.fields.secret_state`
  reads the stored value without decrypting it).
* **A credential goes only where its managers bound it**: :func:`may_use_credential`
  says who may choose one in a client definition.
* The helpers that put a :class:`~requestforge_django.setting.Problem` on the form
  field it is about are shared with :mod:`~requestforge_django.admin.definitions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Field as ModelField
from django.db.models import Model

from ..encryption import EncryptionError, ensure_keys
from ..fields import secret_state
from ..models import USE_CREDENTIAL_PERMISSION, Credential, normalize_origins, settings_names
from ..setting.ids import E_DEFINED_TWICE, E_JWT_EXTRA, E_KEYS_MISSING, E_PRIVATE_KEY
from ..setting.problems import Problem
from ..setting.rules.oauth import error_detail
from ._bases import AnyModelForm

SECRET_HELP = "Leave blank to keep the stored value."

#: How lists and view-only pages show a secret, by :func:`~requestforge_django.fields.secret_state`.
SECRET_STATE_TEXT = {"empty": "not set", "set": "set", "unreadable": "set (cannot be decrypted with the current keys)"}
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


class _WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value: a multi-line secret (a PEM key) is typed in, never shown back.

    A password input would do for one line, but browsers drop the line breaks of what is
    pasted into it, and a PEM key needs them.
    """

    def format_value(self, value: Any) -> None:
        return None


def secret_text_field(label: str) -> forms.CharField:
    """:func:`secret_field` for multi-line secrets such as a PEM private key."""
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=_WriteOnlyTextarea(attrs={"rows": 4, "cols": 64, "autocomplete": "off", "spellcheck": "false"}),
        help_text=SECRET_HELP,
    )


def clear_field(label: str) -> forms.BooleanField:
    """The "Clear <label>" checkbox beside a :func:`secret_field` (``label`` as it reads mid-sentence: "client secret")."""
    return forms.BooleanField(label=f"Clear {label}", required=False, help_text=f"Erase the stored {label}.")


class WriteOnlySecretsForm(AnyModelForm):
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
    private_key = secret_text_field("Private key")
    private_key_clear = clear_field("private key")

    class Meta:
        model = Credential
        exclude = Credential.SECRET_FIELDS

    def clean_private_key(self) -> str:
        """A PEM private key that can sign (``requestforge.E050``), checked as a settings PRIVATE_KEY is; never echoed."""
        from ..tokens.signing import private_key_error

        pem: str = self.cleaned_data.get("private_key") or ""
        if not pem.strip():
            return ""
        error = private_key_error(pem)
        if error is None:
            return pem.strip() + "\n"
        check_id = E_JWT_EXTRA if error.field is None else E_PRIVATE_KEY
        raise ValidationError(f"The private key {error_detail(error)} The value is not shown. ({check_id})", code=check_id)
