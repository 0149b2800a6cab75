#!/usr/bin/env bash
# `npm run doctor [-- --offline]`: checks what the real AWS workflow needs (bake the AMI
# with Packer, `npm run deploy` the state and cluster stacks, `npm run ui` through SSM
# port forwarding). One line per check: ok, MISSING or TOO OLD, what was found, and for
# a problem how to get it. Exit 0 when every required check passes, 1 otherwise, 2 on a
# bad argument. Only the AWS credentials check needs AWS (network); --offline skips it.
# Never prints credentials: of the caller identity, only the account id and ARN.
set -euo pipefail

usage="usage: npm run doctor [-- --offline]   (bash scripts/doctor.sh [--offline] [--help])"
OFFLINE=0
for arg in "$@"; do
  case "$arg" in
    --offline) OFFLINE=1 ;;
    -h | --help)
      printf '%s\n' "$usage" \
        "Checks node + npm ci, terraform, the AWS CLI v2, the Session Manager plugin, go (or a" \
        "built packer), jq and, unless --offline, the AWS credentials (the one check that needs AWS)."
      exit 0
      ;;
    *)
      printf "error: unknown argument '%s'; allowed: --offline, --help\n" "$arg" >&2
      exit 2
      ;;
  esac
done

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Terraform the stacks require (modules/state-stack.ts REQUIRED_TERRAFORM_VERSION ">= 1.10":
# S3 native state locking, use_lockfile); __tests__/infra/doctor.test.ts keeps them equal.
MIN_TERRAFORM=1.10
TERRAFORM_URL="https://developer.hashicorp.com/terraform/install"
AWSCLI_URL="https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
SSM_PLUGIN_URL="https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"

problems=0
# report STATUS TEXT -> one check line; any status but ok/skip counts as a problem
report() {
  printf '%-8s %s\n' "$1" "$2"
  case "$1" in ok | skip) ;; *) problems=$((problems + 1)) ;; esac
}

