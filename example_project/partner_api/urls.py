"""The partner endpoints; the clients in ``REQUESTFORGE`` point here."""

from django.urls import path

from . import views

app_name = "partner_api"

urlpatterns = [
    # OAuth2 client credentials ("billing").
    path("oauth/token", views.oauth_token, name="oauth-token"),
    # The three-step flow ("partner" pipeline): device -> app -> user.
    path("v1/device/register", views.device_register, name="device-register"),
    path("v1/app/token", views.app_token, name="app-token"),
    path("v1/user/token", views.user_token, name="user-token"),
    # Protected endpoints.
    path("api/invoices/<int:number>", views.invoice, name="invoice"),
    path("api/me", views.profile, name="profile"),
    path("api/contacts/<int:number>", views.contact, name="contact"),  # OAuth tokens ("crm", defined in the admin)
    path("api/catalog", views.catalog, name="catalog"),  # app tokens ("catalog", pipeline "kiosk", defined in the admin)
    path("legacy/status", views.legacy_status, name="legacy-status"),
    # Counters for the demo (a real partner has none).
    path("stats", views.stats, name="stats"),
]
