#!/usr/bin/env bash
# Builds the test virtualenv from requirements-dev.lock (a superset of the AMI's
# requirements.lock, same pins) and checkov's own virtualenv, each cached by lock hash.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || die "python3.11 is required (set PYTHON=/path/to/python3.11)"

make_venv() { # make_venv DIR LOCK
  local dir=$1 lock=$2
  if [ -f "$dir/.complete" ]; then
    log "venv $(basename "$dir") cached"
    return
  fi
  log "building venv $(basename "$dir") from $lock"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check uv==0.13.8
  "$dir/bin/uv" pip sync -q --python "$dir/bin/python" --require-hashes "$lock"
  touch "$dir/.complete"
}

mkdir -p "$CACHE_DIR"
make_venv "$VENV_DIR" requirements-dev.lock
make_venv "$CHECKOV_VENV_DIR" requirements-checkov.lock
# drop venvs of older locks (KEEP_OLD_VENVS=1 keeps them, e.g. while another run uses one)
[ "${KEEP_OLD_VENVS:-0}" = 1 ] && exit 0
find "$CACHE_DIR" -maxdepth 1 -type d \( -name 'venv-*' -o -name 'checkov-*' \) \
  ! -path "$VENV_DIR" ! -path "$CHECKOV_VENV_DIR" -exec rm -rf {} +