# version_of TEXT -> the first dotted number in TEXT (1.9.8 of "Terraform v1.9.8"), or ""
version_of() {
  if [[ "$1" =~ ([0-9]+(\.[0-9]+)+|[0-9]+) ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}

# version_ge A B -> success when dotted version A >= B, compared number by number
# (1.10.0 > 1.9.8; a missing part counts as 0, so 1.10 == 1.10.0)
version_ge() {
  local -a a b
  local i x y
  IFS=. read -r -a a <<<"$1"
  IFS=. read -r -a b <<<"$2"
  for ((i = 0; i < ${#a[@]} || i < ${#b[@]}; i++)); do
    x=$((10#${a[i]:-0})) y=$((10#${b[i]:-0}))
    ((x > y)) && return 0
    ((x < y)) && return 1
  done
  return 0
}

# output_of CMD... -> CMD's stdout+stderr, "" when it fails (never trips set -e)
output_of() { "$@" 2>&1 || true; }

# --- Node (package.json engines) and npm ci -------------------------------------------
min_node=20
engines_re='"node":[[:space:]]*">=[[:space:]]*([0-9.]+)"'
if [[ "$(<package.json)" =~ $engines_re ]]; then
  min_node="${BASH_REMATCH[1]}"
fi
if ! command -v node >/dev/null; then
  report MISSING "node: not on PATH; fix: install Node.js >= $min_node, https://nodejs.org/en/download"
else
  node_version="$(version_of "$(output_of node --version)")"
  if [ -n "$node_version" ] && version_ge "$node_version" "$min_node"; then
    report ok "node $node_version (>= $min_node, package.json engines)"
  else
    report "TOO OLD" "node ${node_version:-of unknown version}, need >= $min_node (package.json engines); fix: https://nodejs.org/en/download"
  fi
fi
if [ -x node_modules/.bin/cdktf ]; then
  report ok "npm ci: node_modules/.bin/cdktf present"
else
  report MISSING "npm ci: node_modules/.bin/cdktf not found; fix: npm ci"
fi

# --- Terraform -------------------------------------------------------------------------
if ! command -v terraform >/dev/null; then
  report MISSING "terraform: not on PATH; fix: install Terraform >= $MIN_TERRAFORM, $TERRAFORM_URL"
else
  tf_version=""
  tf_json="$(terraform version -json 2>/dev/null || true)"
  tf_re='"terraform_version":[[:space:]]*"([^"]+)"'
  if [[ "$tf_json" =~ $tf_re ]]; then
    tf_version="$(version_of "${BASH_REMATCH[1]}")"
  else # Terraform before 0.13 has no -json: "Terraform v0.12.31"
    tf_text="$(output_of terraform version)"
    tf_version="$(version_of "${tf_text%%$'\n'*}")"
  fi
  if [ -n "$tf_version" ] && version_ge "$tf_version" "$MIN_TERRAFORM"; then
    report ok "terraform $tf_version (>= $MIN_TERRAFORM)"
  else
    report "TOO OLD" "terraform ${tf_version:-of unknown version}, need >= $MIN_TERRAFORM (S3 native state locking, use_lockfile); fix: $TERRAFORM_URL"
  fi
fi

# --- AWS CLI v2 ------------------------------------------------------------------------
if ! command -v aws >/dev/null; then
  report MISSING "aws: not on PATH; fix: install AWS CLI v2, $AWSCLI_URL"
else
  aws_out="$(output_of aws --version)"
  if [[ "$aws_out" =~ aws-cli/([0-9][0-9.]*) ]] && [ "${BASH_REMATCH[1]%%.*}" -ge 2 ]; then
    report ok "aws-cli ${BASH_REMATCH[1]} (v2)"
  else
    report "TOO OLD" "aws: '${aws_out%%$'\n'*}', need AWS CLI v2 (aws-cli/2.x); fix: $AWSCLI_URL"
  fi
fi

# --- Session Manager plugin (Packer's ssh_interface = session_manager, npm run ui) -----
if command -v session-manager-plugin >/dev/null; then
  report ok "session-manager-plugin $(version_of "$(output_of session-manager-plugin --version)")"
else
  report MISSING "session-manager-plugin: not on PATH (Packer's default ssh_interface = session_manager and the UI port forward need it); fix: $SSM_PLUGIN_URL"
fi

# --- Go to build Packer (scripts/build-packer.sh), or the packer it already built ------
# The minimum is the highest of build-packer.sh's MIN_GO and the wrappers' `go` directives
# (read here, so a Packer bump cannot leave this check behind).
min_go=0
if [[ "$(<scripts/build-packer.sh)" =~ MIN_GO=([0-9.]+) ]]; then
  min_go="${BASH_REMATCH[1]}"
fi
for mod in scripts/go-tools/*/go.mod; do
  while read -r word ver _; do
    ver="$(version_of "${ver:-}")"
    if [ "$word" = go ] && [ -n "$ver" ] && ! version_ge "$min_go" "$ver"; then min_go="$ver"; fi
  done <"$mod"
done
# the cache key and the "cached" test of build-packer.sh
wrappers=(scripts/go-tools/packer/go.mod scripts/go-tools/packer/go.sum
  scripts/go-tools/packer-plugin-amazon/go.mod scripts/go-tools/packer-plugin-amazon/go.sum)
tools_dir="$CACHE_DIR/tools-$(hash_of "${wrappers[@]}" 2>/dev/null || echo none)"
go_fix="fix: install go >= $min_go, https://go.dev/dl/ (or with go >= 1.21: export GOTOOLCHAIN=go$min_go), then bash scripts/build-packer.sh"
go_state="" go_version=""
if command -v go >/dev/null; then
  go_version="$(version_of "$(output_of go env GOVERSION)")"
  if [ -n "$go_version" ] && version_ge "$go_version" "$min_go"; then go_state=ok; else go_state="TOO OLD"; fi
else
  go_state=MISSING
fi
if [ -x "$tools_dir/packer" ] && [ -x "$tools_dir/packer-plugin-amazon" ]; then
  packer_version="$(version_of "$(output_of "$tools_dir/packer" version)")"
  built="packer ${packer_version:-(unknown version)} already built in ${tools_dir#"$ROOT"/}"
  if [ "$go_state" = ok ]; then
    report ok "go $go_version (>= $min_go); $built"
  else
    # build-packer.sh checks go before it looks at its cache, so point at the binaries
    report ok "$built; no go >= $min_go here, which scripts/build-packer.sh checks even when cached, so use the build directly: $(printf "export PACKER=%q PACKER_PLUGIN_PATH=%q" "$tools_dir/packer" "$CACHE_DIR/packer-plugins")"
  fi
elif [ "$go_state" = MISSING ]; then
  report MISSING "go: not on PATH and no packer built yet (scripts/build-packer.sh builds it with go >= $min_go); $go_fix"
elif [ "$go_state" = ok ]; then
  report ok "go $go_version (>= $min_go, builds packer: bash scripts/build-packer.sh)"
else
  report "TOO OLD" "go ${go_version:-of unknown version}, need >= $min_go to build packer (scripts/build-packer.sh); $go_fix"
fi

# --- jq (scripts/lib.sh workflow_init, deploy.sh, ui.sh) -------------------------------
if command -v jq >/dev/null; then
  report ok "jq $(version_of "$(output_of jq --version)")"
else
  report MISSING "jq: not on PATH; fix: apt-get install jq / dnf install jq / brew install jq, https://jqlang.org/download/"
fi

# --- AWS credentials (the only check that needs AWS) -----------------------------------
label="AWS credentials (needs AWS)"
profile="${AWS_PROFILE:+ with AWS_PROFILE=$AWS_PROFILE}"
creds_fix="fix: set AWS_PROFILE=<profile> (and aws sso login --profile <profile> for SSO), or run aws configure"
if [ "$OFFLINE" = 1 ]; then
  report skip "$label: skipped (--offline); run npm run doctor without --offline to check"
elif ! command -v aws >/dev/null; then
  report MISSING "$label: not checked, the AWS CLI is missing (see above); then $creds_fix"
elif identity="$(aws sts get-caller-identity --cli-connect-timeout 10 --cli-read-timeout 20 \
  --query '[Account, Arn]' --output text 2>&1)" && [[ "$identity" =~ ^([0-9]{12})[[:space:]]+(arn:[^[:space:]]+) ]]; then
  report ok "$label: account ${BASH_REMATCH[1]}, ${BASH_REMATCH[2]}$profile"
else
  # the CLI's own message (expired SSO token, no credentials, ...): one line, no secrets in it
  error_line=""
  while IFS= read -r line; do
    [[ "$line" =~ [^[:space:]] ]] && error_line="$line"
  done <<<"$identity"
  report MISSING "$label: aws sts get-caller-identity failed$profile: ${error_line:0:200}; $creds_fix"
fi

if [ "$problems" -gt 0 ]; then
  log "$problems problem(s): fix the lines above that are not ok, then run npm run doctor again"
  exit 1
fi
log "all required checks passed$([ "$OFFLINE" = 1 ] && echo ' (AWS credentials not checked: --offline)')"
