#!/usr/bin/env bash
# Cluster benchmark (prints figures; asserts nothing): `npm run bench:cluster`.
#   1. the five-node Celery cluster (scripts/e2e.sh --up): the pipeline's trigger-to-done
#      time, then a 200-task no-op fan-out (e2e_fanout)
#   2. the same fan-out on one `standalone` node (LocalExecutor), the baseline
# Each figure comes from the REST API (run start/end, task queued_when/start_date). Both
# clusters run on this one machine, so the figures compare the executors on equal hardware;
# they say nothing about AWS latency.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "no test venv at $VENV_DIR (run scripts/setup-python.sh)"
RESULTS=$(mktemp -d)
WORK=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then bash scripts/e2e.sh --down "$WORK" >&2 || true; fi
  rm -rf "$RESULTS"
}
trap cleanup EXIT

up() {
  WORK=$(bash scripts/e2e.sh --up --layout "$1" | tail -n 1)
  [ -f "$WORK/cluster.env" ] || die "scripts/e2e.sh --up --layout $1 did not start a cluster"
}
down() {
  bash scripts/e2e.sh --down "$WORK" >&2
  WORK=""
}

log "bench: the Celery cluster (api-1, scheduler-1/2, worker-1/2)"
up cluster
"$PY" __tests__/e2e/e2e_cluster.py run --work "$WORK" --input __tests__/e2e/fixtures/Mall_Customers.csv \
  --output "$RESULTS/pipeline-output" | tail -n 1 >"$RESULTS/pipeline.json"
"$PY" __tests__/e2e/e2e_cluster.py fanout --work "$WORK" | tail -n 1 >"$RESULTS/fanout-celery.json"
down

log "bench: the standalone node (LocalExecutor)"
up standalone
"$PY" __tests__/e2e/e2e_cluster.py fanout --work "$WORK" | tail -n 1 >"$RESULTS/fanout-standalone.json"
down

"$PY" - "$RESULTS" <<'PYEOF'
import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
pipeline = json.loads((results / "pipeline.json").read_text())
celery = json.loads((results / "fanout-celery.json").read_text())
local = json.loads((results / "fanout-standalone.json").read_text())
print(f"pipeline trigger-to-done: {pipeline['seconds']} s (dag_1 {pipeline['dag_1_state']}, {pipeline['rows']} rows)")
print(f"{'fan-out of 200 no-op tasks':32} {'tasks/s':>8} {'run s':>7} {'queued->running p50 s':>22} {'p95 s':>7}")
for name, r in (("CeleryExecutor, 2 workers", celery), ("LocalExecutor, standalone", local)):
    print(
        f"{name:32} {r['tasks_per_second']!s:>8} {r['run_seconds']!s:>7}"
        f" {r['queued_to_running_p50_seconds']!s:>22} {r['queued_to_running_p95_seconds']!s:>7}"
        f"   ({r['tasks_succeeded']}/{r['tasks']} succeeded)"
    )
print(json.dumps({"pipeline": pipeline, "fanout_celery": celery, "fanout_standalone": local}))
PYEOF
