"""What every check of the package shares: the tag, the raw setting, and which databases a check may read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["CHECK_TAG", "raw_setting", "usable_aliases"]

#: ``manage.py check --tag requestforge`` runs the checks of this package alone.
CHECK_TAG = "requestforge"


def raw_setting() -> Any:
    from ..setting.conf import requestforge_settings

    return requestforge_settings.raw


def usable_aliases(model: Any, databases: Iterable[str] | None) -> Iterator[str]:
    """The aliases among ``databases`` that ``model`` is read from and whose table exists."""
    from django.db import connections, router

    if not databases:
        return
    alias = router.db_for_read(model)
    if alias not in databases:
        return
    if model._meta.db_table in connections[alias].introspection.table_names():
        yield alias
