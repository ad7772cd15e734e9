"""System checks (``manage.py check``) for the ``REQUESTFORGE`` setting.

The rules live in :mod:`requestforge_django.setting`; this module only turns its
:class:`~requestforge_django.setting.Problem` values into Django ``Error`` and
``Warning`` messages, so the admin (which shows the same problems on its forms) and
``manage.py check`` can never disagree. Ids and fixes are listed in ``docs/checks.md``.

Registered under the tag ``requestforge`` by :func:`requestforge_django.checks.register_checks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core import checks

from ..setting.problems import Problem
from ..setting.validate import validate_settings

__all__ = ["check_settings", "to_check_message"]


def to_check_message(problem: Problem) -> checks.CheckMessage:
    """The Django ``Error``/``Warning`` for ``problem``; ``obj`` names the client or pipeline."""
    cls = checks.Error if problem.is_error else checks.Warning
    if problem.client is not None:
        obj = f'REQUESTFORGE client "{problem.client}"'
    elif problem.pipeline is not None:
        obj = f'REQUESTFORGE pipeline "{problem.pipeline}"'
    else:
        obj = "REQUESTFORGE"
    return cls(problem.message, hint=problem.hint, obj=obj, id=problem.id)


def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Validate ``settings.REQUESTFORGE`` (and the cache it names); never raises."""
    from django.conf import settings

    return [to_check_message(problem) for problem in validate_settings(getattr(settings, "REQUESTFORGE", {}))]
