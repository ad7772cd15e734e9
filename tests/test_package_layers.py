"""The Django layer's themed packages import one way (docs/index.md, "Layers").

``http`` <- ``tokens`` <- ``setting`` <- ``shared`` <- ``registry`` <- ``operations`` <-
``admin``, the commands and the tasks. A module may import its own package and any
package to its left; never one to its right. Checked on the source (every ``import``
and ``from ... import``, module level or inside functions), so a lazy import that
climbs the layers is caught too.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import requestforge_django

ROOT = Path(requestforge_django.__file__).parent

#: Package -> the packages (or top-level modules) of the app it must never import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "http": frozenset({"tokens", "setting", "shared", "registry", "operations", "admin", "checks", "models", "management"}),
    "tokens": frozenset({"setting", "shared", "registry", "operations", "admin", "checks", "models", "management"}),
    "setting": frozenset({"shared", "registry", "operations", "admin", "checks", "management", "fencing", "receivers"}),
    "shared": frozenset({"registry", "operations", "admin", "checks", "management", "receivers"}),
    "registry": frozenset({"operations", "admin", "checks", "management"}),
    "checks": frozenset({"operations", "admin", "management"}),
}


def imported_app_modules(path: Path) -> set[str]:
    """The first component below ``requestforge_django`` of everything ``path`` imports from the app."""
    package = path.relative_to(ROOT).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
                if not parts and node.level:  # "from . import x" at the top level
                    parts = [alias.name for alias in node.names]
            elif node.module and node.module.startswith("requestforge_django."):
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("requestforge_django."):
                    found.add(alias.name.split(".")[1])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_to_its_left(package: str) -> None:
    violations = {
        str(path.relative_to(ROOT)): sorted(imported_app_modules(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {name: bad for name, bad in violations.items() if bad} == {}


def test_every_module_of_the_django_layer_is_small() -> None:
    """One concept per module: about 450 lines at most (the single-flight algorithm excepted)."""
    exempt = {"tokens/single_flight.py"}
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in ROOT.rglob("*.py")
        if "migrations" not in path.parts and str(path.relative_to(ROOT)) not in exempt
    }
    assert {name: lines for name, lines in sizes.items() if lines > 500} == {}


OLD_PATHS = {
    "requestforge_django.validation": ("requestforge_django.setting", "validate_settings"),
    "requestforge_django.specs": ("requestforge_django.setting.specs", "ClientSpec"),
    "requestforge_django.conf": ("requestforge_django.setting.conf", "requestforge_settings"),
    "requestforge_django.cache": ("requestforge_django.shared", "DjangoCacheTokenStorage"),
    "requestforge_django.token_events": ("requestforge_django.shared.status_records", "SignalTokenObserver"),
    "requestforge_django.shared_breaker": ("requestforge_django.shared.breaker", "CacheCircuitBreaker"),
    "requestforge_django.shared_rate_limit": ("requestforge_django.shared.rate_limit", "CacheRateLimiter"),
    "requestforge_django.checks_encryption": ("requestforge_django.checks", "check_encryption_keys"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_an_old_module_path_still_works_for_a_release_and_says_where_it_went(old: str) -> None:
    new, name = OLD_PATHS[old]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the first import (maybe this one): checked on reload below
        module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.reload(module)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_the_library_itself_imports_no_old_path() -> None:
    code_paths = [p for p in ROOT.rglob("*.py") if "migrations" not in p.parts and p.stem not in {m.rsplit(".", 1)[1] for m in OLD_PATHS}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stale = {str(p.relative_to(ROOT)): sorted(imported_app_modules(p) & {m.rsplit(".", 1)[1] for m in OLD_PATHS}) for p in code_paths}
    assert {name: bad for name, bad in stale.items() if bad} == {}
