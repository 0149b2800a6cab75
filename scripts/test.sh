#!/usr/bin/env bash
# The one test command (`npm test`): installs what is missing (cached), then runs every
# check in order. Any failing stage fails the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SECONDS=0
bash scripts/setup-system.sh
bash scripts/setup-node.sh
bash scripts/setup-python.sh
bash scripts/build-packer.sh
bash scripts/fetch-spark-jars.sh

for stage in lint infra ami pipeline; do
  log "stage: $stage"
  bash "scripts/test-$stage.sh"
done
log "all stages passed in ${SECONDS}s"
