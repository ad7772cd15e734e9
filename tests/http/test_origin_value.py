"""``Origin`` keeps its hash for the per-call set lookups, and never carries it to another process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

from requestforge_django.http.secrets import Origin


def test_equal_origins_hash_alike_and_meet_in_sets() -> None:
    origin = Origin.of("https://API.example.com./v1")
    assert origin == Origin("https", "api.example.com", 443)
    assert {Origin("https", "api.example.com", 443): "found"}[origin] == "found"
    assert Origin("https", "api.example.com", 8443) not in {origin}


def test_an_origin_unpickled_in_another_process_is_found_in_its_sets() -> None:
    # String hashes differ between processes (PYTHONHASHSEED): a hash carried in the pickle would
    # make the unpickled origin miss in every set there, and a credential check would refuse it.
    code = (
        "import pickle, sys; from requestforge_django.http.secrets import Origin; "
        "origin = pickle.loads(sys.stdin.buffer.read()); "
        "print(origin in {Origin('https', 'api.example.com', 443)})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(Origin("https", "api.example.com", 443)), capture_output=True, env=env, check=True
    )
    assert result.stdout.strip() == b"True"
