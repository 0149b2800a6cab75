#!/usr/bin/env bash
# Infra stage: type-check, jest (in-process synth + property tests), then the real
# synthesis of dev (through the cdktf CLI, as `npm run synth` does) and prod, each
# gated by checkov with zero unexcused failures (reasoned skips live next to the
# resources; see modules/checkov.ts and scripts/checkov-gate.js).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ -x "$CHECKOV_VENV_DIR/bin/checkov" ] || die "checkov not installed at $CHECKOV_VENV_DIR (run scripts/setup-python.sh)"
bash scripts/setup-node.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log "type-check (tsc)"
npx tsc -p tsconfig.json

log "jest (infra)"
npx jest --ci

log "synth dev via the cdktf CLI"
SYNTH_OUT="$work/dev" AIRFLOW_ENV=dev bash scripts/synth.sh

log "synth prod"
CDKTF_OUTDIR="$work/prod" AIRFLOW_ENV=prod node dist/main.js

log "checkov (dev and prod, cluster and state stacks)"
node scripts/checkov-gate.js "$CHECKOV_VENV_DIR/bin/checkov" \
  "$work/dev/stacks/airflow-state" "$work/dev/stacks/airflow-dev" "$work/prod/stacks/airflow-prod"
log "infra stage passed"
