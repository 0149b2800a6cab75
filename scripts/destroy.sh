#!/usr/bin/env bash
# `npm run destroy -- <env> [--auto-approve]`: tear a cluster stack down in an order
# that succeeds, then say what is kept.
#   1. Refuse a deletion-protected env (RDS would refuse half-way); say how to lift it.
#   2. Terminate DAG_1's EMR clusters still running in this env (found by the EMR
#      security group this stack created), and wait: their rules reference the groups.
#   3. Remove the workers' drain hook and release any worker waiting on it, so the
#      worker group deletes at once instead of waiting up to the drain budget per node.
#   4. `cdktf destroy` the cluster stack.
#   5. With finalSnapshot, cancel the deletion the destroy scheduled for the cluster key:
#      the final snapshot is encrypted with it and is unrestorable once the key is gone.
# Kept: the state stack and its bucket (prevent_destroy; shared by every env), and with
# finalSnapshot the DB's final snapshot and the (disabled, alias-less) cluster key.
# Without deletion protection the secrets have no recovery window, so a redeploy can
# reuse their names at once.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

parse_env_args "usage: npm run destroy -- <env> [--auto-approve]" "$@"
need_cmd terraform ">= 1.10, https://developer.hashicorp.com/terraform/install"

workflow_init "$env_name"
region="$(fact region)"
prefix="$(fact resourcePrefix)"
if [ "$(fact deletionProtection)" = true ]; then
  die "$env_name has deletionProtection: true, so RDS refuses deletion: set \"deletionProtection\": false in config/$env_name.json and run npm run deploy -- $env_name first (buckets then empty on destroy; the final snapshot is still taken)"
fi

sg="$(aws ec2 describe-security-groups --region "$region" \
  --filters "Name=group-name,Values=$(fact emrPrimarySecurityGroupName)" \
  --query 'SecurityGroups[0].GroupId' --output text 2>/dev/null || true)"
if [ -n "$sg" ] && [ "$sg" != None ]; then
  for cluster in $(aws emr list-clusters --region "$region" --active --query 'Clusters[].Id' --output text); do
    group="$(aws emr describe-cluster --region "$region" --cluster-id "$cluster" \
      --query 'Cluster.Ec2InstanceAttributes.EmrManagedMasterSecurityGroup' --output text)"
    [ "$group" = "$sg" ] || continue
    log "terminate EMR cluster $cluster (started by DAG_1 in $prefix)"
    aws emr terminate-clusters --region "$region" --cluster-ids "$cluster"
    aws emr wait cluster-terminated --region "$region" --cluster-id "$cluster"
  done
fi

group="$(fact workerGroup)"
if [ -n "$group" ] && aws autoscaling describe-lifecycle-hooks --region "$region" \
  --auto-scaling-group-name "$group" --lifecycle-hook-names "$(fact drainHookName)" \
  --query 'LifecycleHooks[0].LifecycleHookName' --output text 2>/dev/null | grep -qx "$(fact drainHookName)"; then
  log "remove the drain hook of $group (nodes terminate without the up-to-an-hour drain)"
  for instance in $(aws autoscaling describe-auto-scaling-groups --region "$region" --auto-scaling-group-names "$group" \
    --query "AutoScalingGroups[0].Instances[?LifecycleState=='Terminating:Wait'].InstanceId" --output text); do
    aws autoscaling complete-lifecycle-action --region "$region" --auto-scaling-group-name "$group" \
      --lifecycle-hook-name "$(fact drainHookName)" --instance-id "$instance" --lifecycle-action-result CONTINUE
  done
  aws autoscaling delete-lifecycle-hook --region "$region" --auto-scaling-group-name "$group" \
    --lifecycle-hook-name "$(fact drainHookName)"
fi

key=""
if [ "$(fact finalSnapshot)" = true ]; then
  key="$(aws kms describe-key --region "$region" --key-id "$(fact clusterKeyAlias)" \
    --query KeyMetadata.KeyId --output text 2>/dev/null || true)"
fi

log "destroy $(fact clusterStack)"
rc=0
npx cdktf destroy "$(fact clusterStack)" "${approve[@]}" || rc=$?
# Also after a failed destroy: the key may already be scheduled for deletion.
if [ -n "$key" ] && [ "$(aws kms describe-key --region "$region" --key-id "$key" \
  --query KeyMetadata.KeyState --output text)" = PendingDeletion ]; then
  aws kms cancel-key-deletion --region "$region" --key-id "$key" >/dev/null
  log "kept the cluster key $key (disabled): the final snapshot is encrypted with it"
fi
[ "$rc" -eq 0 ] || exit "$rc"

cat >&2 <<KEPT
Destroyed $(fact clusterStack). Kept:
  - the state stack $(fact stateStack) and its bucket $(fact stateBucket) (shared by every env; prevent_destroy)
$(if [ "$(fact finalSnapshot)" = true ]; then echo "  - the DB's final snapshot: aws rds describe-db-snapshots --region $region --snapshot-type manual --query \"DBSnapshots[?starts_with(DBSnapshotIdentifier, '$prefix-metadata-final-')].DBSnapshotIdentifier\""; fi)
$(if [ -n "$key" ]; then echo "  - its key $key, disabled: aws kms enable-key --region $region --key-id $key before restoring; aws kms schedule-key-deletion --region $region --key-id $key once the snapshot may go"; fi)
KEPT
