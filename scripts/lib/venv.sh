# Sourced by scripts/demo.sh and scripts/test.sh: a project-local virtualenv, never the system Python.
#
# Debian's own python3 refuses `pip install` (PEP 668, "externally-managed-environment"),
# and installing into any shared interpreter would mix our pins with the machine's. So
# both commands create `.venv/` (or $VENV_DIR) with the first Python 3.10+ they find
# ($PYTHON, then python3, python3.13 ... python3.10) and install into that. An install
# that fails stops the script with pip's own output, not a filtered line.
#
# After `use_venv`, $VENV_PY is the virtualenv's python.

_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 && _python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "No Python 3.10 or newer found (tried \$PYTHON, python3, python3.13 ... python3.10)." >&2
    echo "On Debian/Ubuntu: sudo apt-get install python3 python3-venv" >&2
    return 1
}

_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# pip, quiet on success; on failure its whole output and a non-zero exit.
venv_pip() {
    local log
    log="$(mktemp)"
    if ! "$VENV_PY" -m pip install --disable-pip-version-check "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "pip install $* failed (output above)." >&2
        return 1
    fi
    rm -f "$log"
}

use_venv() {
    local root="$1" python venv
    venv="${VENV_DIR:-$root/.venv}"
    python="$(find_python)" || return 1
    if [ ! -x "$venv/bin/python" ] || ! _python_ok "$venv/bin/python"; then
        echo "==> Creating the virtualenv $venv with $python ($("$python" --version 2>&1))"
        rm -rf "$venv"
        if ! "$python" -m venv "$venv" 2>/dev/null; then
            # Debian ships venv's ensurepip separately (python3-venv / python3.X-venv).
            local version
            version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            echo "==> $python cannot create virtualenvs; installing python${version}-venv with apt-get"
            _as_root apt-get update -qq
            DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq "python${version}-venv" >/dev/null
            rm -rf "$venv"
            "$python" -m venv "$venv"
        fi
    fi
    VENV_PY="$venv/bin/python"
    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
    # Dependency groups (PEP 735) need pip 25.1 or newer.
    if ! "$VENV_PY" -c 'import sys; from pip import __version__ as v; sys.exit(0 if tuple(map(int, v.split(".")[:2])) >= (25, 1) else 1)' 2>/dev/null; then
        venv_pip -q --upgrade "pip>=25.1"
    fi
}

