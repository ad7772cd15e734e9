from django.contrib import admin

from .models import PartnerRequest


@admin.register(PartnerRequest)
class PartnerRequestAdmin(admin.ModelAdmin):
    """The partner's access log: when each token endpoint was called (read-only)."""

    list_display = ("at", "endpoint", "status")
    list_filter = ("endpoint", "status")

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
