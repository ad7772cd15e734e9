"""URLs: the demo page at ``/``, the stand-in partner APIs under ``/partner/``, and the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("demo.urls")),
    path("partner/", include("partner_api.urls")),
    path("admin/", admin.site.urls),
]
