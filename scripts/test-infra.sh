#!/usr/bin/env bash
# Infra stage: jest (in-process synth + property tests, the main command against the
# cdktf CLI), then the real synthesis of dev (`npm run synth`), prod and alt, each
# gated by checkov with zero unexcused failures (reasoned skips live next to the
# resources; see modules/checkov.ts and scripts/checkov-gate.js) and their identity
# policies linted by parliament (reasoned excuses in scripts/lint-policies.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ -x "$CHECKOV_VENV_DIR/bin/checkov" ] || die "checkov not installed at $CHECKOV_VENV_DIR (run scripts/setup-python.sh)"
bash scripts/setup-node.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# expect_failure NAME FIXTURE_CMD... -- WANT... -> a gate run on its fixture must exit 1 and
# print every WANT line: a gate that passes everything would pass the real stacks too.
expect_failure() {
  local name="$1" out rc want
  shift
  local cmd=()
  while [ "$1" != "--" ]; do
    cmd+=("$1")
    shift
  done
  shift
  set +e
  out="$("${cmd[@]}")"
  rc=$?
  set -e
  [ "$rc" -eq 1 ] || die "$name should fail its fixture with exit 1, got $rc:
$out"
  for want in "$@"; do
    grep -qF -- "$want" <<<"$out" || die "$name self-check: missing '$want' in:
$out"
  done
}

log "checkov gate self-check (fixture: 1 excused, 2 unexcused failures, 1 stale skip)"
expect_failure "checkov gate" node scripts/checkov-gate.js "$CHECKOV_VENV_DIR/bin/checkov" \
  __tests__/infra/fixtures/checkov-gate -- \
  "2 failed, 2 skipped with reason, 1 stale skips" \
  "FAILED CKV_AWS_158 aws_cloudwatch_log_group.unexcused" \
  "FAILED CKV_AWS_338 aws_cloudwatch_log_group.unexcused" \
  "STALE  CKV_AWS_66 aws_cloudwatch_log_group.excused"

log "policy lint self-check (fixture: 1 finding, every real excuse stale)"
expect_failure "policy lint" "$CHECKOV_VENV_DIR/bin/python" scripts/lint-policies.py \
  __tests__/infra/fixtures/policies -- \
  "FINDING typo-policy Typo UNKNOWN_ACTION" \
  "STALE   compute_iam_worker-doc PassEmrEc2Role" \
  "lint-policies: 1 identity policy document(s)"

# Types are checked in the lint stage; the synths below need only the transpiled app.
log "build (transpile)"
node scripts/compile.js

log "jest (infra)"
npx jest --ci

log "synth dev (npm run synth; jest compared it with the cdktf CLI's output)"
SYNTH_OUT="$work/dev" AIRFLOW_ENV=dev bash scripts/synth.sh

log "synth prod"
CDKTF_OUTDIR="$work/prod" AIRFLOW_ENV=prod node dist/main.js

# The other branches of the config, so their resources pass checkov too: LocalExecutor,
# PostgreSQL, One Zone EFS, HTTPS UI, explicit AMI id.
log "synth alt (LocalExecutor, PostgreSQL, One Zone EFS, HTTPS)"
# (the same fixture config the AMI seam test feeds through the bootstrap renderer)
CDKTF_OUTDIR="$work/alt" AIRFLOW_CONFIG_DIR=__tests__/infra/fixtures/config AIRFLOW_ENV=alt node dist/main.js

log "checkov (state stack; dev, prod and alt cluster stacks)"
node scripts/checkov-gate.js "$CHECKOV_VENV_DIR/bin/checkov" \
  "$work/dev/stacks/airflow-state" "$work/dev/stacks/airflow-dev" \
  "$work/prod/stacks/airflow-prod" "$work/alt/stacks/dp-air-alt"
log "parliament (identity policies of the dev, prod and alt cluster stacks)"
for stack in dev/stacks/airflow-dev prod/stacks/airflow-prod alt/stacks/dp-air-alt; do
  node scripts/policy-documents.js "$work/$stack" "$work/policies/${stack%%/*}"
done
"$CHECKOV_VENV_DIR/bin/python" scripts/lint-policies.py "$work/policies/dev" "$work/policies/prod" "$work/policies/alt"
log "infra stage passed"
