#!/usr/bin/env bash
# `npm run synth`: compile and synthesize both stacks (state + cluster) to Terraform JSON,
# offline, with no AWS credentials and no telemetry. Env: AIRFLOW_ENV (default dev) picks
# config/<env>.json (AIRFLOW_CONFIG_DIR overrides config/); SYNTH_OUT (default cdktf.out)
# is the output directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

env_name="${AIRFLOW_ENV:-dev}"
out="${SYNTH_OUT:-cdktf.out}"
bash scripts/setup-node.sh
log "build (tsc)"
npx tsc -p tsconfig.json

# Validate the config first: a bad field prints its one-line message here instead of
# inside the CLI's output, which is shown only on failure; so are the config warnings.
# shellcheck disable=SC2016  # a JavaScript template literal, not shell
state_bucket="$(AIRFLOW_ENV="$env_name" node -e '
  try {
    const c = require("./dist/modules/config").loadConfig();
    for (const w of require("./dist/modules/warnings").configWarnings(c, `config/${c.env}.json`))
      process.stderr.write(`warning: ${w}\n`);
    console.log(c.stateBucketName);
  } catch (e) { process.stderr.write(e.message + "\n"); process.exit(1); }')"

log "synth AIRFLOW_ENV=$env_name"
export AIRFLOW_ENV="$env_name" CHECKPOINT_DISABLE=1 CDKTF_DISABLE_TELEMETRY=1
# Synth needs neither credentials nor provider downloads: the providers are prebuilt npm
# packages and data sources resolve only at plan time.
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
rm -rf "$out"
synth_log="$(mktemp)"
trap 'rm -f "$synth_log"' EXIT
# The CLI is chatty (spinners, terraform CLI-config warnings); show it only on failure.
if ! npx cdktf synth --output "$out" >"$synth_log" 2>&1; then
  cat "$synth_log" >&2
  die "cdktf synth failed"
fi

log "Terraform JSON written to $out/stacks/ (deploy: npm run deploy -- $env_name)"
log "state bucket: $state_bucket"
for stack in "$out"/stacks/*/; do
  name="$(basename "$stack")"
  count="$(node -e 'const j=require(process.argv[1]);console.log(Object.values(j.resource||{}).reduce((n,t)=>n+Object.keys(t).length,0))' "$(cd "$stack" && pwd)/cdk.tf.json")"
  printf '  %-24s %4s resources  %s\n' "$name" "$count" "$stack"cdk.tf.json
done
