#!/usr/bin/env bash
# One node of the local e2e cluster (scripts/e2e.sh), as an EC2 instance would run it: the
# real bootstrap (settings from moto's SSM and Secrets Manager -> airflow.cfg -> the role's
# units, started by its local launcher), in a UTS namespace of its own so that the node has
# its own host name (Celery node names, `airflow jobs check --hostname`, task hostnames).
#   node.sh boot WORK NAME               bootstrap NAME (its node.env is WORK/nodes/NAME/node.env)
#   node.sh stop WORK NAME [UNIT] [SIG]  signal the process groups of NAME's units (default
#                                        every unit, TERM), as a stopped instance would
#   node.sh replace WORK NAME            stop every unit of NAME, wait until they are gone, boot
#                                        it again (an ASG replacing the instance)
#   node.sh hostname NAME                the host name NAME runs under
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"

usage() { die "usage: node.sh boot WORK NAME | stop WORK NAME [UNIT] [SIGNAL] | replace WORK NAME | hostname NAME"; }
node_hostname() { echo "e2e-$1"; }

[ $# -ge 2 ] || usage
cmd=$1
if [ "$cmd" = hostname ]; then
  node_hostname "$2"
  exit 0
fi
[ $# -ge 3 ] || usage
WORK=$2 NAME=$3
NODE="$WORK/nodes/$NAME"
[ -f "$NODE/node.env" ] || die "no node $NAME under $WORK/nodes (node.env missing)"
[ -f "$WORK/cluster.env" ] || die "$WORK/cluster.env missing: start the cluster with scripts/e2e.sh"

case "$cmd" in
boot)
  # The process environment an instance has besides node.env: AWS endpoint and credentials
  # (the instance role's stand-in) and the local CA for TLS to PostgreSQL, Redis and SMTP.
  set -a
  # shellcheck disable=SC1091  # written by scripts/e2e.sh
  source "$WORK/cluster.env"
  set +a
  export AWS_ENDPOINT_URL="$E2E_MOTO_URL" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  export AWS_DEFAULT_REGION="$E2E_REGION" AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null
  export PATH="$VENV_DIR/bin:$PATH" # the AWS CLI (AL2023 bakes awscli-2)
  export SSL_CERT_FILE="$WORK/tls/ca.pem" NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
  export AIRFLOW_VENV="$VENV_DIR" BOOTSTRAP_LIB="$ROOT/packer/files/bootstrap"
  export AIRFLOW_CONTRACT="$ROOT/config/settings-contract.json"
  rm -f "$NODE/run/airflow-bootstrap.done"
  # shellcheck disable=SC2016  # expanded by the inner bash
  exec unshare --uts bash -c 'hostname "$1" && shift && exec "$@"' _ "$(node_hostname "$NAME")" \
    bash "$ROOT/packer/files/bootstrap/airflow-bootstrap" --node-env "$NODE/node.env"
  ;;
stop)
  unit=${4:-} sig=${5:-TERM}
  shopt -s nullglob
  if [ -n "$unit" ]; then
    pids=("$NODE/run/airflow/$unit.pid")
    [ -f "${pids[0]}" ] || pids=()
  else
    pids=("$NODE"/run/airflow/*.pid)
  fi
  [ ${#pids[@]} -gt 0 ] || die "node $NAME has no running unit ${unit:-}"
  for pid_file in "${pids[@]}"; do
    kill "-$sig" -- "-$(cat "$pid_file")" 2>/dev/null || true
  done
  ;;
replace)
  shopt -s nullglob
  for pid_file in "$NODE"/run/airflow/*.pid; do
    kill -TERM -- "-$(cat "$pid_file")" 2>/dev/null || true
  done
  for _ in $(seq 60); do
    alive=0
    for pid_file in "$NODE"/run/airflow/*.pid; do
      kill -0 -- "-$(cat "$pid_file")" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  for pid_file in "$NODE"/run/airflow/*.pid; do
    kill -KILL -- "-$(cat "$pid_file")" 2>/dev/null || true
  done
  exec bash "$0" boot "$WORK" "$NAME"
  ;;
*) usage ;;
esac
