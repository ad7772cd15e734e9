"""The suite on every supported Django LTS and Python: ``nox`` (all) or ``nox -s "tests-3.10(django='4.2')"``.

The package claims Django 4.2 and 5.2 LTS on Python 3.10 and newer (pyproject's
classifiers); these sessions are what holds that claim. Each runs the suite without the
tests marked ``slow`` (multi-process, browser, real-server timing: ``scripts/test.sh``
runs those on the default Python and Django) in its own virtualenv. A Python the machine
does not have is skipped, and nox says so.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
DJANGO = {"4.2": "Django>=4.2,<5.0", "5.2": "Django>=5.2,<6.0"}


def interpreter(version: str) -> str:
    """The real executable of Python ``version``: on PATH, else among pyenv's installs; else ``version`` itself.

    pyenv's shims answer "command not found" for versions installed but not selected,
    and nox's discovery does not find every pyenv install, so the executable is asked
    for its own ``sys.executable``.
    """
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python{version}"), *sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))]
    for candidate in filter(None, candidates):
        found = subprocess.run([candidate, "-c", "import sys, venv; print(sys.executable)"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return version


def _suite_session(version: str) -> None:
    """Register ``tests-<version>(django=...)``: the interpreter is given by path, the name by version."""

    @nox.session(name=f"tests-{version}", python=interpreter(version))
    @nox.parametrize("django", list(DJANGO))
    def tests(session: nox.Session, django: str) -> None:
        session.install("pip>=25.1")  # dependency groups (PEP 735)
        session.install("-e", ".[redis,celery,crypto,async,jwt]", "--group", "test", DJANGO[django])
        session.run("python", "-c", "import django, sys; print('Django', django.get_version(), 'on Python', sys.version.split()[0])")
        session.run("python", "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider", *session.posargs)


for _version in PYTHONS:
    _suite_session(_version)
