#!/usr/bin/env bash
# The pipeline end to end on a local multi-node Airflow cluster, built from the AMI's own
# parts (bootstrap, renderer, unit list, lock, settings contract), each node rendered by the
# real bootstrap from settings in a moto server's SSM and Secrets Manager:
#   api-1 (api-server + Flower), scheduler-1 and scheduler-2 (scheduler, dag-processor,
#   triggerer), worker-1 and worker-2 (Celery workers)
# on PostgreSQL 15 (TLS only) and Redis (TLS + AUTH), with a mail server that requires
# STARTTLS + AUTH. EMR runs in the moto server; its step executor is the one stand-in
# (__tests__/e2e/emr_stand_in.py: s3-dist-cp into a local HDFS path, spark-submit on Spark
# 3.5.6 / Python 3.9 as on emr-7.12.0). Everything listens on 127.0.0.1 only.
#
#   bash scripts/e2e.sh [--input CSV] [--output DIR] [--keep]
#     uploads CSV (default: the fixture) to s3://<data bucket>/champion/data/Mall_Customers.csv,
#     triggers DAG_1 over the REST API (JWT) and waits, copies the Parquet output into DIR,
#     prints one JSON line last (dag_1_state, dag_2_state, emr_cluster_state, email_subject,
#     rows, seconds, ...). Exit 0 iff DAG_1 succeeded and the output exists.
#     --keep leaves the cluster running (its work dir and how to stop it are printed).
#   bash scripts/e2e.sh --up          start the cluster, print its work dir, leave it running
#   bash scripts/e2e.sh --up --layout standalone   the same on one `standalone` node
#                                     (LocalExecutor), the benchmark's baseline
#   bash scripts/e2e.sh --down WORK   stop a kept cluster and remove its work dir
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

INPUT="$ROOT/__tests__/e2e/fixtures/Mall_Customers.csv"
OUTPUT="" KEEP=0 MODE=run LAYOUT=cluster
while [ $# -gt 0 ]; do
  case "$1" in
  --input) INPUT=${2:?--input needs a CSV file} && shift 2 ;;
  --output) OUTPUT=${2:?--output needs a directory} && shift 2 ;;
  --keep) KEEP=1 && shift ;;
  --up) MODE=up KEEP=1 && shift ;;
  --layout) LAYOUT=${2:?--layout needs cluster or standalone} && shift 2 ;;
  --down) MODE=down DOWN_WORK=${2:?--down needs the work dir} && shift 2 ;;
  *) die "unknown argument '$1'; usage: e2e.sh [--input CSV] [--output DIR] [--keep] | --up [--layout cluster|standalone] | --down WORK" ;;
  esac
done

REGION=us-east-1
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=57432 REDIS_PORT=57379 MOTO_PORT=57000 API_PORT=57080 FLOWER_PORT=57555 SMTP_PORT=57025
# UDP: where every node's Airflow sends statsd (the CloudWatch agent's listener on EC2); the
# metrics test listens there
STATSD_PORT=57125
declare -A HEALTH_PORT=([scheduler-1]=57974 [scheduler-2]=57975 [standalone-1]=57974)
case "$LAYOUT" in
cluster)
  NODES=(api-1 scheduler-1 scheduler-2 worker-1 worker-2) EXECUTOR=CeleryExecutor
  declare -A ROLE=([api-1]=api-server [scheduler-1]=scheduler [scheduler-2]=scheduler [worker-1]=worker [worker-2]=worker)
  ;;
standalone)
  NODES=(standalone-1) EXECUTOR=LocalExecutor
  declare -A ROLE=([standalone-1]=standalone)
  ;;
*) die "--layout $LAYOUT: must be cluster or standalone" ;;
esac
PORTS=("$PG_PORT" "$REDIS_PORT" "$MOTO_PORT" "$API_PORT" "$FLOWER_PORT" "$SMTP_PORT" 57974 57975)
PY="$VENV_DIR/bin/python"

