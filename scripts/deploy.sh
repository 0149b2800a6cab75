#!/usr/bin/env bash
# `npm run deploy -- <env> [--auto-approve]`: the first deploy and every later one, with
# real AWS credentials. In order:
#   1. build, and find the caller's account (the state bucket is named after it);
#   2. refuse a state bucket of that name owned by another account, and a caller that the
#      state bucket policy would lock out of this env's state (stateAccessPrincipalArns);
#   3. on a machine without the state stack's local state, restore it from the copy in
#      the bucket (or say how to import the bucket);
#   4. deploy the state stack, then copy its local state into the bucket it created;
#   5. deploy the cluster stack and write its outputs to outputs-<env>.json.
# Without --auto-approve, Terraform shows each plan and asks before applying it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

parse_env_args "usage: npm run deploy -- <env> [--auto-approve]" "$@"
need_cmd terraform ">= 1.10, https://developer.hashicorp.com/terraform/install"

workflow_init "$env_name"
bucket="$(fact stateBucket)"
state_file="$(fact stateFile)"
backup="s3://$bucket/$(fact stateBackupKey)"
account="$AIRFLOW_ACCOUNT_ID"
denial="$(fact stateAccessDenial)"
if [ -n "$denial" ]; then
  die "the caller $AIRFLOW_CALLER_ARN is not in the $denial, so the state bucket policy would deny it this env's state: add it (wildcards allowed) or deploy as a listed principal"
fi

# head-bucket: 0 = ours; with --expected-bucket-owner a bucket of another account is 403.
bucket_state() {
  if aws s3api head-bucket --bucket "$bucket" --expected-bucket-owner "$account" >/dev/null 2>&1; then
    echo ours
  elif aws s3api head-bucket --bucket "$bucket" 2>&1 | grep -q "Not Found"; then
    echo absent
  else
    echo foreign
  fi
}

case "$(bucket_state)" in
  foreign) die "state bucket $bucket exists but is not owned by account $account: set stateBucketName in config/$env_name.json to a name you own" ;;
  ours)
    if [ ! -f "$state_file" ]; then
      mkdir -p "$(dirname "$state_file")"
      if aws s3 cp "$backup" "$state_file" --only-show-errors 2>/dev/null; then
        log "restored the state stack's state from $backup"
      else
        die "state bucket $bucket exists, but neither $state_file nor $backup does: import it with
  npx cdktf synth && cd cdktf.out/stacks/$(fact stateStack) && terraform init &&
  terraform import \"\$(jq -r '.resource.aws_s3_bucket | keys[0] | \"aws_s3_bucket.\" + .' cdk.tf.json)\" $bucket"
      fi
    fi
    ;;
  absent) log "state bucket $bucket does not exist yet; the state stack creates it" ;;
esac

log "deploy $(fact stateStack) (state bucket $bucket; local state $state_file)"
npx cdktf deploy "$(fact stateStack)" "${approve[@]}"
[ "$(bucket_state)" = ours ] || die "state bucket $bucket is not owned by account $account after the deploy"
aws s3 cp "$state_file" "$backup" --sse aws:kms --sse-kms-key-id "$(fact stateKeyAlias)" --only-show-errors
log "copied the state stack's state to $backup"

outputs="$ROOT/outputs-$env_name.json"
log "deploy $(fact clusterStack)"
npx cdktf deploy "$(fact clusterStack)" "${approve[@]}" --outputs-file "$outputs"
log "outputs written to $outputs"
cat >&2 <<NEXT
Next:
  aws s3 cp Mall_Customers.csv "s3://\$(jq -r '.["$(fact clusterStack)"].compute.outputs.data_bucket' outputs-$env_name.json)/champion/data/"
  npm run ui -- $env_name        # open the UI and log in as admin
NEXT
