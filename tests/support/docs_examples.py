"""Collects and runs the Python code blocks of ``README.md`` and ``docs/*.md`` (see tests/test_docs_examples.py).

The marker convention is documented in the test module and in ``docs/index.md``. This
module holds the parser (:func:`parse_blocks`, :func:`collect_blocks`) and the prepared
environment a block runs in (:class:`DocsEnvironment`): environment variables for every
``os.environ[...]`` the docs read, a ``REQUESTFORGE`` setting defining the clients and
the pipeline the docs call, an HTTP mock answering the partner hosts the docs name
(``billing.example.com``, ``auth.partner.com``...), the test Redis for django-redis
settings, and a pytest run in a subprocess for the blocks that are pytest tests.
"""

from __future__ import annotations

import ast
import copy
import doctest
import inspect
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import types
import unittest
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import responses

from tests.support.django_caches import redis_cache_config

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The files whose ```python blocks are examples, relative to the repository.
DOC_GLOBS = ("README.md", "docs/*.md")

#: Marker kinds; ``run`` is the default (no marker).
KINDS = ("run", "fragment", "continues", "settings", "pytest", "conftest")
#: Where a ``settings`` block goes: the whole settings module (None), or one part of ``REQUESTFORGE``.
SETTINGS_PLACES = (None, "client", "auth", "step")

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")
_FENCE_CLOSE = re.compile(r"^[ \t]*```[ \t]*$")
_MARKER = re.compile(r"^[ \t]*<!--\s*docs-example:\s*(?P<kind>[\w-]+)(?:\s+(?P<place>[\w-]+))?\s*-->[ \t]*$")
_ANY_MARKER = re.compile(r"^[ \t]*<!--.*docs-example")
_MODULE_LINE = re.compile(r"^#\s*(?P<path>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)+)\.py\s*$")
_ENVIRON = re.compile(r"""os\.environ\[\s*["'](?P<name>\w+)["']\s*\]""")
_DOTTED = re.compile(r"^requestforge_django(?:\.\w+)+$")

#: A fixed, tests-only Fernet key (the one of tests/settings.py) and a second one, for ENCRYPTION_KEYS.
TEST_ENCRYPTION_KEY = "pmIUQnmBvqvM_VrE6S4HdmWZNuhK8fKOEEIIQHMSrqk="
SECOND_ENCRYPTION_KEY = "0zhJxM3bKx4cC5o3Yp0v3qkQ0QW1hS2H6J3m4hx8n2E="

#: Values of the environment variables the docs read; any other ``os.environ["NAME"]`` gets ``docs-example-name``.
ENVIRONMENT = {
    "REQUESTFORGE_KEY": TEST_ENCRYPTION_KEY,
    "REQUESTFORGE_KEYS": f"{TEST_ENCRYPTION_KEY},{SECOND_ENCRYPTION_KEY}",
    "PARTNER_HMAC_KEY": "docs-example-hmac-key",
}

#: The token and API hosts of the docs' default setting.
_PARTNER_AUTH = "https://auth.partner.com/v1"

