#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh Debian machine:
# installs the servers the tests start (redis-server) and the Python packages,
# then runs ruff, a strict build of the documentation site and pytest. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The admin's end-to-end test drives Debian's Chromium (Playwright never downloads a browser here).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -e "^WARNING: Running pip as" -e "is ignored: it is neither" || true

python3 -m ruff check .

# The documentation site, strict: a broken link or anchor, or a page missing from the nav,
# fails the run. (Not --quiet: it would hide the very warnings strict mode counts.)
docs_dir="$(mktemp -d)"
trap 'rm -rf "$docs_dir"' EXIT
if ! docs_log="$(python3 -m mkdocs build --strict --site-dir "$docs_dir" 2>&1)"; then
    echo "$docs_log" >&2
    echo "The documentation site does not build (mkdocs build --strict)." >&2
    exit 1
fi
echo "docs: mkdocs build --strict OK"

python3 -m pytest "$@"
