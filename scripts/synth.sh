#!/usr/bin/env bash
# `npm run synth`: synthesize both stacks (state + cluster) to Terraform JSON, offline,
# with no AWS credentials and no telemetry. Env: AIRFLOW_ENV (default dev) picks
# config/<env>.json (AIRFLOW_CONFIG_DIR overrides config/); SYNTH_OUT (default cdktf.out)
# is the output directory. It transpiles only what changed and runs the app directly
# (scripts/synth.js), writing what `npx cdktf synth --output SYNTH_OUT` writes; types are
# checked by the lint stage and by `npm run build`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

env_name="${AIRFLOW_ENV:-dev}"
out="${SYNTH_OUT:-cdktf.out}"
[ -n "$out" ] || die "SYNTH_OUT: got an empty value; allowed: a directory path"
bash scripts/setup-node.sh

export AIRFLOW_ENV="$env_name" CDKTF_DISABLE_TELEMETRY=1
# Synth needs neither credentials nor provider downloads: the providers are prebuilt npm
# packages and data sources resolve only at plan time.
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
node scripts/synth.js "$out"
