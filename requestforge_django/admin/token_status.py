"""The token status page, and the token column and actions of the client and pipeline change lists.

What is shown comes from :func:`requestforge_django.operations.statuses` and what the
buttons do from :func:`~requestforge_django.operations.refresh` and
:func:`~requestforge_django.operations.invalidate`, the same operations as
``manage.py requestforge_status`` / ``requestforge_invalidate``: this module only decides
who may do it and how the outcome reads.

Who may do what (docs/admin.md, "Permissions"):

* the token status page: permission to view client definitions
  (``requestforge_django.view_clientdefinition``; ``change_clientdefinition`` implies it);
* "refresh now" / "invalidate" of a client's token: ``change_clientdefinition``; of a
  pipeline's (or one step's) tokens: ``change_pipelinedefinition``. The same rule holds
  for the admin actions of the two change lists, and for settings-defined names.

Everyone else gets 403; like every admin view the page is for active staff only (others
are sent to the login page). A token is only ever rendered masked (``mask_secret``: a
four-character prefix), and error texts are the library's exception strings, which mask
secrets themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from .. import operations
from ..models import ClientDefinition, PipelineDefinition
from ..registry import registry
from ..setting.ids import E_DEFINED_TWICE
from ..shared.status_records import describe_error
from ..status import TokenState, TokenStatus, describe_expiry
from ._bases import TokenStatusMixinBase

#: ``reverse(f"admin:{TOKEN_STATUS_URL_NAME}")``: the token status page.
TOKEN_STATUS_URL_NAME = "requestforge_django_tokenstatus"
VIEW_STATUS_PERMISSION = "requestforge_django.view_clientdefinition"
CHANGE_PERMISSION_BY_KIND: Mapping[str, str] = {
    "client": "requestforge_django.change_clientdefinition",
    "pipeline": "requestforge_django.change_pipelinedefinition",
}
#: POSTed ``action`` -> button label.
TOKEN_ACTIONS: Mapping[str, str] = {"refresh": "Refresh now", "invalidate": "Invalidate"}

#: Kept importable from here; the class lives in :mod:`requestforge_django.operations`.
NoTokenError = operations.NoTokenError


def can_view_token_status(user: Any) -> bool:
    """Whether ``user`` may see the token status page (see the rule above)."""
    return bool(
        user.is_active and user.is_staff and (user.has_perm(VIEW_STATUS_PERMISSION) or user.has_perm(CHANGE_PERMISSION_BY_KIND["client"]))
    )


def can_manage_tokens(user: Any, kind: str) -> bool:
    """Whether ``user`` may refresh or invalidate the tokens of a ``kind`` (``"client"`` / ``"pipeline"``)."""
    return bool(user.is_active and user.is_staff and user.has_perm(CHANGE_PERMISSION_BY_KIND[kind]))


# -- actions ---------------------------------------------------------------------------------------------


def refresh_token(kind: str, name: str, step: str | None = None) -> str:
    """Fetch a new token now (:func:`requestforge_django.operations.refresh`); returns the success message."""
    return operations.refresh(kind, name, step).message


def invalidate_token(kind: str, name: str, step: str | None = None) -> str:
    """Drop the token(s) from the shared cache (:func:`requestforge_django.operations.invalidate`); the success message."""
    # A step POSTed with a client's row means nothing: the client's token is what the row shows.
    dropped = operations.invalidate([name], kind=kind, step=step if kind == "pipeline" else None)
    return f"Invalidated {', '.join(dropped)}: every process fetches a new token on next use."


_TOKEN_FUNCTIONS: Mapping[str, Callable[[str, str, str | None], str]] = {"refresh": refresh_token, "invalidate": invalidate_token}


def run_token_action(request: HttpRequest, action: str, kind: str, name: str, step: str | None = None) -> bool:
    """Run ``action`` and report the outcome with ``messages``; whether it succeeded."""
    label = f"{name}/{step}" if step else name
    try:
        text = _TOKEN_FUNCTIONS[action](kind, name, step)
    except operations.NoTokenError as exc:
        messages.warning(request, f'Client "{exc.name}" has {exc.shown}: it has no token to refresh or invalidate.')
        return False
    except Exception as exc:  # the library's exception strings are masked
        messages.error(request, f"Could not {action} {label}: {describe_error(exc)}")
        return False
    messages.success(request, text)
    return True


# -- the page ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenStatusRow:
    """One line of the status page: a :class:`~requestforge_django.status.TokenStatus` and how to show it."""

    status: TokenStatus
    state: TokenState
    state_text: str
    expires_in: str  # "expires in 59 min 58 s", "expired 3 s ago" or "-"
    change_url: str | None
    can_act: bool

    @property
    def row_id(self) -> str:
        return f"token-{self.status.kind}-{self.status.name}" + (f"-{self.status.step}" if self.status.step else "")


def token_state(row: TokenStatus) -> tuple[TokenState, str]:
    """``(state, text)`` for one status row, e.g. ``(TokenState.CACHED, "cached")``."""
    return row.state, row.state_text


def token_summary(row: TokenStatus) -> str:
    """One line for the change lists' token column: state, expiry and last error."""
    parts = [row.state_text]
    if row.state in (TokenState.CACHED, TokenState.EXPIRED):
        parts.append(row.expiry)
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
    statuses = operations.statuses()
    urls = _change_urls(statuses, user)
    may_act = {kind: can_manage_tokens(user, kind) for kind in CHANGE_PERMISSION_BY_KIND}
    return [
        TokenStatusRow(
            status=status,
            state=status.state,
            state_text=status.state_text,
            expires_in=describe_expiry(status.expires_in),
            change_url=urls.get((status.kind, status.name)),
            can_act=status.uses_tokens and may_act[status.kind],
        )
        for status in statuses
    ]


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
    from ..setting.conf import requestforge_settings

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


# -- the change lists --------------------------------------------------------------------------------------


class TokenStatusMixin(TokenStatusMixinBase):
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
        rows = operations.statuses(None if collides else [name])
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
