"""The per-process memory of recently read tokens in front of a shared storage."""

from __future__ import annotations

from requestforge_django.tokens import TokenManager
from tests.tokens.fakes import FakeClock, FakeProvider, ReadCountingStorage, run_now


def two_processes(local_ttl: float = 1.0):
    clock = FakeClock()
    storage = ReadCountingStorage()  # shared by the two managers, as Redis by two processes
    provider = FakeProvider(clock)
    first = TokenManager(provider, storage, clock=clock, local_ttl=local_ttl, refresh_ahead=60, run_renewal=run_now)
    second = TokenManager(provider, storage, clock=clock, local_ttl=local_ttl, refresh_ahead=60, run_renewal=run_now)
    return clock, storage, provider, first, second


def test_hits_within_local_ttl_do_not_read_the_shared_storage():
    clock, storage, _provider, first, _second = two_processes()
    token = first.get_token()
    reads = storage.reads
    for _ in range(100):
        assert first.get_token() is token
    assert storage.reads == reads
    clock.advance(1.5)
    assert first.get_token() == token
    assert storage.reads == reads + 1  # re-read once the memory is older than local_ttl


def test_invalidation_in_another_process_is_seen_after_local_ttl():
    clock, _storage, provider, first, second = two_processes()
    original = first.get_token()
    assert second.get_token() == original
    first.invalidate_token()
    assert second.get_token() == original  # still remembered for up to local_ttl
    clock.advance(1.01)
    replacement = second.get_token()
    assert replacement != original
    assert provider.fetch_calls == 2
    assert first.get_token() == replacement  # one refetch, shared by both processes
    assert provider.fetch_calls == 2


def test_a_rejected_token_is_replaced_at_once_despite_the_memory():
    _clock, _storage, provider, first, second = two_processes()
    original = first.get_token()
    assert second.get_token() == original
    replacement = first.force_refresh()  # e.g. process one saw a 401 first
    assert second.force_refresh(rejected=original) == replacement  # picks up the stored one, no fetch
    assert second.get_token() == replacement  # and remembers the replacement, not the rejected token
    assert provider.fetch_calls == 2


def test_local_ttl_zero_reads_the_storage_every_time():
    _clock, storage, _provider, first, _second = two_processes(local_ttl=0)
    first.get_token()
    reads = storage.reads
    first.get_token()
    first.get_token()
    assert storage.reads == reads + 2


def test_a_token_due_for_refresh_ahead_is_not_served_from_memory():
    clock, _storage, provider, first, _second = two_processes()
    first.get_token()
    clock.advance(3600 - 30)  # inside the 60 s refresh-ahead window
    renewed = first.get_token()
    assert provider.fetch_calls == 2
    assert renewed.access_token == "tok-2"
