"""TokenManager over the single-flight cache, with fake providers and a fake clock (no sleeps)."""

from __future__ import annotations

import threading

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import (
    CallbackTokenObserver,
    InMemoryTokenStorage,
    SingleFlightTokenCache,
    TokenManager,
    TokenObserver,
)

from .fakes import WAIT, CountingStorage, FakeProvider, RecordingObserver, auth_error, run_now, run_threads


@pytest.fixture
def provider(clock) -> FakeProvider:
    return FakeProvider(clock)


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def manager(provider, clock, observer) -> TokenManager:
    return TokenManager(provider, refresh_ahead=60, clock=clock, observer=observer, run_renewal=run_now)


def in_thread(fn, *, timeout: float = WAIT):
    """Run ``fn`` on a thread and return its result; fail (instead of hanging) if it blocks."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "call blocked"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]


class TestBasics:
    def test_fetches_once_then_serves_from_cache(self, manager, provider):
        first = manager.get_token()
        assert first.access_token == "tok-1"
        assert manager.get_token() is not None
        assert manager.get_token().access_token == "tok-1"
        assert provider.fetch_calls == 1

    def test_default_cache_key_and_service_name(self, manager):
        assert manager.cache_key == "token:fake"
        assert manager.service_name == "fake"

    def test_custom_cache_key(self, provider, clock):
        storage = InMemoryTokenStorage()
        TokenManager(provider, storage, cache_key="custom", clock=clock).get_token()
        assert storage.keys() == ["custom"]

    def test_stores_with_ttl_until_expiry_plus_grace(self, provider, clock):
        storage = CountingStorage()
        TokenManager(provider, storage, clock=clock).get_token()
        assert 3600 < storage.ttls["token:fake"] <= 3600 + 60

    def test_never_expiring_token_stored_without_ttl(self, clock):
        storage = CountingStorage()
        TokenManager(FakeProvider(clock, lifetime=None), storage, clock=clock).get_token()
        assert storage.ttls["token:fake"] is None

    def test_expired_token_is_refetched(self, manager, provider, clock):
        manager.get_token()
        clock.advance(3600)
        assert manager.get_token().access_token == "tok-2"
        assert provider.fetch_calls == 2

    def test_observer_hears_obtained(self, manager, observer):
        manager.get_token()
        assert observer.events == [("obtained", "token:fake", "tok-1")]

    def test_callback_observer(self, provider, clock):
        seen = []
        TokenManager(
            provider, clock=clock, observer=CallbackTokenObserver(on_obtained=lambda k, t: seen.append((k, t.access_token)))
        ).get_token()
        assert seen == [("token:fake", "tok-1")]

    def test_failing_observer_does_not_break_token_flow(self, provider, clock):
        class Broken(TokenObserver):
            def on_obtained(self, key, token):
                raise RuntimeError("observer bug")

        assert TokenManager(provider, clock=clock, observer=Broken()).get_token().access_token == "tok-1"

    def test_invalidate(self, manager, provider, observer):
        manager.get_token()
        manager.invalidate_token()
        assert manager.peek_token() is None
        assert provider.invalidate_calls == 1
        assert ("invalidated", "token:fake", None) in observer.events
        assert manager.get_token().access_token == "tok-2"

    def test_provider_bug_becomes_authentication_exception(self, manager, provider):
        provider.fail_with = KeyError("boom")
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        assert info.value.service_name == "fake"
        assert issubclass(info.value.original.exc_type, KeyError)

    def test_provider_returning_garbage(self, provider, clock):
        class Bad(FakeProvider):
            def fetch_token(self):
                return "tok"

        with pytest.raises(AuthenticationException, match="not TokenData"):
            TokenManager(Bad(clock), clock=clock).get_token()

    def test_rejects_non_provider(self):
        with pytest.raises(TypeError):
            TokenManager(object())  # type: ignore[arg-type]


class TestSingleFlight:
    def test_100_threads_cold_cache_fetch_once(self, provider, clock):
        storage = CountingStorage(signal_after_gets=100)
        manager = TokenManager(provider, storage, clock=clock)
        provider.gate = threading.Event()

        def open_gate_when_everyone_looked() -> None:
            # Keep the leader inside the fetch until (almost) every thread has missed the cache.
            provider.entered.wait(WAIT)
            storage.reached.wait(WAIT)
            provider.gate.set()

        opener = threading.Thread(target=open_gate_when_everyone_looked)
        opener.start()
        results, errors = run_threads(100, lambda i: manager.get_token())
        opener.join(WAIT)
        assert errors == []
        assert provider.fetch_calls == 1
        assert {t.access_token for t in results} == {"tok-1"}

    def test_failed_fetch_is_shared_not_repeated_per_thread(self, provider, clock, observer):
        storage = CountingStorage(signal_after_gets=20)
        manager = TokenManager(provider, storage, clock=clock, observer=observer)
        provider.gate = threading.Event()
        provider.fail_with = auth_error("token endpoint down")

        def opener() -> None:
            provider.entered.wait(WAIT)
            storage.reached.wait(WAIT)
            provider.gate.set()

        t = threading.Thread(target=opener)
        t.start()
        _, errors = run_threads(20, lambda i: manager.get_token())
        t.join(WAIT)
        assert len(errors) == 20
        assert all(isinstance(e, AuthenticationException) for e in errors)
        # Threads that joined the failing flight got its error instead of queueing for their own fetch.
        assert provider.fetch_calls < 5
        assert manager.peek_token() is None


class TestRefreshAhead:
    def test_one_background_renewal_while_every_caller_gets_the_valid_token_at_once(self, provider, clock):
        renewed = threading.Event()
        manager = TokenManager(
            provider, refresh_ahead=60, clock=clock, observer=CallbackTokenObserver(on_obtained=lambda key, token: renewed.set())
        )
        assert manager.get_token().access_token == "tok-1"
        renewed.clear()
        clock.advance(3600 - 30)  # inside the 60 s window, still valid
        provider.gate = threading.Event()
        # The caller that notices the window does not wait either: the renewal runs in the background.
        assert manager.get_token().access_token == "tok-1"
        assert provider.entered.wait(WAIT)

        # The renewal is stuck in the provider; everybody gets tok-1 at once.
        others, errors = run_threads(20, lambda i: manager.get_token())
        assert errors == []
        assert {t.access_token for t in others} == {"tok-1"}
        assert in_thread(manager.get_token).access_token == "tok-1"
        assert provider.fetch_calls == 2  # the initial fetch and the one renewal

        provider.gate.set()
        assert renewed.wait(WAIT)
        assert manager.get_token().access_token == "tok-2"
        assert provider.fetch_calls == 2

    def test_next_lifetime_is_renewed_ahead_too(self, clock):
        """Regression: a successful renewal suppressed renewing the next token for refresh_retry_interval (5 s).

        With 4 s tokens the next window opened inside those 5 s, so the token expired
        and callers blocked on a fetch (seen as slow calls and 401s in the rollover benchmark).
        """
        provider = FakeProvider(clock, lifetime=4)
        manager = TokenManager(provider, refresh_ahead=2, clock=clock, run_renewal=run_now)
        assert manager.get_token().access_token == "tok-1"
        clock.advance(2.5)  # 1.5 s left: due
        assert manager.get_token().access_token == "tok-2"
        clock.advance(2.5)  # tok-2 has 1.5 s left: due again, 2.5 s after the last renewal
        assert manager.get_token().access_token == "tok-3"
        assert provider.fetch_calls == 3

    def test_window_is_at_most_half_the_lifetime(self, clock):
        provider = FakeProvider(clock, lifetime=30)
        manager = TokenManager(provider, refresh_ahead=60, clock=clock, run_renewal=run_now)
        manager.get_token()
        clock.advance(10)
        manager.get_token()
        assert provider.fetch_calls == 1  # a 30 s token is not "due" from birth
        clock.advance(6)  # 14 s left < 15 s
        assert manager.get_token().access_token == "tok-2"

    def test_stale_if_error(self, manager, provider, clock, observer):
        manager.get_token()
        clock.advance(3600 - 30)
        provider.fail_with = auth_error("token endpoint down")
        served = manager.get_token()
        assert served.access_token == "tok-1"
        assert manager.peek_token().access_token == "tok-1"  # nothing deleted or overwritten
        errors = [e for e in observer.events if e[0] == "refresh_error"]
        assert len(errors) == 1
        assert errors[0][1] == "token:fake"
        assert isinstance(errors[0][2], AuthenticationException)

        # No hammering: the next attempt waits for the retry interval.
        manager.get_token()
        assert provider.fetch_calls == 2
        clock.advance(6)
        assert manager.get_token().access_token == "tok-1"
        assert provider.fetch_calls == 3

        # Once the token has expired there is nothing valid to serve: the caller gets the error.
        clock.advance(30)
        with pytest.raises(AuthenticationException, match="token endpoint down"):
            manager.get_token()

    def test_storage_trouble_while_renewing_serves_the_valid_token(self, provider, clock):
        class FlakyLockStorage(InMemoryTokenStorage):
            down = False

            def lock(self, key, timeout):
                if self.down:
                    raise RuntimeError("redis down")
                return None

        storage = FlakyLockStorage()
        manager = TokenManager(provider, storage, clock=clock)
        manager.get_token()
        storage.down = True
        clock.advance(3600 - 30)
        assert manager.get_token().access_token == "tok-1"
        assert provider.fetch_calls == 1

    def test_stale_if_error_logs_without_secrets(self, manager, provider, clock, caplog):
        manager.get_token()
        clock.advance(3600 - 30)
        provider.fail_with = auth_error("token endpoint down")
        with caplog.at_level("WARNING", logger="requestforge_django.tokens"):
            manager.get_token()
        assert "serving the cached token" in caplog.text
        assert "tok-1" not in caplog.text


class TestLeaseWait:
    def test_stuck_lease_gives_up_without_fetching(self, provider, clock):
        class StuckLease:
            def acquire(self, blocking=True, timeout=None):
                return False

            def release(self):
                raise AssertionError("never acquired, must not be released")

        class StuckStorage(InMemoryTokenStorage):
            def lock(self, key, timeout):
                return StuckLease()

        cache = SingleFlightTokenCache(StuckStorage(), lock_timeout=0.01, clock=clock, sleep=lambda s: None)
        with pytest.raises(AuthenticationException, match="waiting for another process") as info:
            cache.get("k", lambda current, reason: provider.fetch_token(), service_name="svc")
        assert info.value.service_name == "svc"
        assert provider.fetch_calls == 0


class TestRefreshGrant:
    @pytest.fixture
    def provider(self, clock):
        return FakeProvider(clock, refresh_tokens=True)

    def test_uses_refresh_grant_and_keeps_rotated_token(self, manager, provider, clock):
        assert manager.get_token().refresh_token == "rt-1"
        clock.advance(3600)
        second = manager.get_token()
        assert second.access_token == "refreshed-2"
        assert provider.refresh_calls == ["rt-1"]
        assert second.refresh_token == "rt-2"  # rotated
        clock.advance(3600)
        manager.get_token()
        assert provider.refresh_calls == ["rt-1", "rt-2"]
        assert provider.fetch_calls == 1

    def test_keeps_old_refresh_token_when_answer_has_none(self, manager, provider, clock):
        manager.get_token()
        provider.refresh_omits_refresh_token = True
        clock.advance(3600)
        token = manager.get_token()
        assert token.access_token == "refreshed-2"
        assert token.refresh_token == "rt-1"
        assert manager.peek_token().refresh_token == "rt-1"

    def test_falls_back_to_fetch_when_refresh_grant_fails(self, manager, provider, clock):
        manager.get_token()
        provider.refresh_fail_with = auth_error("invalid_grant")
        clock.advance(3600)
        token = manager.get_token()
        assert token.access_token == "tok-2"
        assert provider.refresh_calls == ["rt-1"]
        assert provider.fetch_calls == 2

    def test_refresh_ahead_uses_refresh_grant(self, manager, provider, clock):
        manager.get_token()
        clock.advance(3600 - 30)
        assert manager.get_token().access_token == "refreshed-2"


class TestForceRefresh:
    def test_replaces_current_token(self, manager, provider):
        manager.get_token()
        assert manager.force_refresh().access_token == "tok-2"
        assert manager.get_token().access_token == "tok-2"
        assert provider.invalidate_calls == 1

    def test_ten_concurrent_force_refreshes_fetch_once(self, provider, clock):
        storage = CountingStorage()
        manager = TokenManager(provider, storage, clock=clock)
        manager.get_token()
        provider.gate = threading.Event()
        provider.entered.clear()
        # "At once": every call reads the token it wants replaced before the refresh completes
        # (10 reads + the leader's double-check). A call made after a completed refresh fetches again.
        storage.gets, storage.signal_after_gets = 0, 11

        def opener() -> None:
            provider.entered.wait(WAIT)
            storage.reached.wait(WAIT)
            provider.gate.set()

        t = threading.Thread(target=opener)
        t.start()
        results, errors = run_threads(10, lambda i: manager.force_refresh())
        t.join(WAIT)
        assert errors == []
        assert {r.access_token for r in results} == {"tok-2"}
        assert provider.fetch_calls == 2

    def test_a_later_force_refresh_fetches_again(self, manager, provider):
        manager.get_token()
        manager.force_refresh()
        assert manager.force_refresh().access_token == "tok-3"

    def test_failure_keeps_current_token_and_raises(self, manager, provider):
        manager.get_token()
        provider.fail_with = auth_error()
        with pytest.raises(AuthenticationException):
            manager.force_refresh()
        assert manager.peek_token().access_token == "tok-1"

    def test_rejected_token_already_replaced_is_not_refetched(self, manager, provider):
        old = manager.get_token()
        new = manager.force_refresh(rejected=old)
        assert manager.force_refresh(rejected=old) == new
        assert provider.fetch_calls == 2

    def test_rejected_token_is_removed_when_refresh_fails(self, manager, provider, observer):
        old = manager.get_token()
        provider.fail_with = auth_error()
        with pytest.raises(AuthenticationException):
            manager.force_refresh(rejected=old)
        assert manager.peek_token() is None
        assert ("invalidated", "token:fake", None) in observer.events
