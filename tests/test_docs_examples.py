"""Every ```python block of README.md and docs/*.md runs here: one test per block, id ``file:line``.

A stale example (a missing import, a renamed function, a setting the checks reject)
fails this module. A block runs as it is unless an HTML comment on the line right before
its opening fence says otherwise:

``<!-- docs-example: continues -->``
    Runs in the namespace of the previous block of the same file (which runs first).
``<!-- docs-example: settings -->``
    A Django settings module, executed in a fresh namespace (``import os`` included, as a
    real ``settings.py`` needs it). Its ``REQUESTFORGE`` must pass
    ``requestforge_django.setting.validate_settings`` (what ``manage.py check`` runs)
    without a single error or warning, and every client and pipeline in it must build;
    every ``"requestforge_django...."`` string in it must import. Its ``REQUESTFORGE`` and
    ``CACHES`` (django-redis aliases pointed at the test Redis) then apply to the
    following blocks of the same file.
``<!-- docs-example: settings client -->`` / ``settings auth`` / ``settings step``
    A part of ``REQUESTFORGE``: ``"name": {...}`` entries of ``CLIENTS``, an
    ``"AUTH": {...}`` (or one per line when the block lists alternatives), or one pipeline
    step. Evaluated with ``os`` imported, placed into the docs' setting, validated like a
    settings block, then used: each client sends one request, the step's pipeline runs.
``<!-- docs-example: pytest -->`` / ``<!-- docs-example: conftest -->``
    pytest tests (and fixtures: each fixture no test of the block uses gets a generated
    test requesting it) run with ``python -m pytest`` in a subprocess, in a minimal user
    project whose ``conftest.py`` is the file's ``conftest`` blocks (or just the plugin).
``<!-- docs-example: fragment -->``
    Not run, but must compile (as a module, or as the inside of a ``{...}`` when it is
    entries of a dict). Kept for the few blocks that cannot run here; each says why in
    the doc or in the list below.

Blocks starting with ``>>>`` are doctests: their shown output must match. A block whose
first line is ``# package/module.py`` is executed as that module, installed in
``sys.modules`` for the blocks after it in its file (a custom fetcher a later settings
block names, receivers). After a runnable block, its ``test_*`` functions without
parameters are called and its ``unittest.TestCase`` classes are run.

The prepared environment (tests/support/docs_examples.py): every ``os.environ["NAME"]``
is set; ``REQUESTFORGE`` defines the ``billing`` and ``partner-api`` clients and the
``partner`` pipeline the docs call by name; ``responses`` answers every non-loopback URL
(token URLs and paths containing "token" with a bearer token, the rest ``200 {}``) while
the package's own ``StubTokenEndpoint`` on 127.0.0.1 is reached for real; django-redis
settings use the session Redis of tests/conftest.py; the test database is migrated.

The fragments are listed in :data:`FRAGMENTS` with the reason each cannot run; a new one
must be added there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.docs_examples import (
    REPO_ROOT,
    Block,
    DocsEnvironment,
    DocsExampleError,
    PytestRun,
    collect_blocks,
    doc_files,
    parse_blocks,
    run_pytest_blocks,
)

BLOCKS = collect_blocks()

#: The blocks that are only compiled, by file and first line of code, and why they cannot run here.
FRAGMENTS = {
    ("docs/settings.md", "REQUESTFORGE = {"): "an overview of the top-level keys, with {...} placeholders",
    ("docs/clients.md", '"billing": {'): "a placeholder AUTH and the reader's own hook class (myapp.hooks.AuditHook)",
    ("docs/signals.md", "from django.dispatch import receiver"): "prometheus_client is not a dependency of the package",
    ("docs/celery.md", "from django_celery_beat.models import IntervalSchedule, PeriodicTask"): "django-celery-beat is not a dependency",
}

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def pytest_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], PytestRun]:
    """The pytest run of a doc file's ``pytest`` and ``conftest`` blocks, made once per session and file."""
    runs: dict[str, PytestRun] = {}

    def run(path: str) -> PytestRun:
        if path not in runs:
            blocks = [block for block in BLOCKS if block.path == path and block.kind in ("pytest", "conftest")]
            runs[path] = run_pytest_blocks(blocks, tmp_path_factory.mktemp(Path(path).stem))
        return runs[path]

    return run


