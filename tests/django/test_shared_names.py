"""A client and a pipeline with the same name.

``"partner": {"AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}}`` is the natural way
to write a client authenticated by its pipeline: it used to die with ``RecursionError``.
Any other name shared by a client and a pipeline is E032, since commands and warm-up
would act on two different tokens under one name.
"""

from __future__ import annotations

from typing import Any

import pytest

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.testing import PROTECTED_PATH, StubTokenEndpoint
from requestforge_django.tokens.pipeline_manager import PipelineTokenManager
from tests.django.settings_factory import requestforge_setting
from tests.django.test_settings_checks import ids, reported

pytestmark = pytest.mark.django_db(databases=[])


def same_named(server: StubTokenEndpoint, cache: str) -> dict[str, Any]:
    setting = requestforge_setting(server, cache)
    setting["CLIENTS"]["partner"] = {"BASE_URL": server.url, "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}}
    return setting


def test_client_authenticated_by_its_namesake_pipeline_works(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> None:
    settings.REQUESTFORGE = same_named(token_server, redis_cache)
    response = get_client("partner").get(PROTECTED_PATH)
    assert response.status_code == 200
    manager = get_token_manager("partner")
    assert isinstance(manager, PipelineTokenManager)
    assert manager.pipeline is get_pipeline("partner")
    # The other client on the same pipeline shares that one token source.
    assert get_token_manager("partner-api") is manager


def test_the_namesake_case_passes_the_checks(token_server: StubTokenEndpoint) -> None:
    assert "requestforge.E032" not in ids(same_named(token_server, "default"))


def test_e032_an_oauth_client_and_a_pipeline_with_one_name(token_server: StubTokenEndpoint) -> None:
    setting = requestforge_setting(token_server, "default")
    setting["CLIENTS"]["partner"] = setting["CLIENTS"].pop("billing")
    message = reported(setting, "requestforge.E032", '["CLIENTS"]["partner"]', "also the name of a pipeline")
    assert 'PIPELINE": "partner"' in (message.hint or "")


def test_e032_a_client_using_another_pipeline_under_a_pipeline_name(token_server: StubTokenEndpoint) -> None:
    setting = requestforge_setting(token_server, "default")
    setting["PIPELINES"]["other"] = setting["PIPELINES"]["partner"]
    setting["CLIENTS"]["partner"] = {"BASE_URL": token_server.url, "AUTH": {"TYPE": "pipeline", "PIPELINE": "other"}}
    reported(setting, "requestforge.E032", '["CLIENTS"]["partner"]')
