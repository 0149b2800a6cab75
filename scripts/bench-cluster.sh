#!/usr/bin/env bash
# Cluster benchmark (prints figures; asserts nothing): `npm run bench:cluster`.
#   1. the five-node Celery cluster (scripts/e2e.sh --up): boot-to-healthy per node, the
#      pipeline's trigger-to-done time, then a 200-task no-op fan-out (e2e_fanout)
#   2. the same fan-out on one `standalone` node (LocalExecutor), the baseline
#   bench-cluster.sh --boot-only   (`npm run bench:boot`) only step 1's boot figures
# Boot figures come from each node's bootstrap log (durations the bootstrap itself logs: its
# wall time ends when the role passed its health checks), the rest from the REST API (run
# start/end, task queued_when/start_date). Both clusters run on this one machine, so the
# figures compare the executors on equal hardware; they say nothing about AWS latency. The
# five nodes boot at once on shared cores, as an ASG launches them: boot times include that
# contention.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

BOOT_ONLY=0
case "${1:-}" in
"") ;;
--boot-only) BOOT_ONLY=1 ;;
*) die "unknown argument '$1'; usage: bench-cluster.sh [--boot-only]" ;;
esac

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

# boot_figures: per node, its role and the durations its bootstrap logged -> RESULTS/boot.json
boot_figures() {
  "$PY" - "$WORK" >"$RESULTS/boot.json" <<'PYEOF'
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, "__tests__/e2e")
from e2e_cluster import Cluster  # noqa: E402

work = Path(sys.argv[1])
nodes = []
for name in Cluster(work).env["E2E_NODES"].split():
    text = (work / f"bootstrap-{name}.log").read_text()

    def seconds(pattern: str) -> float | None:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    ready = re.search(r"role (\S+) ready; bootstrap wall time ([\d.]+)s", text)
    nodes.append(
        {
            "node": name,
            "role": ready.group(1) if ready else None,
            # bootstrap start -> role healthy (the health wait is its last step)
            "boot_to_healthy_seconds": float(ready.group(2)) if ready else None,
            # what the role waited for before starting its units
            "migrate_seconds": seconds(r"database migrated in ([\d.]+)s"),
            "migration_lock_wait_seconds": seconds(r"migration lock held after ([\d.]+)s"),
            "schema_wait_seconds": seconds(r"database schema is current \(([\d.]+)s\)"),
            "execution_api_wait_seconds": seconds(r"Execution API healthy \(([\d.]+)s\)"),
            # units started -> every health check of the role passes
            "health_wait_seconds": seconds(r"role healthy \(([\d.]+)s\)"),
        }
    )
print(json.dumps(nodes))
PYEOF
}

log "bench: the Celery cluster (api-1, scheduler-1/2, worker-1/2)"
up cluster
boot_figures
if [ "$BOOT_ONLY" = 0 ]; then
  "$PY" __tests__/e2e/e2e_cluster.py run --work "$WORK" --input __tests__/e2e/fixtures/Mall_Customers.csv \
    --output "$RESULTS/pipeline-output" | tail -n 1 >"$RESULTS/pipeline.json"
  "$PY" __tests__/e2e/e2e_cluster.py fanout --work "$WORK" | tail -n 1 >"$RESULTS/fanout-celery.json"
fi
down

if [ "$BOOT_ONLY" = 0 ]; then
  log "bench: the standalone node (LocalExecutor)"
  up standalone
  "$PY" __tests__/e2e/e2e_cluster.py fanout --work "$WORK" | tail -n 1 >"$RESULTS/fanout-standalone.json"
  down
fi

"$PY" - "$RESULTS" <<'PYEOF'
import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
boot = json.loads((results / "boot.json").read_text())
print("boot to healthy, five nodes booting at once (bootstrap start -> role passes its health checks)")
print(f"{'node':12} {'role':11} {'boot->healthy s':>16} {'boot->units started s':>22} {'units->healthy s':>17}")
for n in boot:
    total, health = n["boot_to_healthy_seconds"], n["health_wait_seconds"]
    # settings, render, then the DB migration / schema / Execution API wait of the role
    before = round(total - health, 1) if total is not None and health is not None else None
    print(f"{n['node']:12} {n['role']!s:11} {total!s:>16} {before!s:>22} {health!s:>17}")
if not (results / "pipeline.json").is_file():  # --boot-only
    print(json.dumps({"boot": boot}))
    sys.exit(0)
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
print(json.dumps({"boot": boot, "pipeline": pipeline, "fanout_celery": celery, "fanout_standalone": local}))
PYEOF
