"""The app's tables dropped for the length of a test: the database as it is before ``migrate``.

For the checks and the registry, which must stay quiet (and let ``migrate`` run) while the
tables do not exist yet. Use inside ``@pytest.mark.django_db(transaction=True)``: DDL is
not rolled back with a test's transaction, so the tables are re-created on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def without_app_tables() -> Iterator[None]:
    from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition

    step_model = PipelineDefinition.steps.rel.related_model
    dependents_first = (ClientDefinition, step_model, PipelineDefinition, Credential)
    with connection.schema_editor() as editor:
        for model in dependents_first:
            editor.delete_model(model)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            for model in reversed(dependents_first):
                editor.create_model(model)
