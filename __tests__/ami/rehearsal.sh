#!/usr/bin/env bash
# Local rehearsal of the golden AMI's node bootstrap on real engines: PostgreSQL 15 and
# Redis (Debian packages) on 127.0.0.1, the test venv (same lock as the AMI) as the
# installed prefix, and three "nodes" (scheduler, api-server, worker), each a directory
# tree standing in for / with the bootstrap's envfile settings source and its local
# launcher in place of systemd. Shows: health endpoints, `airflow jobs check`, Celery ping,
# and a DAG triggered over the REST API (JWT) that runs to success on the Celery worker.
# Everything runs on loopback and is torn down by the trap.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=55432 REDIS_PORT=56379 API_PORT=58080 HEALTH_PORT=58974 FLOWER_PORT=55555
for bin in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$(command -v redis-server || true)" "$VENV_DIR/bin/airflow"; do
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then die "rehearsal needs PostgreSQL 15 ($PG_BIN), redis-server and the test venv ($VENV_DIR)"; fi
done
for port in $PG_PORT $REDIS_PORT $API_PORT $HEALTH_PORT $FLOWER_PORT 58793 58794; do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port on 127.0.0.1 is already in use"; fi
done

PY="$VENV_DIR/bin/python"
WORK=$(mktemp -d /tmp/airflow-rehearsal.XXXXXX)
chmod 755 "$WORK"
NODES=(scheduler api-server worker)
ALL_NODES=("${NODES[@]}" migrator) # migrator: one more scheduler-role migration, no units
REHEARSAL_START=$SECONDS

