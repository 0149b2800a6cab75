#!/usr/bin/env bash
# Checks the image before it is registered; any failure fails the build.
#
# IMAGE_ROOT=<dir> runs only the cleanup checks, on a copy of a root file system (the
# offline test, __tests__/ami/test_image_cleanup.py); unset, it checks the running builder.
set -euo pipefail
root=${IMAGE_ROOT:-}
fail() { echo "90-validate: FAILED: $*" >&2; exit 1; }

# What 80-cleanup.sh removes (it says why) is gone and the machine id is an empty file.
check_clean() {
  local id_file="$root/etc/machine-id" dbus_id="$root/var/lib/dbus/machine-id" f
  [ -f "$id_file" ] || fail "/etc/machine-id is missing; it must be an empty file (a fresh id at each boot, no first-boot presets)"
  [ ! -s "$id_file" ] || fail "/etc/machine-id holds '$(tr -d '\n' <"$id_file" | head -c 40)'; it must be empty so that each instance gets its own id"
  if [ -e "$dbus_id" ] && [ ! -L "$dbus_id" ]; then
    fail "/var/lib/dbus/machine-id is a file; systemd would copy the builder's id from it"
  fi
  for f in "$root"/etc/hostname "$root"/etc/ssh/ssh_host_* "$root"/root/.ssh/authorized_keys \
    "$root"/home/*/.ssh/authorized_keys "$root"/var/lib/cloud/{data,instance,instances,sem}; do
    if [ -e "$f" ] || [ -L "$f" ]; then
      fail "${f#"$root"} is still in the image; 80-cleanup.sh must remove it"
    fi
  done
}

if [ -n "$root" ]; then
  if [ ! -d "$root" ] || [ "$(realpath "$root")" = / ]; then
    fail "IMAGE_ROOT '$root' must be a directory other than /"
  fi
  check_clean
  echo "90-validate: $root is clean"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "90-validate: run as root" >&2; exit 1; }
: "${AIRFLOW_VERSION:?AIRFLOW_VERSION is required}" "${AIRFLOW_UID:?AIRFLOW_UID is required}"
VENV=/opt/airflow/venv

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
[ "$(id -u airflow)" = "$AIRFLOW_UID" ] || fail "airflow uid is $(id -u airflow), not $AIRFLOW_UID (settings contract airflowUser)"
command -v mount.efs >/dev/null || fail "amazon-efs-utils (mount.efs) missing"
[ -x /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl ] || fail "CloudWatch agent missing"
logrotate --debug /etc/logrotate.d/airflow-components >/dev/null 2>&1 || fail "logrotate config of the component logs"
grep -q "^StandardOutput=append:/var/log/airflow/scheduler.log" /etc/systemd/system/airflow-scheduler.service ||
  fail "airflow-scheduler.service does not append to the file the CloudWatch agent ships"
aws --version >/dev/null 2>&1 || fail "AWS CLI missing"
# IMDSv2 only: a token-less metadata request must be refused
code=$(curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/ || true)
[ "$code" = 401 ] || fail "IMDSv1 answered ($code); http_tokens=required expected"
[ ! -e /etc/airflow/node.env ] || fail "/etc/airflow/node.env baked into the image"
# last, so that nothing run above can have put back what the cleanup removed
check_clean
echo "90-validate: image ok (Airflow $got)"
