#!/usr/bin/env bash
# The demo: sets up and runs example_project on a fresh machine, then serves it on
# http://127.0.0.1:8000/ until Ctrl-C.
#
#   bash scripts/demo.sh            install, migrate, create the demo admin and its entries, serve
#   bash scripts/demo.sh --check    the same, headless: two rounds of calls, then stop (exit 0/1)
#
# Environment: DEMO_PORT (8000), DEMO_DB_PATH (example_project/demo.sqlite3),
# REDIS_URL (tokens in Redis and Celery on a broker instead of the embedded defaults),
# DEMO_CHECK=1 (same as --check), DEMO_SKIP_INSTALL=1 (no virtualenv, no pip: use
# $PYTHON or python3 as it is, e.g. from the test suite, which has installed everything).
#
# It installs into the project's virtualenv (.venv, created with the first Python 3.10+
# found; see scripts/lib/venv.sh), never into the system Python, and only what the demo
# runs on: the package with its async, celery, crypto and redis extras.
#
# The partner APIs the demo calls are served by the demo server itself, so tokens are
# warmed (manage.py requestforge_warm) right after the server starts listening.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
. scripts/lib/venv.sh

check="${DEMO_CHECK:-0}"
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

if [ "${DEMO_SKIP_INSTALL:-0}" = "1" ]; then
    PY="$(find_python)"
else
    use_venv "$ROOT"
    echo "==> Installing requestforge_django[async,celery,crypto,redis] into ${VIRTUAL_ENV}"
    venv_pip -q -e ".[async,celery,crypto,redis]"
    PY="$VENV_PY"
fi

if [ "$check" = "1" ] && [ -z "${DEMO_PORT:-}" ]; then
    # A free port, so a check never collides with a demo already running on 8000.
    DEMO_PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
fi
export DEMO_PORT="${DEMO_PORT:-8000}"
export DJANGO_SETTINGS_MODULE=example_project.settings
export PYTHONUNBUFFERED=1
URL="http://127.0.0.1:${DEMO_PORT}"
cd "$ROOT/example_project"

manage() { "$PY" manage.py "$@"; }

echo "==> Preparing the database (${DEMO_DB_PATH:-example_project/demo.sqlite3}) and the cache tables"
manage migrate --noinput -v 0
manage createcachetable
manage check --fail-level ERROR
manage demo_admin

echo "==> Starting the server on ${URL}/"
# DEMO_WARM_THREAD: without a broker, the web process runs the token warm-up itself.
DEMO_WARM_THREAD=1 "$PY" manage.py runserver "127.0.0.1:${DEMO_PORT}" --noreload &
server=$!
stop_server() {
    if kill -0 "$server" 2>/dev/null; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

if ! "$PY" - "$URL" "$server" <<'EOF'
import os, sys, time, urllib.request
url, pid = sys.argv[1] + "/partner/stats", int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the server exited (is the port in use? set DEMO_PORT)")
    try:
        with urllib.request.urlopen(url, timeout=2):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"the server did not answer {url} within 60 s")
EOF
then
    echo "demo.sh: the server did not start" >&2
    exit 1
fi

echo "==> Fetching every token now (manage.py requestforge_warm)"
manage requestforge_warm

if [ "$check" = "1" ]; then
    echo "==> Check: two rounds of calls from another process (manage.py demo_calls)"
    manage demo_calls --rounds 2
    echo "==> Check: the demo page (calls made by the server itself)"
    "$PY" - "$URL" <<'EOF'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/?format=json", timeout=30) as response:
    page = json.load(response)
for call in page["calls"]:
    print(f"  {call['client']:<9} GET {call['path']:<14} {call['status']}")
if not page["ok"]:
    sys.exit("demo page: some calls failed")
with urllib.request.urlopen(sys.argv[1] + "/", timeout=30) as response:
    if b'data-ok="true"' not in response.read():
        sys.exit("demo page: the HTML page does not report success")
EOF
    stop_server
    echo "demo check passed"
    exit 0
fi

cat <<EOF

    The demo is running:  ${URL}/
    Admin:                ${URL}/admin/   (the login is printed above)
    Stop it with Ctrl-C.

EOF
wait "$server"
