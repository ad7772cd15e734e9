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
echo "==> Installing requestforge_django[redis,celery,crypto] and the dev tools into ${VIRTUAL_ENV}"
venv_pip -q -e ".[redis,celery,crypto]" --group dev

"$VENV_PY" -m ruff check .

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

"$VENV_PY" -m pytest "$@"
