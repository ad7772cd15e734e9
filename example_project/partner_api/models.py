"""What the partner saw: one row per request, so the demo can count token fetches across processes."""

from __future__ import annotations

from django.db import models


class PartnerRequest(models.Model):
    """One request to a partner endpoint, as the partner's access log would record it.

    A row (rather than a counter in a cache) because the count must be exact while web
    threads, the warm-up and ``manage.py`` commands all call the partner at once, and an
    insert is atomic where a cache ``incr`` on the database cache is not.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    endpoint = models.CharField(max_length=40, db_index=True)  # "oauth", "device", "app", "user", "invoices", ...
    status = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "partner request"

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.endpoint} {self.status}"
