"""The numbers and formats the deployment, clients and admin docs state are the ones the code has.

* docs/deployment.md: a token entry on django-redis is a pickled dict (not JSON, so
  ``redis-cli GET`` shows pickle bytes), listed by ``--scan --pattern ':1:<KEY_PREFIX>:*'``,
  and it expires 30 s after its token (``SingleFlightTokenCache``'s ``storage_grace``;
  the docs used to say "a few seconds after").
* docs/clients.md and docs/admin.md: a change reaches another process on its first
  lookup ``GENERATION_CHECK_INTERVAL`` (0.5 s) after its previous read (the pages used to
  say "about half a second" and "about a second").
"""

from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import responses
from django.core.cache import caches
from django.test import override_settings

from requestforge_django import registry as registry_module
from requestforge_django.registry import GENERATION_CHECK_INTERVAL, generation_key, get_token_manager, registry
from requestforge_django.tokens.single_flight import SingleFlightTokenCache

DOCS = Path(__file__).resolve().parents[2] / "docs"
TOKEN_URL = "https://auth.example.com/token"
LIFETIME = 600


def storage_grace() -> float:
    return float(inspect.signature(SingleFlightTokenCache).parameters["storage_grace"].default)


def test_the_docs_state_the_grace_and_the_poll_interval_of_the_code() -> None:
    deployment = (DOCS / "deployment.md").read_text()
    assert storage_grace() == 30.0
    assert f"An entry expires **{storage_grace():g} s after its token** (`storage_grace`" in deployment
    assert "a few seconds after" not in deployment
    assert "`redis-cli GET` shows pickle bytes, not JSON" in deployment
    for page in ("clients.md", "admin.md"):
        text = " ".join((DOCS / page).read_text().split())
        assert f"at least {GENERATION_CHECK_INTERVAL:g} s (`registry.GENERATION_CHECK_INTERVAL`)" in text, page
        assert f"within {GENERATION_CHECK_INTERVAL:g} s of the commit" in text, page
        assert "about a second" not in text and "about half a second" not in text, page


@pytest.mark.redis
def test_a_token_entry_is_a_pickled_dict_that_expires_30_s_after_the_token(redis_cache: str, redis_client: Any) -> None:
    setting = {
        "CACHE": redis_cache,
        "KEY_PREFIX": "shop-prod",
        "CLIENTS": {
            "billing": {
                "BASE_URL": "https://api.example.com",
                "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "id", "CLIENT_SECRET": "secret"},
            }
        },
    }
    with override_settings(REQUESTFORGE=setting), responses.RequestsMock() as partner:
        partner.post(TOKEN_URL, json={"access_token": "tok-abc", "token_type": "Bearer", "expires_in": LIFETIME})
        token = get_token_manager("billing").get_token()
    entries = [key for key in redis_client.scan_iter(match=":1:shop-prod:*") if b"status" not in key]  # the docs' --scan pattern
    assert len(entries) == 1, entries
    raw = redis_client.get(entries[0])
    with pytest.raises(ValueError):
        json.loads(raw)  # not JSON ...
    assert raw.startswith(b"\x80")  # ... but pickle, with the access token legible in the bytes
    assert b"tok-abc" in raw
    data = pickle.loads(raw)
    assert data["access_token"] == "tok-abc" and data["expires_at"] == token.expires_at.isoformat()
    # Redis drops the entry storage_grace (30 s) after the token expires: TTL = time left + 30 s.
    ttl = redis_client.pttl(entries[0]) / 1000
    left = token.seconds_left()
    assert left is not None and left + storage_grace() - 1 <= ttl <= left + storage_grace() + 0.1, (ttl, left)


def test_another_process_is_seen_on_the_first_lookup_one_interval_after_the_previous_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """What clients.md and admin.md say: no rebuild before the interval, a rebuild at the first lookup after it."""
    now = [1000.0]
    monkeypatch.setattr(registry_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    with override_settings(REQUESTFORGE={"CLIENTS": {"plain": {"BASE_URL": "https://plain.example.com"}}}):
        first = registry.definitions()
        # Another process saves a definition: it writes a new generation value in the shared cache.
        spec = registry_module.requestforge_settings.spec
        caches[spec.cache].set(generation_key(spec), "changed-elsewhere", timeout=None)
        now[0] += GENERATION_CHECK_INTERVAL - 0.01
        assert registry.definitions() is first  # not read again yet
        now[0] += 0.01
        assert registry.definitions().generation == "changed-elsewhere"  # read and rebuilt on this lookup