teardown() {
  local rc=$?
  set +e
  for pid_file in "$WORK"/nodes/*/run/airflow/*.pid; do
    [ -f "$pid_file" ] && kill -TERM -- "-$(cat "$pid_file")" 2>/dev/null
  done
  sleep 3
  for pid_file in "$WORK"/nodes/*/run/airflow/*.pid; do
    [ -f "$pid_file" ] && kill -KILL -- "-$(cat "$pid_file")" 2>/dev/null
  done
  [ -f "$WORK/redis/redis.pid" ] && kill "$(cat "$WORK/redis/redis.pid")" 2>/dev/null
  [ -d "$WORK/pg" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
  if [ "$rc" -ne 0 ]; then
    echo "---- rehearsal failed; last lines of each log ----" >&2
    for f in "$WORK"/*.log "$WORK"/nodes/*/run/airflow/*.log; do
      [ -f "$f" ] && { echo "== $f" >&2; tail -n 25 "$f" >&2; }
    done
  fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap teardown EXIT INT TERM

secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
mkdir -p "$WORK/secrets" "$WORK/efs/dags" "$WORK/efs/plugins"
# Passwords with URL-special characters prove the renderer quotes them.
DB_PASSWORD="db+$(secret)/@:%"
REDIS_TOKEN="tok$(secret)"
ADMIN_PASSWORD="$(secret)"
FLOWER_PASSWORD="$(secret)"
printf '%s' "$DB_PASSWORD" >"$WORK/secrets/db-password"
printf '%s' "$REDIS_TOKEN" >"$WORK/secrets/redis-auth-token"
printf '%s' "$ADMIN_PASSWORD" >"$WORK/secrets/admin-password"
printf '%s' "$FLOWER_PASSWORD" >"$WORK/secrets/flower-password"
"$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode(), end="")' >"$WORK/secrets/fernet-key"
secret >"$WORK/secrets/jwt-secret"
secret >"$WORK/secrets/api-secret-key"
chmod 600 "$WORK"/secrets/*

log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT"
mkdir -p "$WORK/pg" "$WORK/pgsock" "$WORK/redis"
chown postgres "$WORK/pg" "$WORK/pgsock"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 >"$WORK/initdb.log"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK/pgsock -c fsync=off" \
  start >"$WORK/pg_ctl.log"
DB_PASSWORD_SQL=${DB_PASSWORD//\'/\'\'}
runuser -u postgres -- psql -q -h "$WORK/pgsock" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE airflow LOGIN PASSWORD '$DB_PASSWORD_SQL'" -c "CREATE DATABASE airflow OWNER airflow" >/dev/null
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --requirepass "$REDIS_TOKEN" --daemonize yes \
  --pidfile "$WORK/redis/redis.pid" --dir "$WORK/redis" --save '' --appendonly no \
  --logfile "$WORK/redis.log"

# Contract parameter keys -> local values (the SSM parameters' stand-in).
cat >"$WORK/settings.env" <<EOF
executor=CeleryExecutor
db/engine=postgres
db/endpoint=127.0.0.1
db/port=$PG_PORT
db/name=airflow
db/username=airflow
broker/endpoint=127.0.0.1
broker/port=$REDIS_PORT
efs/file-system-id=fs-0123456789abcdef0
efs/access-point-id=fsap-0123456789abcdef0
logs/remote-base-log-folder=s3://rehearsal-logs/airflow
artifacts/dags-uri=s3://rehearsal-artifacts/dags
api/base-url=http://127.0.0.1:$API_PORT
api/execution-api-url=http://127.0.0.1:$API_PORT/execution/
smtp/from-email=airflow@example.com
email/backend=smtp
smtp/host=127.0.0.1
scheduler/max-dagruns-to-create-per-loop=10
scheduler/max-dagruns-per-loop-to-schedule=20
scheduler/use-row-level-locking=True
scheduler/pool-metrics-interval=5
scheduler/orphaned-tasks-check-interval=300
core/allow-trigger-in-future=False
core/parallelism=16
celery/worker-concurrency=2
EOF
# Local-only overrides: loopback ports that do not clash, and nothing that would reach
# AWS (remote logging to S3, the Parameter Store secrets backend).
cat >"$WORK/overlay.ini" <<EOF
[api]
port = $API_PORT
host = 127.0.0.1
workers = 1
[scheduler]
scheduler_health_check_server_host = 127.0.0.1
scheduler_health_check_server_port = $HEALTH_PORT
[logging]
remote_logging = False
worker_log_server_port = 58793
trigger_log_server_port = 58794
[secrets]
backend =
[celery]
flower_host = 127.0.0.1
flower_port = $FLOWER_PORT
[dag_processor]
refresh_interval = 5
EOF
cp __tests__/ami/dags/rehearsal.py "$WORK/efs/dags/"

for name in "${ALL_NODES[@]}"; do
  role=${name/migrator/scheduler}
  node="$WORK/nodes/$name"
  mkdir -p "$node/mnt" "$node/run/airflow"
  ln -s "$WORK/efs" "$node/mnt/efs" # the shared EFS file system
  cat >"$node/node.env" <<EOF
AIRFLOW_ROLE=$role
AIRFLOW_PARAMETER_PREFIX=/airflow/rehearsal
AIRFLOW_SECRET_PREFIX=airflow/rehearsal
AWS_REGION=us-east-1
AIRFLOW_SETTINGS_REVISION=rehearsal-1
AIRFLOW_SETTINGS_SOURCE=envfile
AIRFLOW_SETTINGS_FILE=$WORK/settings.env
AIRFLOW_SECRETS_DIR=$WORK/secrets
AIRFLOW_NODE_ROOT=$node
AIRFLOW_VENV=$VENV_DIR
AIRFLOW_TLS=false
AIRFLOW_EFS_MOUNT=false
AIRFLOW_SERVICE_MANAGER=local
AIRFLOW_CONFIG_OVERLAY=$WORK/overlay.ini
AIRFLOW_MIGRATION_WAIT=300
AIRFLOW_SKIP_SERVE_LOGS=true
EOF
done

# All three nodes boot at once, as an ASG would: the scheduler migrates, the others wait.
# Meanwhile another process runs the scheduler role's migrate step on the same fresh
# database, as a second scheduler node booting at the same moment would (advisory lock).
log "bootstrapping ${NODES[*]} concurrently, with a second scheduler-role migration"
AIRFLOW_CONTRACT="$ROOT/config/settings-contract.json" \
  "$PY" __tests__/ami/concurrent_migrate.py "$WORK/nodes/migrator/node.env" 1 >"$WORK/migrator.log" 2>&1 &
MIGRATOR_PID=$!
declare -A BOOT_PID
for role in "${NODES[@]}"; do
  AIRFLOW_VENV="$VENV_DIR" BOOTSTRAP_LIB="$ROOT/packer/files/bootstrap" \
    AIRFLOW_CONTRACT="$ROOT/config/settings-contract.json" \
    bash packer/files/bootstrap/airflow-bootstrap --node-env "$WORK/nodes/$role/node.env" \
    >"$WORK/bootstrap-$role.log" 2>&1 &
  BOOT_PID[$role]=$!
done
for role in "${NODES[@]}"; do
  wait "${BOOT_PID[$role]}" || die "bootstrap of role $role failed (see $WORK/bootstrap-$role.log above)"
  grep -hE "migration lock held|database migrated|schema is current|wall time" "$WORK/bootstrap-$role.log" |
    sed "s/^airflow-bootstrap: /  [$role] /" >&2
done
wait "$MIGRATOR_PID" || die "concurrent migrations failed (see $WORK/migrator.log above)"
grep -h "^concurrent migrate" "$WORK/migrator.log" | sed 's/^/  [migrator] /' >&2
psql_q() { runuser -u postgres -- psql -qtA -h "$WORK/pgsock" -p "$PG_PORT" -U postgres -d airflow -c "$1"; }
[ "$(psql_q 'SELECT count(*) FROM alembic_version')" = 1 ] || die "alembic_version does not hold exactly one head"
[ "$(psql_q "SELECT count(*) FROM ab_user WHERE username = 'admin'")" = 1 ] || die "admin user not created exactly once"
log "ok: 2 concurrent migrations: one schema head, one admin user"

# secrets must not be in the rendered airflow.cfg, and their files must not be world-readable
for role in "${NODES[@]}"; do
  cfg="$WORK/nodes/$role/etc/airflow/airflow.cfg"
  for s in "$DB_PASSWORD" "$REDIS_TOKEN" "$ADMIN_PASSWORD" "$(cat "$WORK/secrets/fernet-key")"; do
    ! grep -qF -- "$s" "$cfg" || die "a secret value appears in $cfg"
  done
  [ -z "$(find "$WORK/nodes/$role/etc/airflow/secrets" -type f -perm /o=r)" ] || die "world-readable secret file on $role"
done
# the worker holds the broker token and the log-server key only (contract roleSecrets)
worker_files=$(find "$WORK/nodes/worker/etc/airflow/secrets" -type f -printf '%f\n' | sort | paste -sd' ')
[ "$worker_files" = "api_secret_key broker_url result_backend" ] || die "worker secret files: $worker_files"
log "ok: no secret value in any airflow.cfg; the worker holds only: $worker_files"

AF_ENV() { # AF_ENV ROLE CMD... -> run with that node's rendered environment (as its units do)
  local role=$1
  shift
  (
    set -a
    # shellcheck disable=SC1090  # rendered by the bootstrap
    source "$WORK/nodes/$role/etc/airflow/airflow.env"
    exec "$@"
  )
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

wait_for 180 "api-server /api/v2/monitor/health (metadatabase + scheduler healthy)" \
  bash -o pipefail -c "curl -fsS http://127.0.0.1:$API_PORT/api/v2/monitor/health | jq -e '.metadatabase.status==\"healthy\" and .scheduler.status==\"healthy\"'"
wait_for 120 "scheduler health endpoint :$HEALTH_PORT/health" curl -fsS "http://127.0.0.1:$HEALTH_PORT/health"
HOST=$(AF_ENV scheduler "$PY" -c 'from airflow.utils.net import get_hostname; print(get_hostname())' 2>/dev/null | tail -n1)
wait_for 120 "airflow jobs check DagProcessorJob on $HOST" \
  AF_ENV scheduler "$VENV_DIR/bin/airflow" jobs check --job-type DagProcessorJob --hostname "$HOST"
wait_for 120 "airflow jobs check TriggererJob on $HOST" \
  AF_ENV scheduler "$VENV_DIR/bin/airflow" jobs check --job-type TriggererJob --hostname "$HOST"
wait_for 120 "Celery worker answers ping" \
  AF_ENV worker "$VENV_DIR/bin/celery" --app airflow.providers.celery.executors.celery_executor.app inspect ping
wait_for 60 "flower answers (its own basic-auth password)" curl -fsS -u "admin:$FLOWER_PASSWORD" "http://127.0.0.1:$FLOWER_PORT/"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$FLOWER_PORT/")
[ "$code" = 401 ] || die "flower answered $code without credentials, expected 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$ADMIN_PASSWORD" "http://127.0.0.1:$FLOWER_PORT/")
[ "$code" = 401 ] || die "flower answered $code to the admin password, expected 401 (it has its own)"

# every server the rehearsal started listens on loopback only
wide=$(ss -ltnH | awk '{print $4}' | grep -E ':(55432|56379|55555|58080|58974|58793|58794|8793|8794)$' | grep -v '^127\.0\.0\.1:' || true)
[ -z "$wide" ] || die "servers listening beyond loopback: $wide"
log "ok: all rehearsal servers bound to 127.0.0.1"

TOKEN=$(jq -n --arg p "$ADMIN_PASSWORD" '{username:"admin",password:$p}' |
  curl -fsS -H 'Content-Type: application/json' -d @- "http://127.0.0.1:$API_PORT/auth/token" | jq -r .access_token)
if [ -z "$TOKEN" ] || [ "$TOKEN" = null ]; then die "no JWT from /auth/token for the admin user"; fi
api() { curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
wait_for 120 "DAG rehearsal parsed" api "http://127.0.0.1:$API_PORT/api/v2/dags/rehearsal"
api -X PATCH -d '{"is_paused": false}' "http://127.0.0.1:$API_PORT/api/v2/dags/rehearsal" >/dev/null
RUN_ID=$(api -X POST -d '{"logical_date": null}' "http://127.0.0.1:$API_PORT/api/v2/dags/rehearsal/dagRuns" | jq -r .dag_run_id)
log "triggered rehearsal run $RUN_ID"
run_state() { api "http://127.0.0.1:$API_PORT/api/v2/dags/rehearsal/dagRuns/$RUN_ID" | jq -r .state; }
start=$SECONDS
until [ "$(run_state)" = success ]; do
  state=$(run_state)
  [ "$state" != failed ] || die "DAG run $RUN_ID failed"
  [ $((SECONDS - start)) -lt 180 ] || die "DAG run $RUN_ID still '$state' after 180s"
  sleep 2
done
ran_on=$(cat "$WORK/efs/rehearsal-ran-on")
[ "$ran_on" = "worker $RUN_ID" ] || die "task ran on '$ran_on', expected 'worker $RUN_ID'"
log "ok: DAG run $RUN_ID succeeded on the Celery worker node ($((SECONDS - start))s)"
log "rehearsal passed in $((SECONDS - REHEARSAL_START))s"