#: What a block runs with unless a ``settings`` block earlier in its file replaced it: the
#: clients and the pipeline the docs call by name (``billing``, ``partner-api``, ``partner``).
DOCS_REQUESTFORGE: dict[str, Any] = {
    "KEY_PREFIX": "docs-examples",
    "ENCRYPTION_KEYS": [TEST_ENCRYPTION_KEY],
    "CLIENTS": {
        "billing": {
            "BASE_URL": "https://billing.example.com/v1",
            "AUTH": {
                "TYPE": "client_credentials",
                "TOKEN_URL": "https://auth.example.com/oauth/token",
                "CLIENT_ID": "shop",
                "CLIENT_SECRET": "docs-example-secret",
            },
        },
        "partner-api": {"BASE_URL": "https://api.partner.com", "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
    },
    "PIPELINES": {
        "partner": {
            "REFRESH_FROM_STEP": "user_token",
            "STEPS": [
                {
                    "NAME": "device_token",
                    "FETCHER": "header",
                    "URL": f"{_PARTNER_AUTH}/device/register",
                    "TOKEN_HEADER": "X-Device-Token",
                    "TOKEN_TYPE": "Device",
                },
                {
                    "NAME": "app_token",
                    "URL": f"{_PARTNER_AUTH}/app/token",
                    "HEADERS": {"X-Device-Token": "{device_token}"},
                    "DEPENDS_ON": ["device_token"],
                },
                {
                    "NAME": "user_token",
                    "URL": f"{_PARTNER_AUTH}/user/token",
                    "HEADERS": {"X-App-Token": "{app_token}"},
                    "DEPENDS_ON": ["app_token"],
                },
            ],
        },
    },
}

#: ``BASE_URL`` of the client an ``auth`` settings block is tried on.
AUTH_BASE_URL = "https://api.example.com"
#: Name of the pipeline a ``step`` settings block is tried in.
STEP_PIPELINE = "docs-step"

#: The settings module of the user project the ``pytest`` blocks run in.
PYTEST_SETTINGS = """\
SECRET_KEY = "docs-examples"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "requestforge_django"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""
#: The conftest of that project when the doc file has no ``conftest`` block.
DEFAULT_CONFTEST = 'pytest_plugins = ["requestforge_django.pytest_plugin"]\n'


class DocsExampleError(AssertionError):
    """A docs example failed, or the docs break the marker convention."""


# -- collecting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One ```python block: where it is, its (dedented) code and its marker."""

    path: str  # relative to the repository, e.g. "docs/testing.md"
    line: int  # 1-based line of the opening fence
    code: str
    kind: str = "run"
    place: str | None = None
    index: int = 0  # position among the Python blocks of its file

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        return self.code.lstrip().startswith(">>>")

    @property
    def module_name(self) -> str | None:
        """``myapp.fetchers`` for a block whose first line is ``# myapp/fetchers.py``."""
        first = self.code.lstrip("\n").split("\n", 1)[0]
        match = _MODULE_LINE.match(first.strip())
        if match is None:
            return None
        return match.group("path").replace("/", ".").removesuffix(".__init__")

    @property
    def is_package(self) -> bool:
        """Headed ``# package/__init__.py``."""
        return self.module_name is not None and "/__init__.py" in self.code.lstrip("\n").split("\n", 1)[0]

    def compile(self, source: str | None = None, mode: str = "exec", *, first_line: int | None = None) -> types.CodeType:
        """Compile ``source`` (default: the code) so that tracebacks show the line numbers of the doc file."""
        start = self.line + 1 if first_line is None else first_line
        return compile("\n" * (start - 1) + (self.code if source is None else source), self.path, mode, dont_inherit=True)


def parse_blocks(text: str, path: str) -> list[Block]:
    """The ```python blocks of one Markdown text, with the marker on the line before each."""
    lines = text.split("\n")
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        opening = _FENCE_OPEN.match(lines[number])
        if opening is None:
            if _ANY_MARKER.match(lines[number]) and not _MARKER.match(lines[number]):
                raise DocsExampleError(f"{path}:{number + 1}: malformed docs-example marker {lines[number].strip()!r}")
            if _MARKER.match(lines[number]) and (number + 1 >= len(lines) or not _FENCE_OPEN.match(lines[number + 1])):
                raise DocsExampleError(f"{path}:{number + 1}: a docs-example marker must be right before a ```python fence")
            number += 1
            continue
        end = number + 1
        while end < len(lines) and not _FENCE_CLOSE.match(lines[end]):
            end += 1
        if end >= len(lines):
            raise DocsExampleError(f"{path}:{number + 1}: ```python block is never closed")
        kind, place = "run", None
        marker = _MARKER.match(lines[number - 1]) if number else None
        if marker is not None:
            kind, place = marker.group("kind"), marker.group("place")
            if kind not in KINDS:
                raise DocsExampleError(f"{path}:{number}: unknown docs-example kind {kind!r} (known: {', '.join(KINDS)})")
            if (kind == "settings" and place not in SETTINGS_PLACES) or (kind != "settings" and place is not None):
                raise DocsExampleError(f"{path}:{number}: unknown place {place!r} for docs-example {kind}")
        code = textwrap.dedent("\n".join(lines[number + 1 : end])) + "\n"
        blocks.append(Block(path, number + 1, code, kind, place, len(blocks)))
        number = end + 1
    for block in blocks:
        if block.kind == "continues" and (block.index == 0 or blocks[block.index - 1].kind not in ("run", "continues")):
            raise DocsExampleError(f"{block.id}: 'continues' needs a runnable block before it in the same file")
    return blocks


def doc_files(root: Path = REPO_ROOT) -> list[Path]:
    files: list[Path] = []
    for pattern in DOC_GLOBS:
        files.extend(sorted(root.glob(pattern)))
    return files


def collect_blocks(root: Path = REPO_ROOT) -> list[Block]:
    """Every ```python block of README.md and docs/*.md, in file order."""
    blocks: list[Block] = []
    for path in doc_files(root):
        blocks.extend(parse_blocks(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix()))
    return blocks


def environment_names(blocks: list[Block]) -> set[str]:
    """Every ``os.environ["NAME"]`` the blocks read."""
    return {match.group("name") for block in blocks for match in _ENVIRON.finditer(block.code)}


# -- the HTTP mock -----------------------------------------------------------------------------------


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key), item
            yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


