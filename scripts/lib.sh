#!/usr/bin/env bash
# Shared helpers for the project's scripts. Source it; do not run it.
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Heavy, rebuildable artifacts (venvs, Go-built tools, Maven jars) live here, keyed by
# the hash of the files that define them, so a warm run reuses them. Gitignored.
CACHE_DIR="${CACHE_DIR:-$ROOT/.cache}"
export CHECKPOINT_DISABLE=1 # no HashiCorp telemetry from cdktf, terraform or packer

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# hash_of FILE... -> short content hash, used as a cache key
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# as_root CMD... -> run as root (directly, or through sudo for a non-root newcomer)
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

VENV_DIR="$CACHE_DIR/venv-$(hash_of "$ROOT/requirements-dev.lock")"
CHECKOV_VENV_DIR="$CACHE_DIR/checkov-$(hash_of "$ROOT/requirements-checkov.lock")"
