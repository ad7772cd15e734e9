"""A cheap PBKDF2 for the test authorization server: real hashing, test-suite speed."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """DOT hashes client secrets with the default hasher; verifying one must not cost half a second."""

    algorithm = "pbkdf2_sha256_fast"
    iterations = 1000