class PartnerMock:
    """``responses`` answering every non-loopback URL; loopback (the stub token endpoint) passes through.

    A token URL of the current ``REQUESTFORGE`` (``TOKEN_URL``, a step's ``URL``) or any path
    containing ``token`` answers a one-hour bearer token; every answer carries each
    ``TOKEN_HEADER`` the setting names; other URLs answer ``200 {}``.
    """

    LOOPBACK = re.compile(r"^https?://(?:127\.0\.0\.1|localhost)(?::\d+)?(?:/|$)")
    REMOTE = re.compile(r"^https?://(?!(?:127\.0\.0\.1|localhost)(?::\d+)?(?:/|$)).+")
    METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

    def __init__(self) -> None:
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.mock.add_passthru(self.LOOPBACK)
        for method in self.METHODS:
            self.mock.add_callback(method, self.REMOTE, callback=self._answer)
        self.requests: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self._issued = 0

    def __enter__(self) -> PartnerMock:
        self.mock.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.mock.stop()
        self.mock.reset()

    @staticmethod
    def _current_setting() -> Any:
        from django.conf import settings

        return getattr(settings, "REQUESTFORGE", {})

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        url = str(request.url)
        split = urlsplit(url)
        self.requests.append((str(request.method), f"{split.scheme}://{split.netloc}{split.path}"))
        for name, value in request.headers.items():
            if isinstance(value, str) and not value.isascii():
                # What http.client would refuse on a real socket (it encodes header values as latin-1, and a
                # non-ASCII token is wrong anyway): the mock must not accept what the wire cannot carry.
                self.problems.append(f"{request.method} {split.netloc}{split.path}: header {name} is not ASCII")
                raise UnicodeEncodeError("ascii", value, 0, len(value), f"header {name} cannot be sent")
        setting = self._current_setting()
        token_urls = {str(value).split("?")[0] for key, value in _walk(setting) if key in ("TOKEN_URL", "URL")}
        headers = {"Content-Type": "application/json"}
        self._issued += 1
        token = f"docs-example-token-{self._issued}-{secrets.token_hex(4)}"
        for key, value in _walk(setting):
            if key == "TOKEN_HEADER" and isinstance(value, str):
                headers[value] = token
        if url.split("?")[0] in token_urls or "token" in split.path.lower():
            body: Any = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        else:
            body = {}
        return 200, headers, json.dumps(body)


# -- the pytest subprocess --------------------------------------------------------------------------


