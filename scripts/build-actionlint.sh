#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow checker) from the Go module proxy into
# .cache/actionlint-<version>-<go version>/, like scripts/build-packer.sh does for Packer:
# a cold run downloads and compiles it (go.sum checked against the checksum database),
# every later run finds the binary and needs no network.
#
#   bash scripts/build-actionlint.sh          build if needed
#   bash scripts/build-actionlint.sh --path   ... and print the binary's path on stdout
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PRINT_PATH=0
case "${1:-}" in
  "") ;;
  --path) PRINT_PATH=1 ;;
  *) die "unknown argument '$1' (allowed: --path)" ;;
esac

ACTIONLINT_VERSION=v1.7.12
MIN_GO=1.25.0 # actionlint v1.7.12's go.mod directive

need_go "$MIN_GO" "actionlint $ACTIONLINT_VERSION"

TOOL_DIR="$CACHE_DIR/actionlint-$ACTIONLINT_VERSION-go$go_version"
ACTIONLINT="$TOOL_DIR/actionlint"

if [ ! -x "$ACTIONLINT" ]; then
  log "building actionlint $ACTIONLINT_VERSION with go$go_version (cold: about a minute)"
  tmp="$TOOL_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  "$tmp/actionlint" -version | grep -qx "$ACTIONLINT_VERSION" ||
    die "built actionlint reports '$("$tmp/actionlint" -version | head -n1)', expected $ACTIONLINT_VERSION"
  rm -rf "$TOOL_DIR"
  mv "$tmp" "$TOOL_DIR"
  # builds for other versions are dead weight
  find "$CACHE_DIR" -maxdepth 1 -type d -name 'actionlint-*' ! -path "$TOOL_DIR" -exec rm -rf {} +
fi

if [ "$PRINT_PATH" = 1 ]; then
  echo "$ACTIONLINT"
else
  log "actionlint ready: $ACTIONLINT"
fi
