#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh Debian machine:
# installs the servers the tests start (redis-server, Chromium for the admin's browser
# test), creates the project's virtualenv (.venv, see scripts/lib/venv.sh) with the
# package, its extras and the dev tools, then runs ruff, a strict build of the
# documentation site and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
. scripts/lib/venv.sh

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The admin's end-to-end test drives Debian's Chromium (Playwright never downloads a browser here).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "==> Installing ${need_apt[*]} with apt-get"
    _as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

use_venv "$ROOT"
echo "==> Installing requestforge_django[redis,celery,crypto,async,jwt] and the dev tools into ${VIRTUAL_ENV}"
venv_pip -q -e ".[redis,celery,crypto,async,jwt]" --group dev

step() { echo "==> $*"; }

step "ruff check, ruff format --check (ruff pinned in the lint group)"
"$VENV_PY" -m ruff check .
"$VENV_PY" -m ruff format --check .

step "mypy (strict on http/ and tokens/, django-stubs for the Django layer; see [tool.mypy])"
"$VENV_PY" -m mypy

step "makemigrations --check (the models and the migrations agree)"
"$VENV_PY" -m django makemigrations --check --dry-run --settings=tests.settings requestforge_django

# The documentation site, strict: a broken link or anchor, or a page missing from the nav,
# fails the run. (Not --quiet: it would hide the very warnings strict mode counts.)
docs_dir="$(mktemp -d)"
trap 'rm -rf "$docs_dir"' EXIT
if ! docs_log="$("$VENV_PY" -m mkdocs build --strict --site-dir "$docs_dir" 2>&1)"; then
    echo "$docs_log" >&2
    echo "The documentation site does not build (mkdocs build --strict)." >&2
    exit 1
fi
echo "docs: mkdocs build --strict OK"

step "pytest on $("$VENV_PY" -c 'import django, sys; print(f"Python {sys.version.split()[0]}, Django {django.get_version()}")') (the whole suite)"
"$VENV_PY" -m pytest "$@"

# The other supported Django LTS and Pythons (noxfile.py): the suite without the tests
# marked slow, on the oldest pair and the newest. `nox` alone runs every pair the machine has.
# The two sessions run side by side (each in its own virtualenv, with its own servers on
# free ports) to keep the whole run within ten minutes on two cores; each prints its log
# when done. Skipped when pytest arguments are given, or with SKIP_NOX=1.
if [ -z "${SKIP_NOX:-}" ] && [ $# -eq 0 ]; then
    step "nox: the non-slow suite on Django 4.2 / Python 3.10 and Django 5.2 / Python 3.13"
    logs="$(mktemp -d)"
    sessions=("tests-3.10(django='4.2')" "tests-3.13(django='5.2')")
    pids=()
    for session in "${sessions[@]}"; do
        "$VENV_PY" -m nox -s "$session" >"$logs/${#pids[@]}.log" 2>&1 &
        pids+=("$!")
    done
    failed=0
    for index in "${!pids[@]}"; do
        status=0
        wait "${pids[$index]}" || status=$?
        echo "--- nox -s \"${sessions[$index]}\" (exit $status)"
        grep -E "^(Django |nox > Session|[0-9]+ (passed|failed)|FAILED|ERROR)" "$logs/$index.log" || true
        if [ "$status" -ne 0 ]; then
            cat "$logs/$index.log"
            failed=1
        fi
    done
    rm -rf "$logs"
    [ "$failed" -eq 0 ] || { echo "A nox session failed (its log is above)." >&2; exit 1; }
fi