@dataclass
class PytestRun:
    """One ``python -m pytest`` run of the ``pytest`` blocks of a doc file, with their ``conftest`` blocks."""

    returncode: int
    output: str
    outcomes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # test module -> (test, outcome)

    def describe(self) -> str:
        return f"pytest exited with {self.returncode}:\n{self.output[-6000:]}"


def _fixture_names(tree: ast.Module) -> tuple[list[str], set[str]]:
    """(non-autouse fixtures defined, argument names requested by the tests) of a pytest block."""
    fixtures: list[str] = []
    requested: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if node.name.startswith("test"):
            requested.update(arg.arg for arg in node.args.args)
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call is not None else decorator
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name != "fixture":
                continue
            autouse = call is not None and any(
                kw.arg == "autouse" and isinstance(kw.value, ast.Constant) and kw.value.value for kw in call.keywords
            )
            if not autouse:
                fixtures.append(node.name)
            for arg in node.args.args:
                requested.add(arg.arg)
    return fixtures, requested


def pytest_module_name(block: Block) -> str:
    return "test_{}_{}".format(re.sub(r"\W", "_", Path(block.path).stem), block.line)


def pytest_module_source(block: Block) -> str:
    """The block, plus a test requesting each fixture it defines that none of its tests uses."""
    fixtures, requested = _fixture_names(ast.parse(block.code))
    extra = [
        f'\n\ndef test_docs_example_fixture_{name}({name}):\n    """Generated: fixture {name!r} of {block.id} sets up and tears down."""\n'
        for name in fixtures
        if name not in requested
    ]
    return block.code + "".join(extra)


def run_pytest_blocks(blocks: list[Block], directory: Path) -> PytestRun:
    """Write the file's ``conftest`` and ``pytest`` blocks into ``directory`` and run pytest there."""
    directory.mkdir(parents=True, exist_ok=True)
    conftests = [block.code for block in blocks if block.kind == "conftest"]
    (directory / "conftest.py").write_text("\n\n".join(conftests) if conftests else DEFAULT_CONFTEST, encoding="utf-8")
    (directory / "docs_settings.py").write_text(PYTEST_SETTINGS, encoding="utf-8")
    for block in blocks:
        if block.kind == "pytest":
            (directory / f"{pytest_module_name(block)}.py").write_text(pytest_module_source(block), encoding="utf-8")
    report = directory / "report.xml"
    environment = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS")}
    environment["PYTHONPATH"] = os.pathsep.join([str(directory), str(REPO_ROOT)])
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ds=docs_settings", "-q", f"--junitxml={report}"]
    command += ["--rootdir", str(directory), str(directory)]
    result = subprocess.run(command, cwd=directory, env=environment, capture_output=True, text=True, timeout=120)
    run = PytestRun(result.returncode, result.stdout + result.stderr)
    if report.exists():
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
            run.outcomes.setdefault(case.get("classname", ""), []).append((case.get("name", ""), outcome))
    return run


# -- the environment ---------------------------------------------------------------------------------


