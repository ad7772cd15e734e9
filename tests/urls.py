"""URLs of the test project: the Django admin, for the admin tests."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
