#!/usr/bin/env bash
# npm ci when node_modules does not match package-lock.json.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
stamp="node_modules/.lock-$(hash_of package-lock.json)"
if [ -f "$stamp" ]; then
  log "node_modules up to date"
  exit 0
fi
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error
touch "$stamp"