# stop_cluster WORK: every process the cluster started, by process group / pid file
stop_cluster() {
  local work=$1 pid_file
  [ -d "$work" ] || return 0
  # a unit a test already killed has no process group left: kill failing is expected
  for pid_file in "$work"/nodes/*/run/airflow/*.pid "$work"/services/*.pid; do
    if [ -f "$pid_file" ]; then kill -TERM -- "-$(cat "$pid_file")" 2>/dev/null || true; fi
  done
  sleep 3
  for pid_file in "$work"/nodes/*/run/airflow/*.pid "$work"/services/*.pid; do
    if [ -f "$pid_file" ]; then kill -KILL -- "-$(cat "$pid_file")" 2>/dev/null || true; fi
  done
  if [ -f "$work/redis/redis.pid" ]; then kill "$(cat "$work/redis/redis.pid")" 2>/dev/null || true; fi
  if [ -d "$work/pg" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  return 0
}

if [ "$MODE" = down ]; then
  [ -f "$DOWN_WORK/cluster.env" ] || die "$DOWN_WORK is not an e2e work dir (no cluster.env)"
  stop_cluster "$DOWN_WORK"
  rm -rf "$DOWN_WORK"
  log "e2e cluster in $DOWN_WORK stopped and removed"
  exit 0
fi

# --- inputs and prerequisites, checked before anything starts ---------------------------
[ -f "$INPUT" ] || die "--input $INPUT: no such file (a CSV with the Mall_Customers header)"
INPUT=$(realpath "$INPUT")
for bin in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$(command -v redis-server || true)" "$PY" \
  "$(command -v openssl || true)" "$(command -v unshare || true)" "$VENV_DIR/bin/aws"; do
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    die "e2e needs PostgreSQL 15 ($PG_BIN), redis-server, openssl, unshare, the AWS CLI and the test venv ($VENV_DIR): run scripts/setup-system.sh and scripts/setup-python.sh"
  fi
done
for port in "${PORTS[@]}"; do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port on 127.0.0.1 is already in use (another e2e run?)"; fi
done
EMR_SPARK_VENV=$(bash scripts/setup-emr-spark.sh)

WORK=$(mktemp -d /tmp/airflow-e2e.XXXXXX)
chmod 755 "$WORK"
# a caller that may be killed before it can --down (scripts/test-e2e.sh) asks for the path
if [ -n "${E2E_WORK_RECORD:-}" ]; then echo "$WORK" >>"$E2E_WORK_RECORD"; fi
OUTPUT=${OUTPUT:-$WORK/output}
E2E_START=$SECONDS

# shellcheck disable=SC2317  # run by the EXIT trap
teardown() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ]; then
    echo "---- e2e failed; last lines of each log ----" >&2
    for f in "$WORK"/*.log "$WORK"/services/*.log "$WORK"/nodes/*/run/airflow/*.log; do
      [ -f "$f" ] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  if [ "$KEEP" = 1 ] && [ "$rc" -eq 0 ]; then
    log "cluster kept in $WORK; stop it with: bash scripts/e2e.sh --down $WORK"
  else
    stop_cluster "$WORK"
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap teardown EXIT INT TERM

# --- cluster.env: what node.sh, e2e_cluster.py and the tests read -----------------------
cat >"$WORK/cluster.env" <<EOF
E2E_WORK=$WORK
E2E_REGION=$REGION
E2E_MOTO_URL=http://127.0.0.1:$MOTO_PORT
E2E_PG_PORT=$PG_PORT
E2E_REDIS_PORT=$REDIS_PORT
E2E_API_PORT=$API_PORT
E2E_FLOWER_PORT=$FLOWER_PORT
E2E_SMTP_PORT=$SMTP_PORT
E2E_STATSD_PORT=$STATSD_PORT
E2E_PARAMETER_PREFIX=/airflow/e2e
E2E_SECRET_PREFIX=airflow/e2e
E2E_DATA_BUCKET=airflow-e2e-data
E2E_ARTIFACTS_BUCKET=airflow-e2e-artifacts
E2E_LOGS_BUCKET=airflow-e2e-logs
E2E_WORKER_CONCURRENCY=4
E2E_EXECUTOR=$EXECUTOR
E2E_LAYOUT=$LAYOUT
E2E_NODES="${NODES[*]}"
E2E_PG_BIN=$PG_BIN
EOF

# service NAME CMD...: a backing service in its own process group, logged, pid recorded
service() {
  local name=$1
  shift
  setsid "$@" >"$WORK/services/$name.log" 2>&1 </dev/null &
  echo $! >"$WORK/services/$name.pid"
}
wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -lt "$limit" ] || die "timed out after ${limit}s waiting for $what"
    sleep 2
  done
  log "ok: $what ($((SECONDS - start))s)"
}
mkdir -p "$WORK/services" "$WORK/tls" "$WORK/efs/dags" "$WORK/efs/plugins" "$WORK/emr"

log "e2e: local TLS certificate authority and a server certificate for 127.0.0.1"
(
  cd "$WORK/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=airflow-e2e-ca" \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.ext -out server.pem 2>/dev/null
  chmod 600 ./*.key
)

log "e2e: moto server (S3, EMR, SSM, Secrets Manager, SES) with the EMR step stand-in on :$MOTO_PORT"
service emr-stand-in "$PY" __tests__/e2e/emr_stand_in.py --port "$MOTO_PORT" --work "$WORK/emr" \
  --spark-venv "$EMR_SPARK_VENV" --region "$REGION"
wait_for 60 "moto server answers" grep -q "emr-stand-in ready" "$WORK/services/emr-stand-in.log"
"$PY" __tests__/e2e/e2e_cluster.py seed --work "$WORK"

log "e2e: PostgreSQL 15 (TLS only) on :$PG_PORT, Redis (TLS + AUTH) on :$REDIS_PORT, SMTP (STARTTLS + AUTH) on :$SMTP_PORT"
mkdir -p "$WORK/pg" "$WORK/pgsock" "$WORK/redis"
install -o postgres -m 600 "$WORK/tls/server.key" "$WORK/pgsock/server.key"
install -o postgres -m 644 "$WORK/tls/server.pem" "$WORK/pgsock/server.pem"
chown postgres "$WORK/pg" "$WORK/pgsock"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth-local=trust >"$WORK/initdb.log"
# RDS requires TLS (rds.force_ssl): TCP clients get hostssl only
printf 'local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n' >"$WORK/pg/pg_hba.conf"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK/pgsock -c fsync=off -c ssl=on -c ssl_cert_file=$WORK/pgsock/server.pem -c ssl_key_file=$WORK/pgsock/server.key -c max_connections=300" \
  start >"$WORK/pg_ctl.log"
DB_PASSWORD_SQL=$(sed "s/'/''/g" "$WORK/harness/db-password")
runuser -u postgres -- psql -q -h "$WORK/pgsock" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE airflow LOGIN PASSWORD '$DB_PASSWORD_SQL'" -c "CREATE DATABASE airflow OWNER airflow" >/dev/null
# the AUTH token goes in a root-only config file, never on a command line
install -m 600 /dev/null "$WORK/redis/redis.conf"
cat >"$WORK/redis/redis.conf" <<EOF
bind 127.0.0.1
port 0
tls-port $REDIS_PORT
tls-cert-file $WORK/tls/server.pem
tls-key-file $WORK/tls/server.key
tls-ca-cert-file $WORK/tls/ca.pem
tls-auth-clients no
requirepass $(cat "$WORK/harness/redis-auth-token")
daemonize yes
pidfile $WORK/redis/redis.pid
dir $WORK/redis
save ""
# queued Celery messages must survive the restart the fault test does, as on ElastiCache
# (whose replicas keep them); an append-only file is the single-node way to keep them
appendonly yes
logfile $WORK/redis.log
EOF
redis-server "$WORK/redis/redis.conf"
service smtp-sink "$PY" __tests__/e2e/smtp_sink_server.py --port "$SMTP_PORT" --mail-dir "$WORK/mail" \
  --cert "$WORK/tls/server.pem" --key "$WORK/tls/server.key" --login ses-smtp-user --password-file "$WORK/harness/smtp-password"
wait_for 30 "SMTP sink answers" grep -q "smtp sink ready" "$WORK/services/smtp-sink.log"

# --- the nodes --------------------------------------------------------------------------
CA_PATH=$("$PY" -c 'import sys; sys.path.insert(0, "packer/files/bootstrap"); from airflow_node.db_tls import RDS_CA_BUNDLE; print(RDS_CA_BUNDLE)')
for name in "${NODES[@]}"; do
  node="$WORK/nodes/$name"
  mkdir -p "$node/mnt" "$node/run/airflow" "$(dirname "$node$CA_PATH")"
  ln -s "$WORK/efs" "$node/mnt/efs" # the shared EFS file system
  cp "$WORK/tls/ca.pem" "$node$CA_PATH" # the baked RDS CA bundle's stand-in
  cat >"$node/node.env" <<EOF
AIRFLOW_ROLE=${ROLE[$name]}
AIRFLOW_PARAMETER_PREFIX=/airflow/e2e
AIRFLOW_SECRET_PREFIX=airflow/e2e
AWS_REGION=$REGION
AIRFLOW_SETTINGS_REVISION=e2e-1
AIRFLOW_SETTINGS_SOURCE=ssm
AIRFLOW_NODE_ROOT=$node
AIRFLOW_VENV=$VENV_DIR
AIRFLOW_TLS=true
AIRFLOW_EFS_MOUNT=false
AIRFLOW_SERVICE_MANAGER=local
AIRFLOW_CONFIG_OVERLAY=$node/overlay.ini
AIRFLOW_MIGRATION_WAIT=300
AIRFLOW_SKIP_SERVE_LOGS=true
EOF
  # Local-only overrides: loopback ports that do not clash between nodes on one machine, and
  # the timeouts the fault tests need (a SIGKILLed worker's task is declared dead after 30 s
  # instead of 5 min; a dead triggerer's triggers move after 20 s instead of 30 s).
  cat >"$node/overlay.ini" <<EOF
[core]
# one path on every node, as /mnt/efs/dags is on AWS: a DAG's fileloc is part of its
# serialized hash, so per-node paths make the two dag-processors flip its version forever
dags_folder = $WORK/efs/dags
[api]
port = $API_PORT
host = 127.0.0.1
workers = 2
[scheduler]
scheduler_health_check_server_host = 127.0.0.1
scheduler_health_check_server_port = ${HEALTH_PORT[$name]:-8974}
task_instance_heartbeat_timeout = 30
[triggerer]
triggerer_health_check_threshold = 20
[celery]
flower_host = 127.0.0.1
flower_port = $FLOWER_PORT
[dag_processor]
refresh_interval = 10
[metrics]
statsd_port = $STATSD_PORT
EOF
done

# airflow-dag-sync.timer's command, once (the local launcher runs no timers): deploy
# uploaded dags/ to the artifacts bucket, nodes sync it onto EFS.
AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_DEFAULT_REGION=$REGION "$VENV_DIR/bin/aws" s3 sync --delete --only-show-errors "s3://airflow-e2e-artifacts/dags" "$WORK/efs/dags"

log "e2e: bootstrapping ${NODES[*]} at once, as the Auto Scaling groups would"
declare -A BOOT_PID
for name in "${NODES[@]}"; do
  bash __tests__/e2e/node.sh boot "$WORK" "$name" >"$WORK/bootstrap-$name.log" 2>&1 &
  BOOT_PID[$name]=$!
done
for name in "${NODES[@]}"; do
  wait "${BOOT_PID[$name]}" || die "bootstrap of $name failed (see $WORK/bootstrap-$name.log above)"
  grep -hE "migration lock held|database migrated|schema is current|Execution API healthy|wall time" "$WORK/bootstrap-$name.log" |
    sed "s/^airflow-bootstrap: /  [$name] /" >&2
done

# shellcheck disable=SC2317  # called through wait_for
AF_ENV() { # AF_ENV NODE CMD... -> run with that node's rendered environment, as its units do
  local name=$1
  shift
  (
    set -a
    # shellcheck disable=SC1090  # rendered by the bootstrap
    source "$WORK/nodes/$name/etc/airflow/airflow.env"
    export SSL_CERT_FILE="$WORK/tls/ca.pem" AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" \
      AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    exec "$@"
  )
}
wait_for 240 "api-server health (metadatabase, scheduler, triggerer, dag processor healthy)" \
  bash -o pipefail -c "curl -fsS http://127.0.0.1:$API_PORT/api/v2/monitor/health | jq -e '[.metadatabase, .scheduler, .triggerer, .dag_processor] | map(.status == \"healthy\") | all'"
for name in "${NODES[@]}"; do
  case "${ROLE[$name]}" in scheduler | standalone) ;; *) continue ;; esac
  host=$(bash __tests__/e2e/node.sh hostname "$name")
  wait_for 120 "$name scheduler health :${HEALTH_PORT[$name]}" curl -fsS "http://127.0.0.1:${HEALTH_PORT[$name]}/health"
  for job in DagProcessorJob TriggererJob; do
    wait_for 120 "$name $job ($host)" AF_ENV "$name" airflow jobs check --job-type "$job" --hostname "$host"
  done
done
for name in "${NODES[@]}"; do
  [ "${ROLE[$name]}" = worker ] || continue
  host=$(bash __tests__/e2e/node.sh hostname "$name")
  wait_for 120 "$name Celery worker celery@$host answers ping" \
    AF_ENV "$name" celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d "celery@$host"
done
wide=$(ss -ltnH | awk '{print $4}' | grep -E ":($(
  IFS='|'
  echo "${PORTS[*]}"
))$" | grep -v '^127\.0\.0\.1:' || true)
[ -z "$wide" ] || die "servers listening beyond loopback: $wide"
log "e2e: cluster up in $((SECONDS - E2E_START))s (${#NODES[@]} nodes, all on 127.0.0.1)"

if [ "$MODE" = up ]; then
  echo "$WORK"
  exit 0
fi
status=0
"$PY" __tests__/e2e/e2e_cluster.py run --work "$WORK" --input "$INPUT" --output "$OUTPUT" || status=$?
exit "$status"