class DocsEnvironment:
    """Runs one block in a prepared Django environment (one instance per test).

    ``settings`` is pytest-django's fixture; ``redis_url`` is the session Redis (flushed),
    the ``default`` cache (django-redis, as in production); ``pytest_run`` returns the
    (cached) pytest run of a doc file.
    """

    def __init__(
        self,
        blocks: list[Block],
        *,
        settings: Any,
        monkeypatch: Any,
        redis_url: str,
        pytest_run: Callable[[str], PytestRun],
    ) -> None:
        self.blocks = blocks
        self.settings = settings
        self.monkeypatch = monkeypatch
        self.redis_url = redis_url
        self.pytest_run = pytest_run
        self.http = PartnerMock()
        self._modules: dict[str, types.ModuleType] = {}
        self._celery_state: tuple[Any, Any] | None = None

    # -- set-up -------------------------------------------------------------------------------------

    def start(self) -> None:
        from requestforge_django.testing import reset_requestforge

        for name in environment_names(self.blocks):
            self.monkeypatch.setenv(name, ENVIRONMENT.get(name, f"docs-example-{name.lower()}"))
        for name, value in ENVIRONMENT.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.setenv("REDIS_URL", self.redis_url)
        if "DJANGO_SETTINGS_MODULE" in os.environ:  # restored after the test, whatever a block (proj/celery.py) does to it
            self.monkeypatch.setenv("DJANGO_SETTINGS_MODULE", os.environ["DJANGO_SETTINGS_MODULE"])
        # Tokens in django-redis, as in production (a process-private cache is requestforge.W001).
        self.settings.CACHES = {**self.settings.CACHES, "default": redis_cache_config(self.redis_url)}
        self.settings.REQUESTFORGE = copy.deepcopy(DOCS_REQUESTFORGE)
        reset_requestforge()
        from celery import _state as celery_state

        # A docs block creating a Celery app makes it the current one: restore the suite's afterwards.
        self._celery_state = (celery_state.default_app, getattr(celery_state._tls, "current_app", None))
        self.http.__enter__()

    def stop(self) -> None:
        from requestforge_django.testing import reset_requestforge

        self.http.__exit__(None, None, None)
        reset_requestforge()
        if self._celery_state is not None:
            from celery import _state as celery_state

            celery_state.default_app, celery_state._tls.current_app = self._celery_state

    def _file_blocks(self, block: Block) -> list[Block]:
        return [other for other in self.blocks if other.path == block.path]

    # -- entry point --------------------------------------------------------------------------------

    def run(self, block: Block) -> None:
        if block.kind == "fragment":
            self.compile_fragment(block)
        elif block.kind in ("pytest", "conftest"):
            self.check_pytest(block)
        elif block.kind == "settings":
            self.prepare(block)
            if block.place is None:
                self.check_settings(block)
            else:
                self.check_settings_entry(block)
        elif block.is_doctest:
            self.prepare(block)
            self.run_doctest(block)
        else:
            self.prepare(block)
            namespace = self.execute(block)
            self.run_defined_tests(block, namespace)
            self.check_captured_failures(block, namespace)
        if self.http.problems:
            raise DocsExampleError(f"{block.id}: requests the network would refuse: {self.http.problems}")

    # -- prerequisites ------------------------------------------------------------------------------

    def prepare(self, block: Block) -> None:
        """Apply the file's last whole-settings block before ``block`` and install the modules defined before it."""
        earlier = [other for other in self._file_blocks(block) if other.index < block.index]
        settings_blocks = [other for other in earlier if other.kind == "settings" and other.place is None]
        if settings_blocks:
            self.apply_settings(self.settings_values(settings_blocks[-1]))
        for other in earlier:
            if other.kind in ("run", "continues") and other.module_name is not None:
                self.install_module(other)

    def _module(self, name: str, *, package: bool = False) -> types.ModuleType:
        """The module ``name`` this environment installed in ``sys.modules`` (with its parents), created empty at first."""
        module = self._modules.get(name)
        if module is None:
            parent, _, child = name.rpartition(".")
            module = types.ModuleType(name)
            module.__package__ = parent
            if parent:
                setattr(self._module(parent, package=True), child, module)
            self.monkeypatch.setitem(sys.modules, name, module)
            self._modules[name] = module
        if package and not hasattr(module, "__path__"):
            module.__path__ = []
            module.__package__ = name
        return module

    def install_module(self, block: Block) -> types.ModuleType:
        """Execute ``block`` in the module its first line names (``# myapp/fetchers.py``), for the test's duration.

        A later block headed by the same file adds to the module the earlier one filled.
        """
        name = block.module_name
        assert name is not None
        module = self._module(name, package=block.is_package)
        module.__file__ = block.path
        exec(block.compile(), module.__dict__)
        return module

    def execute(self, block: Block) -> dict[str, Any]:
        """Run ``block`` (after the chain of blocks it continues) and return its namespace."""
        file_blocks = self._file_blocks(block)
        chain = [block]
        while chain[0].kind == "continues":
            chain.insert(0, file_blocks[chain[0].index - 1])
        if chain[0].module_name is not None:
            namespace = self.install_module(chain[0]).__dict__
            chain = chain[1:]
        else:
            namespace = {"__name__": "docs_example_" + re.sub(r"\W", "_", f"{Path(block.path).stem}_{block.line}")}
        for part in chain:
            exec(part.compile(), namespace)
        return namespace

    # -- after running ------------------------------------------------------------------------------

    def run_defined_tests(self, block: Block, namespace: dict[str, Any]) -> None:
        """Call the ``test_*`` functions without parameters and run the ``unittest.TestCase`` classes ``block`` defined."""
        tree = ast.parse(block.code)
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        for name in sorted(defined):
            value = namespace.get(name)
            if isinstance(value, type) and issubclass(value, unittest.TestCase):
                result = unittest.TestResult()
                suite = unittest.defaultTestLoader.loadTestsFromTestCase(value)
                suite.run(result)
                problems = [text for _, text in result.errors + result.failures]
                if problems or not result.testsRun:
                    raise DocsExampleError(f"{block.id}: {name} ran {result.testsRun} tests:\n" + "\n".join(problems))
            elif name.startswith("test") and callable(value) and not inspect.signature(value).parameters:
                value()

    def check_captured_failures(self, block: Block, namespace: Mapping[str, Any]) -> None:
        """A list of results holding exceptions (``request_many`` captures failures in place) is a failed example."""
        for name, value in namespace.items():
            if isinstance(value, list) and any(isinstance(item, BaseException) for item in value):
                failures = sorted({repr(item) for item in value if isinstance(item, BaseException)})
                raise DocsExampleError(f"{block.id}: {name} holds captured failures: {failures[:3]}")

    # -- kinds --------------------------------------------------------------------------------------

    def compile_fragment(self, block: Block) -> None:
        """A fragment compiles as a module, or as the body of a dict display (an entry of a setting)."""
        try:
            block.compile()
        except SyntaxError as module_error:
            try:
                block.compile("{\n" + block.code + "}", "eval", first_line=block.line)
            except SyntaxError:
                raise module_error from None

    def run_doctest(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(block.code, {"__name__": "docs_doctest"}, block.id, block.path, block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        output: list[str] = []
        runner.run(test, out=output.append)
        if runner.failures:
            raise DocsExampleError("".join(output))

    def check_pytest(self, block: Block) -> None:
        run = self.pytest_run(block.path)
        if block.kind == "conftest":
            if run.returncode != 0 or not run.outcomes:
                raise DocsExampleError(f"{block.id}: the pytest run with this conftest failed; {run.describe()}")
            return
        cases = run.outcomes.get(pytest_module_name(block), [])
        failed = [f"{name}: {outcome}" for name, outcome in cases if outcome != "passed"]
        if not cases or failed:
            raise DocsExampleError(f"{block.id}: {failed or 'no test ran'}; {run.describe()}")

    # -- settings -----------------------------------------------------------------------------------

    def settings_values(self, block: Block) -> dict[str, Any]:
        """The upper-case names a whole-settings block defines (executed in a fresh namespace, as settings.py is)."""
        namespace: dict[str, Any] = {"__name__": "docs_settings"}
        exec(block.compile(), namespace)
        return {name: value for name, value in namespace.items() if name.isupper()}

    def apply_settings(self, values: Mapping[str, Any]) -> None:
        """Use a block's ``CACHES`` (django-redis aliases on the test Redis) and ``REQUESTFORGE`` from now on."""
        from requestforge_django.testing import reset_requestforge

        if "CACHES" in values:
            caches = copy.deepcopy(dict(values["CACHES"]))
            for config in caches.values():
                if "redis" in str(config.get("BACKEND", "")).lower():
                    config["LOCATION"] = self.redis_url
            self.settings.CACHES = {**self.settings.CACHES, **caches}
        if "REQUESTFORGE" in values:
            self.settings.REQUESTFORGE = copy.deepcopy(values["REQUESTFORGE"])
        reset_requestforge()

    def validate(self, block: Block, raw: Any, caches: Mapping[str, Any] | None = None) -> None:
        from requestforge_django.setting.validate import validate_settings

        problems = validate_settings(raw, caches=caches)
        if problems:
            listed = "\n".join(f"  {problem.id} {problem.key}: {problem.message}" for problem in problems)
            ids = ", ".join(sorted({problem.id for problem in problems}))
            raise DocsExampleError(f"{block.id}: REQUESTFORGE fails the settings checks ({ids}):\n{listed}")

    def check_settings(self, block: Block) -> None:
        """A settings module: its REQUESTFORGE passes validation and builds; every requestforge_django path imports."""
        from django.utils.module_loading import import_string

        from requestforge_django import get_client, get_pipeline

        values = self.settings_values(block)
        if not values:
            raise DocsExampleError(f"{block.id}: a settings block that defines no setting")
        for _, value in _walk(values):
            if isinstance(value, str) and _DOTTED.match(value):
                import_string(value)  # a renamed class or task in a settings example fails here
        if "REQUESTFORGE" not in values:
            return
        caches = values.get("CACHES")
        self.validate(block, values["REQUESTFORGE"], dict(caches) if caches is not None else None)
        self.apply_settings(values)
        for name in values["REQUESTFORGE"].get("CLIENTS", {}):
            get_client(name)
        for name in values["REQUESTFORGE"].get("PIPELINES", {}):
            get_pipeline(name)

    def check_settings_entry(self, block: Block) -> None:
        """A part of REQUESTFORGE, placed into the docs' setting, validated, then used."""
        from requestforge_django import get_client, get_pipeline

        namespace: dict[str, Any] = {"__name__": "docs_settings", "os": os}  # entries live in a settings.py that imports os
        raw = copy.deepcopy(DOCS_REQUESTFORGE)
        clients: list[str] = []
        if block.place == "client":
            entries = eval(block.compile("{\n" + block.code + "}", "eval", first_line=block.line), namespace)
            raw["CLIENTS"].update(entries)
            clients = list(entries)
        elif block.place == "auth":
            for number, auth in enumerate(self._auth_alternatives(block, namespace)):
                name = f"docs-auth-{number}"
                raw["CLIENTS"][name] = {"BASE_URL": AUTH_BASE_URL, "AUTH": auth}
                clients.append(name)
        else:
            step = eval(block.compile("(\n" + block.code + ")", "eval", first_line=block.line), namespace)
            raw["PIPELINES"][STEP_PIPELINE] = {"STEPS": [step]}
        self.validate(block, raw)
        self.apply_settings({"REQUESTFORGE": raw})
        for name in clients:
            if "CREDENTIAL" not in raw["CLIENTS"][name].get("AUTH", {}):  # a Credential row the environment does not have
                get_client(name).get("/").raise_for_status()
        if block.place == "step":
            get_pipeline(STEP_PIPELINE).execute()

    def _auth_alternatives(self, block: Block, namespace: dict[str, Any]) -> list[Any]:
        """``"AUTH": {...}``: one, or one per line when the block lists alternatives."""
        try:
            entries = [eval(block.compile("{\n" + block.code + "}", "eval", first_line=block.line), namespace)]
        except SyntaxError:
            entries = []
            for offset, text in enumerate(block.code.split("\n")):
                if text.strip():
                    line = block.line + 1 + offset
                    entries.append(eval(block.compile("{" + text + "\n}", "eval", first_line=line), namespace))
        auths = []
        for entry in entries:
            if set(entry) != {"AUTH"}:
                raise DocsExampleError(f'{block.id}: an "auth" settings block holds "AUTH": {{...}} entries, found {sorted(entry)}')
            auths.append(entry["AUTH"])
        return auths
