#!/usr/bin/env bash
# Regenerates the Python lock files from their .in inputs (needs PyPI). Commit the result.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
UV=(uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet)
"${UV[@]}" packer/requirements.in -o requirements.lock
"${UV[@]}" config/requirements-dev.in -c requirements.lock -o requirements-dev.lock
"${UV[@]}" config/requirements-checkov.in -o requirements-checkov.lock
# The EMR stand-in's Spark runs on Python 3.9, EMR 7's default python3 (scripts/setup-emr-spark.sh).
uv pip compile --python-version 3.9 --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet \
  config/requirements-emr.in -o requirements-emr.lock
log "locks written: requirements.lock requirements-dev.lock requirements-checkov.lock requirements-emr.lock"
