#!/usr/bin/env bash
# Pipeline stage: the EMR DAGs and the Spark sort job, for real where it can be real.
#   - DagBag integrity / structure / no-boto3 checks over dags/
#   - dag.test() runs of DAG_1 and DAG_2 against a moto server (127.0.0.1:55000) with EMR
#     steps driven to COMPLETED/FAILED, sqlite metadata DB, outcome e-mail caught by an SMTP
#     sink (127.0.0.1:55025)
#   - the Spark job on local PySpark, and through spark-submit + s3a against moto
# Servers live inside the pytest process; the trap ends that process group however we exit.
# Extra arguments go to pytest (e.g. -k spark, -x).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ -x "$VENV_DIR/bin/python" ] || die "no test venv at $VENV_DIR (run scripts/setup-python.sh)"
command -v java >/dev/null || die "Java 17 is required by PySpark (run scripts/setup-system.sh)"
for port in 55000 55025; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "127.0.0.1:$port is already in use; the pipeline tests need it for the moto server / SMTP sink"
  fi
done

SPARK_JARS_DIR="$(bash scripts/fetch-spark-jars.sh)"
export SPARK_JARS_DIR

SECONDS=0
# Own process group, so the trap can stop pytest and everything it started (Spark JVMs,
# the DAG_1 runner) by that one id.
setsid "$VENV_DIR/bin/python" -m pytest -c config/pytest.ini __tests__/pipeline "$@" &
pytest_pid=$!
stop_tests() { kill -- "-$pytest_pid" 2>/dev/null || true; }
trap stop_tests EXIT INT TERM
status=0
wait "$pytest_pid" || status=$?
[ "$status" -eq 0 ] || die "pipeline tests failed (exit $status) after ${SECONDS}s"
log "pipeline tests passed in ${SECONDS}s"
