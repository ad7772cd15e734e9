"""The worked examples of ``docs/auth/*.md`` are valid settings that build.

Those pages sit below ``docs/``, outside what ``test_docs_examples.py`` collects (their
examples need real private keys, discovery documents and token-exchange answers, which
its environment does not provide), so they are checked here: every ``REQUESTFORGE = {...}``
block and every ``"AUTH": {...}`` block is evaluated with real keys in place of the
environment variables it reads, must pass ``validate_settings`` without a single error or
warning, and each client must build (token manager and client; building does no I/O).
Every other Python block must compile.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.test import override_settings

from requestforge_django import get_client, get_token_manager
from requestforge_django.setting.validate import validate_settings
from tests.support.docs_examples import REPO_ROOT, Block, parse_blocks

PAGES = sorted((REPO_ROOT / "docs" / "auth").glob("*.md"))
BLOCKS = [block for page in PAGES for block in parse_blocks(page.read_text(encoding="utf-8"), page.relative_to(REPO_ROOT).as_posix())]
CACHES = {"tokens": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}}
PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
)


class _Environ(dict[str, str]):
    """``os.environ`` of the examples: a PEM for every ``*_PRIVATE_KEY``, a long enough secret for the rest."""

    def __missing__(self, name: str) -> str:
        return PEM if name.endswith("PRIVATE_KEY") else f"docs-{name.lower()}-" + "x" * 32


def _setting(block: Block) -> dict[str, Any] | None:
    namespace: dict[str, Any] = {"os": SimpleNamespace(environ=_Environ())}
    code = block.code.strip()
    if code.startswith("REQUESTFORGE = {"):
        exec(compile(block.code, block.id, "exec"), namespace)
        setting: dict[str, Any] = namespace["REQUESTFORGE"]
        return setting
    if code.startswith('"AUTH": {'):
        auth = eval(compile("{" + block.code + "}", block.id, "eval"), namespace)["AUTH"]
        return {"CACHE": "tokens", "CLIENTS": {"example": {"BASE_URL": "https://api.example.com", "AUTH": auth}}}
    return None


def test_every_page_is_checked() -> None:
    names = {page.name for page in PAGES}
    assert {"overview.md", "client-assertions.md", "jwt-bearer.md", "token-exchange.md", "discovery.md"} <= names
    assert sum(_setting(block) is not None for block in BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_docs_auth_example(block: Block, settings: Any) -> None:
    setting = _setting(block)
    if setting is None:
        compile(block.code, block.id, "exec")
        return
    problems = validate_settings(setting, caches=CACHES)
    assert [str(problem) for problem in problems] == []
    with override_settings(REQUESTFORGE=setting, CACHES={**settings.CACHES, **CACHES}):
        for name, client in setting["CLIENTS"].items():
            assert get_token_manager(name) is not None
            assert get_client(name).config.base_url == client["BASE_URL"]


def test_the_pages_are_in_the_nav() -> None:
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"auth/{page.name}" in nav, page.name


def test_pages_link_back_from_the_reference() -> None:
    settings_page = (Path(REPO_ROOT) / "docs" / "settings.md").read_text(encoding="utf-8")
    assert "auth/overview.md" in settings_page
