"""A final pipeline token the API refused is never served again when its replacement cannot be fetched.

``TokenManager`` deletes a rejected token whose refresh fails (the next call fetches
instead of sending it again); ``PipelineTokenManager.force_refresh`` kept it, so every
later call sent the refused token, got a 401 and tried the refresh again.
"""

from __future__ import annotations

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import InMemoryTokenStorage, PipelineTokenManager, TokenFetchPipeline

from .fakes import FakeClock, FakeStep, auth_error


def manager_over(clock: FakeClock, device: FakeStep, user: FakeStep, refresh_from: str | None) -> PipelineTokenManager:
    pipeline = TokenFetchPipeline([device, user], storage=InMemoryTokenStorage(), clock=clock, local_ttl=0)
    return PipelineTokenManager(pipeline, refresh_from_step=refresh_from)


@pytest.mark.parametrize("refresh_from", ["user", "device", None])
def test_a_rejected_final_token_is_dropped_when_its_refresh_fails(refresh_from: str | None) -> None:
    clock = FakeClock()
    device, user = FakeStep("device", clock), FakeStep("user", clock, depends_on=("device",))
    manager = manager_over(clock, device, user, refresh_from)
    rejected = manager.get_token()
    assert rejected.access_token == "user-1"

    user.fail_with = device.fail_with = auth_error("token endpoint down")
    with pytest.raises(AuthenticationException):
        manager.force_refresh(rejected=rejected)
    assert manager.peek_token() is None  # not served to the next call

    user.fail_with = device.fail_with = None
    assert manager.get_token().access_token != "user-1"


def test_a_failed_refresh_without_a_rejected_token_keeps_the_valid_one() -> None:
    clock = FakeClock()
    device, user = FakeStep("device", clock), FakeStep("user", clock, depends_on=("device",))
    manager = manager_over(clock, device, user, "user")
    current = manager.get_token()
    user.fail_with = auth_error("token endpoint down")
    with pytest.raises(AuthenticationException):
        manager.force_refresh()
    assert manager.peek_token() == current  # stale-if-error: nobody said it was refused
