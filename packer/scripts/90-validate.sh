#!/usr/bin/env bash
# Checks the image before it is registered; any failure fails the build.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "90-validate: run as root" >&2; exit 1; }
: "${AIRFLOW_VERSION:?AIRFLOW_VERSION is required}"
VENV=/opt/airflow/venv
fail() { echo "90-validate: FAILED: $*" >&2; exit 1; }

# Airflow itself, run as the airflow user with a throwaway home (no config baked in)
tmp_home=$(mktemp -d)
chown airflow:airflow "$tmp_home"
got=$(runuser -u airflow -- env AIRFLOW_HOME="$tmp_home" "$VENV/bin/airflow" version 2>/dev/null | tail -n1)
rm -rf "$tmp_home"
[ "$got" = "$AIRFLOW_VERSION" ] || fail "airflow version is '$got', expected $AIRFLOW_VERSION"

# providers and DB/broker drivers import
"$VENV/bin/python" - <<'PY' || fail "provider/driver imports"
import importlib
for mod in ("airflow.providers.amazon", "airflow.providers.celery.executors.celery_executor",
            "airflow.providers.mysql", "airflow.providers.postgres", "airflow.providers.fab.auth_manager.fab_auth_manager",
            "airflow.providers.smtp", "airflow.providers.amazon.aws.secrets.systems_manager",
            "MySQLdb", "psycopg2", "asyncpg", "aiomysql", "redis"):
    importlib.import_module(mod)
print("90-validate: imports ok")
PY

# every unit file parses and references existing binaries
units=(/etc/systemd/system/airflow-*.service /etc/systemd/system/airflow-*.timer)
[ "${#units[@]}" -ge 11 ] || fail "expected 11 airflow units, found ${#units[@]}"
systemd-analyze verify "${units[@]}" || fail "systemd-analyze verify"
systemctl is-enabled --quiet airflow-bootstrap.service || fail "airflow-bootstrap.service is not enabled"
grep -q "^TimeoutStopSec=[0-9]" /etc/systemd/system/airflow-celery-worker.service || fail "worker TimeoutStopSec missing"
grep -q "^ExecStart=/opt/airflow/bin/airflow-worker-drain --hook [A-Za-z0-9_/-]" /etc/systemd/system/airflow-worker-drain.service ||
  fail "airflow-worker-drain.service has no hook name"
[ -x /opt/airflow/bin/airflow-worker-drain ] || fail "/opt/airflow/bin/airflow-worker-drain missing"

# the RDS CA bundle the database TLS verifies against (airflow_node/db_tls.py)
ca=$(PYTHONPATH=/opt/airflow/bootstrap "$VENV/bin/python" -m airflow_node.db_tls path)
PYTHONPATH=/opt/airflow/bootstrap "$VENV/bin/python" -m airflow_node.db_tls check "$ca" || fail "RDS CA bundle $ca"

# the bootstrap starts and, without user-data, fails with its message (not a traceback)
out=$(/opt/airflow/bin/airflow-bootstrap --node-env /nonexistent 2>&1) && fail "bootstrap succeeded without node.env"
grep -q "node env file /nonexistent is unreadable" <<<"$out" || fail "unexpected bootstrap output: $out"

# system pieces
[ "$(id -u airflow)" = 50000 ] || fail "airflow uid is not 50000"
command -v mount.efs >/dev/null || fail "amazon-efs-utils (mount.efs) missing"
[ -x /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl ] || fail "CloudWatch agent missing"
aws --version >/dev/null 2>&1 || fail "AWS CLI missing"
# IMDSv2 only: a token-less metadata request must be refused
code=$(curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/ || true)
[ "$code" = 401 ] || fail "IMDSv1 answered ($code); http_tokens=required expected"
[ ! -e /etc/airflow/node.env ] || fail "/etc/airflow/node.env baked into the image"
echo "90-validate: image ok (Airflow $got)"
