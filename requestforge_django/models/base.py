"""What every admin-edited model shares: the name rule, the active/timestamps fields, and how a raw settings dict is filled."""

from __future__ import annotations

import copy
import re
from typing import Any

from django.core.validators import RegexValidator
from django.db import models

#: Same rule as client and pipeline names (``requestforge.E008``): names end up in cache keys.
name_validator = RegexValidator(
    re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "Use letters, digits, '_', '.' and '-', starting with a letter or digit.",
)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (dict, list, tuple)) and not value)


def put(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw[key]`` unless ``value`` is empty; invalid values pass through for validation to report."""
    if not is_empty(value):
        raw[key] = copy.deepcopy(value)


class AdminEditable(models.Model):
    """Fields every admin-edited row has."""

    is_active = models.BooleanField(default=True, help_text="Inactive entries are ignored, as if they did not exist.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
