"""The admin's forms for client and pipeline definitions.

**A definition is valid exactly when the same settings entry would be.** The forms
build the raw settings dict with ``to_setting()`` and run
:func:`~requestforge_django.setting.validate_client` /
:func:`~requestforge_django.setting.validate_pipeline`; every error is shown on the
matching form field (or at the top) with its check id, warnings are shown as messages
after saving. A name already used in ``REQUESTFORGE`` is refused
(``requestforge.E031``).

**A credential goes only where its managers bound it.** Who may view a definition form
is not who may see a credential, so editing a definition must never let a user send a
credential's secret somewhere new. The client form offers only the credentials the user
may use (:func:`~requestforge_django.admin.forms.may_use_credential`), a POST naming
another one is refused, and every definition is checked against its credential's
``allowed_origins`` (``requestforge.E043``; the registry refuses the same at run time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError

from ..encryption import DecryptionError
from ..fields import secret_state
from ..models import ClientDefinition, Credential, PipelineDefinition, unbound_destinations
from ..setting.ids import E_AUTH_MISSING, E_CREDENTIAL_ORIGIN, E_JWT_EXTRA, E_KEY_ALGORITHM, E_PRIVATE_KEY, W_SHORT_SECRET
from ..setting.keys import AUTH_SECRETS_BY_TYPE, required_auth_keys
from ..setting.rules.oauth import error_detail
from ..setting.specs import CLIENT_AUTH_METHODS, OAUTH_AUTH_TYPES
from ..setting.validate import validate_pipeline
from ._bases import ClientDefinitionModelForm, PipelineDefinitionModelForm, PipelineStepInlineFormSet
from .forms import add_problem, field_for, problem_text, refuse_settings_name, usable_credentials

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
    ("AUTH", "ISSUER"): "issuer",
    ("AUTH", "CLIENT_AUTH_METHOD"): "client_auth_method",
    ("AUTH", "ALGORITHM"): "algorithm",
    ("AUTH", "AUDIENCE"): "audience",
    ("AUTH", "RESOURCE"): "resource",
    ("AUTH", "ASSERTION"): "assertion",
    ("AUTH", "SUBJECT_TOKEN_FROM"): "subject_token_from",
    ("AUTH", "SUBJECT_TOKEN_TYPE"): "subject_token_type",
    ("AUTH", "SCOPE"): "scope",
    ("AUTH", "HEADER"): "api_key_header",
    ("AUTH", "QUERY_PARAM"): "api_key_query_param",
    ("AUTH", "PIPELINE"): "pipeline",
    ("AUTH", "EXCLUDED_PATHS"): "excluded_paths",
    **{("AUTH", key): "credential" for key in ("CREDENTIAL", "CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "TOKEN", "KEY")},
    **{("AUTH", key): "credential" for key in ("PRIVATE_KEY", "KEY_ID")},
}

#: AUTH secret key -> the Credential field that supplies it.
CREDENTIAL_FIELD_BY_KEY: Mapping[str, str] = {
    "CLIENT_ID": "client_id",
    "CLIENT_SECRET": "client_secret",
    "USERNAME": "username",
    "PASSWORD": "password",
    "TOKEN": "token",
    "KEY": "api_key",
    "PRIVATE_KEY": "private_key",
    "KEY_ID": "key_id",
}


def credential_supplies(credential: Credential, key: str) -> bool:
    """Whether ``credential`` has a value for the AUTH ``key`` (secrets are checked without decrypting)."""
    field = CREDENTIAL_FIELD_BY_KEY[key]
    if field in Credential.SECRET_FIELDS:
        return secret_state(credential, field) != "empty"
    return bool(getattr(credential, field))


class ClientDefinitionForm(ClientDefinitionModelForm):
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
            method = cleaned.get("client_auth_method") or CLIENT_AUTH_METHODS[0]
            explicit = method if method != CLIENT_AUTH_METHODS[0] else None
            required = list(required_auth_keys(auth_type, explicit))
            if auth_type == "jwt_bearer":
                required.append("PRIVATE_KEY")  # signs the grant assertion
            for_what = f'AUTH TYPE "{auth_type}"' + (f" with {explicit}" if explicit and auth_type in OAUTH_AUTH_TYPES else "")
            missing = [key for key in dict.fromkeys(required) if not credential_supplies(credential, key)]
            if missing:
                self.add_error(
                    "credential",
                    ValidationError(
                        f'Credential "{credential}" has no {" or ".join(missing)}, required for {for_what}. ({E_AUTH_MISSING})',
                        code=E_AUTH_MISSING,
                    ),
                )
            elif auth_type in OAUTH_AUTH_TYPES:
                self._check_credential_keys(credential, auth_type, method, cleaned)
        return cleaned

    def _check_credential_keys(self, credential: Credential, auth_type: str, method: str, cleaned: dict[str, Any]) -> None:
        """The credential's key fits ALGORITHM (E051); a client_secret_jwt secret long enough to sign with (W009).

        The stored values are decrypted to be checked, never shown: messages describe a
        key by its type and size, a secret by its length.
        """
        from ..tokens.signing import hmac_secret_problem, private_key_error

        try:
            if method == "private_key_jwt" or auth_type == "jwt_bearer":
                algorithm = cleaned.get("algorithm") or None
                assertion = cleaned.get("assertion")
                if auth_type == "jwt_bearer" and method != "private_key_jwt":  # ALGORITHM is the client assertion's
                    algorithm = assertion.get("ALGORITHM") if isinstance(assertion, dict) else None
                error = private_key_error(credential.private_key, algorithm if isinstance(algorithm, str) else None)
                if error is not None:
                    check_id = {"algorithm": E_KEY_ALGORITHM, None: E_JWT_EXTRA}.get(error.field, E_PRIVATE_KEY)
                    field = "algorithm" if check_id == E_KEY_ALGORITHM and method == "private_key_jwt" else "credential"
                    text = f'Credential "{credential}": the private key {error_detail(error)} ({check_id})'
                    self.add_error(field, ValidationError(text, code=check_id))
            if method == "client_secret_jwt":
                problem = hmac_secret_problem(credential.client_secret)
                if problem is not None:
                    self.requestforge_warnings.append(f'Credential "{credential}": {problem} ({W_SHORT_SECRET})')
        except DecryptionError:
            self.add_error("credential", f'Credential "{credential}" cannot be decrypted with the current ENCRYPTION_KEYS.')

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
        if not self.errors and self.instance.auth_type == "token_exchange" and self.instance.subject_token_from:
            self._check_subject()

    def _check_binding(self) -> None:
        """``requestforge.E043`` on the field whose origin the chosen credential is not bound to."""
        definition = self.instance
        if not definition.uses_credential():
            return
        credential = definition.credential
        assert credential is not None  # uses_credential(): credential_id is set
        allowed = ", ".join(credential.allowed_origin_set()) or "none: only clients defined in settings may use it"
        for key, origin in unbound_destinations(credential, definition.credential_destinations()):
            field = {"AUTH.TOKEN_URL": "token_url", "AUTH.ISSUER": "issuer", "BASE_URL": "base_url"}.get(key)
            self.add_error(
                field if field in self.fields else None,
                ValidationError(
                    f'Credential "{credential}" may not be sent to {origin}: its allowed origins are {allowed}. '
                    f"A user with change permission on credentials must add the origin to the credential first. "
                    f"({E_CREDENTIAL_ORIGIN})",
                    code=E_CREDENTIAL_ORIGIN,
                ),
            )

    def _check_subject(self) -> None:
        """SUBJECT_TOKEN_FROM names a token source (E052) without a cycle (E053), where the subject token may go (E043).

        Checked against every definition this process knows (settings and database), with
        this form's values in place of the row being edited.
        """
        from ..registry import registry
        from ..registry.exchange import UnboundSubjectError, ensure_subject_bound
        from ..setting.rules.subjects import kind_in, subject_in, subject_problem
        from ..setting.validate import parse_client

        definition = self.instance
        known = registry.definitions()
        own = parse_client(definition.name, definition.to_setting(), pipelines=known.pipelines.keys())
        clients = {**known.clients, definition.name: own}

        subject = definition.subject_token_from
        problem = subject_problem(definition.name, subject, kind_in(clients, known.pipelines.keys()), subject_in(clients.get))
        if problem is not None:
            check_id, detail, hint = problem
            text = f'AUTH["SUBJECT_TOKEN_FROM"] {detail} {hint} ({check_id})'
            self.add_error("subject_token_from", ValidationError(text, code=check_id))
            return
        assert own.auth is not None
        try:
            ensure_subject_bound(
                definition.name,
                own.auth,
                clients.get,
                known.pipelines.get,
                lambda name: name != definition.name and known.sources.get(name) == "database",
            )
        except UnboundSubjectError as exc:
            field = "issuer" if own.auth.issuer else "token_url"
            self.add_error(field, ValidationError(f"{exc.message}", code=E_CREDENTIAL_ORIGIN))


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


class PipelineDefinitionForm(PipelineDefinitionModelForm):
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


class PipelineStepFormSet(PipelineStepInlineFormSet):
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
