"""The ModelAdmins of credentials, client definitions and pipeline definitions, registered with the default site.

The rules they keep are in :mod:`requestforge_django.admin` (the package docstring);
the forms are in :mod:`~requestforge_django.admin.forms` and
:mod:`~requestforge_django.admin.definitions`, the token column, actions and status page
in :mod:`~requestforge_django.admin.token_status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.urls import path

from ..fields import secret_state
from ..models import ClientDefinition, Credential, PipelineDefinition, PipelineStep, unbound_destinations
from ..setting.ids import E_CREDENTIAL_ORIGIN
from ._bases import AnyModelAdmin, CredentialModelAdmin, PipelineStepStackedInline
from .definitions import ClientDefinitionForm, PipelineDefinitionForm, PipelineStepFormSet
from .forms import SECRET_HELP, SECRET_STATE_TEXT, CredentialForm, may_use_credential
from .token_status import TOKEN_STATUS_URL_NAME, TokenStatusMixin, token_status_view


def _state_display(name: str, label: str) -> Any:
    @admin.display(description=label)
    def display(self: Any, obj: Credential) -> str:
        return SECRET_STATE_TEXT[secret_state(obj, name)]

    display.__name__ = f"{name}_state"
    return display


@admin.register(Credential)
class CredentialAdmin(CredentialModelAdmin):
    form = CredentialForm
    list_display = (
        "name",
        "client_id",
        "username",
        "client_secret_state",
        "password_state",
        "api_key_state",
        "token_state",
        "private_key_state",
        "is_active",
    )
    list_filter = ("is_active",)
    search_fields = ("name", "client_id", "username")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "is_active")}),
        ("Identity", {"fields": ("client_id", "username", "key_id", "scope", "extra_params")}),
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
    private_key_state = _state_display("private_key", "Private key")

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


class _WarningsAdmin(AnyModelAdmin):
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
                    "issuer",
                    "client_auth_method",
                    "algorithm",
                    "scope",
                    "audience",
                    "resource",
                    "assertion",
                    "subject_token_from",
                    "subject_token_type",
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


class PipelineStepInline(PipelineStepStackedInline):
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
