#!/usr/bin/env bash
# End-to-end stage: the pipeline on the local five-node cluster (scripts/e2e.sh --up), the
# way production runs it: success and failure paths, the UI in headless Chromium, and the
# faults (worker SIGKILL, scheduler stop, Redis restart, triggerer kill, concurrent boot).
# One cluster serves the whole module; pytest's fixture stops it, and the trap below stops
# pytest and any cluster it left behind however we exit.
# Ports are checked by scripts/e2e.sh and the stand-in test, each naming the one in use.
# Extra arguments go to pytest (e.g. -k ui, -x).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ -x "$VENV_DIR/bin/python" ] || die "no test venv at $VENV_DIR (run scripts/setup-python.sh)"
command -v chromium >/dev/null || die "Chromium is required by the UI check (run scripts/setup-system.sh)"

SECONDS=0
E2E_WORK_RECORD=$(mktemp)
export E2E_WORK_RECORD
setsid "$VENV_DIR/bin/python" -m pytest -c config/pytest.ini __tests__/e2e "$@" &
pytest_pid=$!
# pytest's fixture stops its cluster; if pytest was killed first, its clusters are stopped here
stop_tests() {
  local work
  kill -- "-$pytest_pid" 2>/dev/null || true
  while read -r work; do
    if [ -d "$work" ]; then bash scripts/e2e.sh --down "$work" || true; fi
  done <"$E2E_WORK_RECORD"
  rm -f "$E2E_WORK_RECORD"
}
trap stop_tests EXIT INT TERM
status=0
wait "$pytest_pid" || status=$?
[ "$status" -eq 0 ] || die "e2e tests failed (exit $status) after ${SECONDS}s"
log "e2e tests passed in ${SECONDS}s"