@pytest.fixture
def docs_env(
    settings: object,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: str,
    redis_client: object,
    pytest_runs: Callable[[str], PytestRun],
) -> Iterator[DocsEnvironment]:
    """A prepared environment for one block; ``redis_client`` flushes the session Redis first."""
    environment = DocsEnvironment(BLOCKS, settings=settings, monkeypatch=monkeypatch, redis_url=redis_server, pytest_run=pytest_runs)
    environment.start()
    try:
        yield environment
    finally:
        environment.stop()


def test_every_python_block_of_the_docs_is_collected() -> None:
    fences = sum(path.read_text(encoding="utf-8").count("```python") for path in doc_files())
    assert len(BLOCKS) == fences
    assert len(BLOCKS) >= 41
    assert {block.path for block in BLOCKS} >= {"README.md", "docs/quickstart.md", "docs/testing.md"}


def test_only_the_listed_blocks_are_fragments() -> None:
    fragments = {(block.path, block.code.strip().split("\n")[0]) for block in BLOCKS if block.kind == "fragment"}
    assert fragments == set(FRAGMENTS)


def test_the_builder_table_of_http_md_lists_every_builder_method() -> None:
    from requestforge_django.http import HttpClientConfigBuilder

    rows = [line for line in (REPO_ROOT / "docs" / "http.md").read_text(encoding="utf-8").split("\n") if line.startswith("| `with_")]
    documented = {name for row in rows for name in re.findall(r"`(with_\w+)", row.split(" | ")[0])}
    members = vars(HttpClientConfigBuilder)
    covered = {members[name] for name in documented if name in members}  # an alias (with_verify_ssl) shares its function
    assert {name for name in members if name.startswith("with_") and members[name] not in covered} == set()
    assert documented <= set(members)  # and the table names no method that is gone


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_docs_example(block: Block, docs_env: DocsEnvironment) -> None:
    docs_env.run(block)


# -- the harness catches what it is for --------------------------------------------------------------


def one_block(markdown: str) -> list[Block]:
    return parse_blocks(markdown, "docs/example.md")


def test_a_missing_import_fails(docs_env: DocsEnvironment) -> None:
    (block,) = one_block("```python\nclient = HttpClient(HttpClientConfigBuilder().build())\n```\n")
    with pytest.raises(NameError, match="HttpClient"):
        docs_env.run(block)


def test_tracebacks_point_at_the_doc_line(docs_env: DocsEnvironment) -> None:
    (block,) = one_block("text\n\n```python\nimport os\n\nos.environ['DOCS_EXAMPLE_UNSET_VARIABLE']\n```\n")
    with pytest.raises(KeyError) as caught:
        docs_env.run(block)
    frames = [entry for entry in caught.traceback if str(entry.path) == "docs/example.md"]
    assert frames and frames[-1].lineno + 1 == 6  # pytest's lineno is 0-based


def test_a_settings_block_the_checks_reject_fails_with_their_ids(docs_env: DocsEnvironment) -> None:
    setting = 'REQUESTFORGE = {"CLIENTS": {"x": {"BASE_URL": "ftp://x", "RETRY": {"STRATEGY": "never"}}}}'
    text = f"<!-- docs-example: settings -->\n```python\n{setting}\n```\n"
    (block,) = one_block(text)
    with pytest.raises(DocsExampleError, match=r"requestforge\.E\d{3}") as caught:
        docs_env.run(block)
    assert "BASE_URL" in str(caught.value) and "STRATEGY" in str(caught.value)


def test_a_doctest_with_stale_output_fails(docs_env: DocsEnvironment) -> None:
    (block,) = one_block("```python\n>>> sorted({'b': 1, 'a': 2})\n['b', 'a']\n```\n")
    with pytest.raises(DocsExampleError, match="Expected"):
        docs_env.run(block)


