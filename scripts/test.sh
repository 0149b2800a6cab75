#!/usr/bin/env bash
# The one test command (`npm test`): installs what is missing (cached), then runs every
# check in order. Any failing stage fails the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SECONDS=0
mkdir -p "$CACHE_DIR"
RUN_LOG="$CACHE_DIR/last-test-run.log"
exec > >(tee "$RUN_LOG") 2>&1

bash scripts/setup-system.sh
bash scripts/setup-node.sh
bash scripts/setup-python.sh
bash scripts/build-packer.sh
bash scripts/build-actionlint.sh
bash scripts/fetch-spark-jars.sh

for stage in lint infra ami pipeline e2e; do
  log "stage: $stage"
  bash "scripts/test-$stage.sh"
done
log "all stages passed in ${SECONDS}s"
# One closing line over every runner (jest "Tests: ... N passed", pytest "N passed ... in Xs");
# any failure has already stopped the run above, so failed is 0 by construction.
passed=$(sed 's/\x1b\[[0-9;]*m//g' "$RUN_LOG" | awk '
  /^Tests: .* passed, [0-9]+ total/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^passed/) n += $i }
  /^(=+ )?[0-9]+ passed.* in [0-9.]+s/ { sub(/^=+ /, ""); n += $1 }
  END { print n + 0 }')
echo "npm test: ${passed} passed, 0 failed"
