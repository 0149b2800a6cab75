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

# need_cmd CMD HOW... -> die naming CMD and how to get it unless it is on PATH
need_cmd() {
  local cmd="$1"
  shift
  command -v "$cmd" >/dev/null || die "$cmd is not installed: $* (npm run doctor checks every prerequisite)"
}

# need_go MIN WHAT -> die unless Go >= MIN is on PATH (WHAT is what needs it); sets go_version
need_go() {
  need_cmd go "Go >= $1 from https://go.dev/dl/"
  go_version=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n%s\n' "$1" "$go_version" | sort -V | head -n1)" != "$1" ]; then
    die "go $go_version is too old: $2 needs go >= $1"
  fi
}

# parse_env_args USAGE ARG... -> the deploy/destroy command line: sets env_name (exactly
# one) and approve (an array holding --auto-approve when given); -h prints USAGE.
parse_env_args() {
  local usage="$1" arg
  shift
  env_name=""
  approve=()
  for arg in "$@"; do
    case "$arg" in
      --auto-approve) approve=(--auto-approve) ;;
      -h | --help) echo "$usage" && exit 0 ;;
      -*) die "unknown option '$arg'; allowed: --auto-approve ($usage)" ;;
      *)
        [ -z "$env_name" ] || die "one env only, got '$env_name' and '$arg' ($usage)"
        env_name="$arg"
        ;;
    esac
  done
  [ -n "$env_name" ] || die "$usage"
}

# principal_arn ARN -> the IAM role or user ARN that policies see as aws:PrincipalArn for
# the caller ARN of `aws sts get-caller-identity` (an assumed-role session ARN drops the
# role's path, so IAM is asked for it; without iam:GetRole the path-less ARN is used).
principal_arn() {
  local arn="$1"
  if [[ "$arn" =~ ^arn:([a-z-]+):sts::([0-9]{12}):assumed-role/([^/]+)/ ]]; then
    aws iam get-role --role-name "${BASH_REMATCH[3]}" --query Role.Arn --output text 2>/dev/null ||
      echo "arn:${BASH_REMATCH[1]}:iam::${BASH_REMATCH[2]}:role/${BASH_REMATCH[3]}"
  else
    echo "$arn"
  fi
}

# workflow_init ENV -> the AWS workflow scripts' common start: check the tools, find the
# caller's account, build, and set FACTS to scripts/workflow-facts.js's JSON for ENV.
# Exports AIRFLOW_ENV, AIRFLOW_ACCOUNT_ID (the config's accountId wins when set; a
# different caller account is refused, so nothing deploys into the wrong account) and
# AIRFLOW_CALLER_ARN (see principal_arn).
workflow_init() {
  local env_name="$1" caller configured identity
  [[ "$env_name" =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
    die "env: got '${env_name}'; allowed: the name of a config/<env>.json file, e.g. dev"
  need_cmd aws "AWS CLI v2, https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
  need_cmd jq "apt-get install jq / brew install jq"
  export AIRFLOW_ENV="$env_name" CDKTF_DISABLE_TELEMETRY=1
  log "build (tsc)"
  (cd "$ROOT" && npx tsc -p tsconfig.json)
  # The config first: a bad env or field is one line, before anything talks to AWS.
  configured="$(AIRFLOW_ACCOUNT_ID='' node "$ROOT/scripts/workflow-facts.js")" || exit 1
  configured="$(jq -r '.accountId // empty' <<<"$configured")"
  identity="$(aws sts get-caller-identity --query '[Account, Arn]' --output text)" ||
    die "no AWS credentials: set AWS_PROFILE (aws sso login --profile ...) or run aws configure"
  caller="${identity%%[[:space:]]*}"
  if [ -n "$configured" ] && [ "$configured" != "$caller" ]; then
    die "config/$env_name.json accountId is $configured, but the credentials are for account $caller"
  fi
  export AIRFLOW_ACCOUNT_ID="$caller"
  AIRFLOW_CALLER_ARN="$(principal_arn "${identity##*[[:space:]]}")"
  export AIRFLOW_CALLER_ARN
  FACTS="$(node "$ROOT/scripts/workflow-facts.js")"
  if [ -z "$configured" ]; then
    log "state bucket named after account $caller; add \"accountId\": \"$caller\" to config/$env_name.json so plain cdktf commands name the same bucket"
  fi
}

# fact KEY -> one field of FACTS
fact() { jq -r --arg k "$1" '.[$k] // empty' <<<"$FACTS"; }
