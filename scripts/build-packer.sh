#!/usr/bin/env bash
# Builds Packer and the amazon plugin from the Go module proxy (no HashiCorp release
# downloads are reachable here), caches both binaries in .cache/tools-<hash of the wrapper
# modules>/ and installs the plugin into a gitignored PACKER_PLUGIN_PATH with
# `packer plugins install --path`, so `packer validate` runs fully offline.
#
#   bash scripts/build-packer.sh          build if needed (fast no-op when warm)
#   eval "$(bash scripts/build-packer.sh --env)"   ... and export PACKER, PACKER_PLUGIN_PATH
#
# The wrapper modules (scripts/go-tools/*/go.mod + go.sum, committed) exist because
# `go install pkg@version` refuses modules that carry replace directives, and both
# upstream modules need `replace github.com/zclconf/go-cty => github.com/nywilken/go-cty`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PRINT_ENV=0
case "${1:-}" in
  "") ;;
  --env) PRINT_ENV=1 ;;
  *) die "unknown argument '$1' (allowed: --env)" ;;
esac

PACKER_VERSION=1.16.0
AMAZON_VERSION=1.8.2
MIN_GO=1.26.3 # Packer v1.16.0's go.mod directive
WRAPPERS=scripts/go-tools

need_go "$MIN_GO" "Packer v$PACKER_VERSION"
for f in packer/go.mod packer/go.sum packer-plugin-amazon/go.mod packer-plugin-amazon/go.sum; do
  [ -f "$WRAPPERS/$f" ] || die "missing wrapper file $WRAPPERS/$f"
done

KEY=$(hash_of "$WRAPPERS"/packer/go.mod "$WRAPPERS"/packer/go.sum \
  "$WRAPPERS"/packer-plugin-amazon/go.mod "$WRAPPERS"/packer-plugin-amazon/go.sum)
TOOLS_DIR="$CACHE_DIR/tools-$KEY"
PACKER="$TOOLS_DIR/packer"
PLUGIN_BIN="$TOOLS_DIR/packer-plugin-amazon"
export PACKER_PLUGIN_PATH="$CACHE_DIR/packer-plugins"

build_tools() {
  local tmp start=$SECONDS
  log "building packer v$PACKER_VERSION and packer-plugin-amazon v$AMAZON_VERSION with $(go env GOVERSION) (cold: several minutes on 2 cores)"
  tmp="$TOOLS_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # -mod=readonly: the committed go.sum must already cover everything (reproducible);
  # static, stripped binaries; GOCACHE/GOMODCACHE stay Go's defaults so a rebuild is warm.
  (cd "$WRAPPERS/packer" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
    -ldflags='-s -w' -o "$tmp/packer" github.com/hashicorp/packer)
  log "packer built in $((SECONDS - start))s"
  (cd "$WRAPPERS/packer-plugin-amazon" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
    -ldflags='-s -w' -o "$tmp/packer-plugin-amazon" github.com/hashicorp/packer-plugin-amazon)
  "$tmp/packer" version | grep -q "Packer v$PACKER_VERSION" ||
    die "built packer reports '$("$tmp/packer" version | head -n1)', expected v$PACKER_VERSION"
  "$tmp/packer-plugin-amazon" describe | grep -q "\"version\":\"$AMAZON_VERSION\"" ||
    die "built plugin describes itself as '$("$tmp/packer-plugin-amazon" describe)', expected $AMAZON_VERSION"
  rm -rf "$TOOLS_DIR"
  mv "$tmp" "$TOOLS_DIR"
  log "packer + amazon plugin built in $((SECONDS - start))s"
}

install_plugin() {
  # `plugins install --path` runs the binary's `describe` and copies it to
  # <PACKER_PLUGIN_PATH>/github.com/hashicorp/amazon/packer-plugin-amazon_v<ver>_x5.0_<os>_<arch>
  local installed
  installed=$(find "$PACKER_PLUGIN_PATH/github.com/hashicorp/amazon" -maxdepth 1 -type f \
    -name "packer-plugin-amazon_v${AMAZON_VERSION}_*" ! -name '*_SHA256SUM' 2>/dev/null | head -n1 || true)
  if [ -n "$installed" ] && cmp -s "$installed" "$PLUGIN_BIN"; then
    return
  fi
  mkdir -p "$PACKER_PLUGIN_PATH"
  "$PACKER" plugins install --path "$PLUGIN_BIN" github.com/hashicorp/amazon >&2
}

SECONDS=0
if [ -x "$PACKER" ] && [ -x "$PLUGIN_BIN" ]; then
  [ "$PRINT_ENV" = 1 ] || log "packer + amazon plugin cached in $(basename "$TOOLS_DIR")"
else
  build_tools
  # binaries of older wrapper versions are dead weight
  find "$CACHE_DIR" -maxdepth 1 -type d -name 'tools-*' ! -path "$TOOLS_DIR" -exec rm -rf {} +
fi
install_plugin

if [ "$PRINT_ENV" = 1 ]; then
  printf 'export PACKER=%q PACKER_PLUGIN_PATH=%q CHECKPOINT_DISABLE=1\n' "$PACKER" "$PACKER_PLUGIN_PATH"
else
  log "packer ready: $("$PACKER" version | head -n1), plugin amazon v$AMAZON_VERSION in $PACKER_PLUGIN_PATH (${SECONDS}s)"
fi