def test_continues_runs_the_previous_block_first(docs_env: DocsEnvironment) -> None:
    blocks = one_block(
        "```python\nvalue = 41\n```\n\n<!-- docs-example: continues -->\n```python\nassert value + 1 == 42\nanswer = value + 1\n```\n"
    )
    docs_env.blocks = blocks
    docs_env.run(blocks[1])  # alone: the first block ran in its namespace


def test_a_fragment_is_only_compiled(docs_env: DocsEnvironment) -> None:
    fragment = one_block('<!-- docs-example: fragment -->\n```python\n"billing": {"BASE_URL": unknown_name},\n```\n')[0]
    docs_env.run(fragment)  # compiles as a dict entry; unknown_name is never evaluated
    broken = one_block("<!-- docs-example: fragment -->\n```python\ndef broken(:\n```\n")[0]
    with pytest.raises(SyntaxError):
        docs_env.run(broken)


def test_markers_are_checked() -> None:
    assert one_block("Write `<!-- docs-example: fragment -->` before a fence.\n") == []  # prose may name a marker
    with pytest.raises(DocsExampleError, match="unknown docs-example kind"):
        one_block("<!-- docs-example: fragmnet -->\n```python\nx = 1\n```\n")
    with pytest.raises(DocsExampleError, match="right before"):
        one_block("<!-- docs-example: fragment -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(DocsExampleError, match="needs a runnable block"):
        one_block("<!-- docs-example: continues -->\n```python\nx = 1\n```\n")


def test_test_functions_and_test_cases_a_block_defines_are_run(docs_env: DocsEnvironment) -> None:
    (function,) = one_block("```python\ndef test_it():\n    raise RuntimeError('the test ran')\n```\n")
    with pytest.raises(RuntimeError, match="the test ran"):
        docs_env.run(function)
    text = "```python\nimport unittest\n\n\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertEqual(1, 2)\n```\n"
    with pytest.raises(DocsExampleError, match="T ran 1 tests"):
        docs_env.run(one_block(text)[0])


def test_failures_captured_by_request_many_fail_the_example(docs_env: DocsEnvironment) -> None:
    text = '```python\nfrom requestforge_django import get_client\n\nresults = get_client("billing").request_many([...])\n```\n'
    with pytest.raises(DocsExampleError, match="results holds captured failures"):
        docs_env.run(one_block(text)[0])


def test_a_header_the_wire_cannot_carry_fails_the_example(docs_env: DocsEnvironment) -> None:
    text = (
        "```python\nfrom requestforge_django.http import HttpClient, HttpClientConfigBuilder\n\n"
        'config = HttpClientConfigBuilder().with_base_url("https://billing.example.com").with_bearer_token("\u2026").build()\n'
        'HttpClient(config).get("/invoices/42")\n```\n'
    )
    with pytest.raises(Exception, match="cannot be encoded"):
        docs_env.run(one_block(text)[0])
    assert docs_env.http.problems == ["GET billing.example.com/invoices/42: header Authorization is not ASCII"]


def test_a_module_block_is_importable_by_later_blocks_and_extended_by_its_namesakes(docs_env: DocsEnvironment) -> None:
    blocks = one_block(
        "```python\n# docsapp/things.py\nVALUE = 1\n```\n\n"
        "```python\n# docsapp/__init__.py\nfrom .things import VALUE\n```\n\n"
        "```python\n# docsapp/things.py\nMORE = VALUE + 1\n```\n\n"
        "```python\nfrom docsapp.things import MORE, VALUE\n\nassert (VALUE, MORE) == (1, 2)\n```\n"
    )
    docs_env.blocks = blocks
    docs_env.run(blocks[3])
    assert blocks[1].is_package and blocks[1].module_name == "docsapp" and blocks[0].module_name == "docsapp.things"


def test_unmocked_hosts_never_reach_the_network_and_token_urls_get_tokens(docs_env: DocsEnvironment) -> None:
    import requests

    token = requests.post("https://auth.example.com/oauth/token", data={"grant_type": "client_credentials"}, timeout=5).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600 and token["access_token"]
    assert requests.get("https://billing.example.com/v1/invoices/42", timeout=5).json() == {}
    assert docs_env.http.requests == [
        ("POST", "https://auth.example.com/oauth/token"),
        ("GET", "https://billing.example.com/v1/invoices/42"),
    ]
