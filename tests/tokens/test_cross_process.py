"""Two "processes": separate managers/pipelines (own in-process locks), one shared storage backend + lease.

Each side has its own storage object, token cache and provider, exactly like two
gunicorn workers; only :class:`SharedBackend` (standing in for Redis) is shared.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from requestforge_django.tokens import TokenFetchPipeline, TokenManager

from .fakes import WAIT, FakeClock, FakeProvider, FakeStep, SharedBackend, SharedLeaseStorage, run_now, run_threads


def two_managers(clock: FakeClock, **kw):
    backend = SharedBackend()
    providers = [FakeProvider(clock), FakeProvider(clock)]
    kw.setdefault("run_renewal", run_now)
    managers = [TokenManager(p, SharedLeaseStorage(backend), clock=clock, **kw) for p in providers]
    return backend, providers, managers


def test_many_threads_in_two_processes_fetch_once():
    clock = FakeClock()
    backend, providers, managers = two_managers(clock)
    for p in providers:
        p.gate = threading.Event()

    def opener():
        # Let the first leader fetch only once the other process is waiting on the lease.
        backend.contended.wait(WAIT)
        for p in providers:
            p.gate.set()

    t = threading.Thread(target=opener)
    t.start()
    results, errors = run_threads(40, lambda i: managers[i % 2].get_token())
    t.join(WAIT)
    assert errors == []
    assert providers[0].fetch_calls + providers[1].fetch_calls == 1
    assert len({r.access_token for r in results}) == 1
    assert backend.leases == {}  # released


def test_waiting_process_returns_the_token_as_soon_as_it_appears():
    clock = FakeClock()
    backend, (p_a, p_b), (m_a, m_b) = two_managers(clock)
    p_a.gate = threading.Event()
    got: dict[str, str] = {}
    a = threading.Thread(target=lambda: got.setdefault("a", m_a.get_token().access_token))
    a.start()
    assert p_a.entered.wait(WAIT)  # A holds the lease and is fetching
    b = threading.Thread(target=lambda: got.setdefault("b", m_b.get_token().access_token))
    b.start()
    assert backend.contended.wait(WAIT)  # B found the lease taken and is polling
    p_a.gate.set()
    a.join(WAIT)
    b.join(WAIT)
    assert got == {"a": "tok-1", "b": "tok-1"}
    assert p_b.fetch_calls == 0


def test_refresh_ahead_in_other_process_does_not_block():
    clock = FakeClock()
    backend, (p_a, p_b), (m_a, m_b) = two_managers(clock)
    m_a.get_token()
    clock.advance(3600 - 30)
    p_a.gate = threading.Event()
    p_a.entered.clear()
    renewer = threading.Thread(target=m_a.get_token)
    renewer.start()
    assert p_a.entered.wait(WAIT)
    # B sees a valid-but-due token; A holds the lease, so B serves the valid token at once.
    results, errors = run_threads(10, lambda i: m_b.get_token())
    assert errors == []
    assert {r.access_token for r in results} == {"tok-1"}
    assert p_b.fetch_calls == 0
    assert backend.failed_acquires >= 1
    p_a.gate.set()
    renewer.join(WAIT)
    assert m_b.get_token().access_token == "tok-2"


def test_rejected_token_replaced_in_other_process_is_reused():
    clock = FakeClock()
    _, (p_a, p_b), (m_a, m_b) = two_managers(clock)
    rejected = m_a.get_token()
    replacement = m_a.force_refresh(rejected=rejected)
    # B's request also got a 401 with the old token: it reuses A's replacement.
    assert m_b.force_refresh(rejected=rejected) == replacement
    assert p_a.fetch_calls + p_b.fetch_calls == 2


def test_pipeline_steps_fetched_once_across_processes():
    clock = FakeClock()
    backend = SharedBackend()

    def process():
        steps = [FakeStep("device", clock, ttl=timedelta(days=1)), FakeStep("app", clock, depends_on=("device",))]
        pipeline = TokenFetchPipeline(steps, SharedLeaseStorage(backend), cache_key_prefix="partner", clock=clock)
        return steps, pipeline

    (steps_a, pipe_a), (steps_b, pipe_b) = process(), process()
    for step in (*steps_a, *steps_b):
        step.gate = threading.Event()

    def opener():
        backend.contended.wait(WAIT)
        for step in (*steps_a, *steps_b):
            step.gate.set()

    t = threading.Thread(target=opener)
    t.start()
    results, errors = run_threads(30, lambda i: (pipe_a if i % 2 else pipe_b).execute())
    t.join(WAIT)
    assert errors == []
    assert steps_a[0].calls + steps_b[0].calls == 1
    assert steps_a[1].calls + steps_b[1].calls == 1
    assert len({r.access_token for r in results}) == 1

    # Invalidating in one process is seen by the other.
    pipe_a.invalidate_step("app")
    assert pipe_b.peek_step("app") is None
    assert pipe_b.peek_step("device") is not None


def test_tokens_cross_the_backend_as_plain_data():
    clock = FakeClock()
    backend, _, (m_a, m_b) = two_managers(clock)
    token = m_a.get_token()
    assert isinstance(backend.tokens["token:fake"], dict)
    assert m_b.peek_token() == token
