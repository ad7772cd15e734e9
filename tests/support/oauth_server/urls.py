"""URLs of the test authorization server: DOT under ``/o/``, protected resources, test control."""

from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/bearer-401/", views.Bearer401Resource.as_view()),
    # The path the registry worker (tests/support/registry_worker.py) calls.
    path("api/protected", views.Bearer401Resource.as_view()),
    path("api/dot-default/", views.DotDefaultResource.as_view()),
    path("api/bearer-403/", views.Bearer403Resource.as_view()),
    path("_control/ledger/", views.control_ledger),
    path("_control/counts/<str:client_id>/", views.control_counts),
    path("_control/secret/", views.control_secret),
    path("_control/revoke/", views.control_revoke),
    path("_control/reset/", views.control_reset),
]
