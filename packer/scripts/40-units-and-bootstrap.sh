#!/usr/bin/env bash
# The node bootstrap (+ its settings contract) and the systemd units, rendered from the
# bootstrap's own unit table (airflow_node/units.py) so the units and the local rehearsal
# launcher run the same commands. Only airflow-bootstrap.service is enabled: it starts
# the role's units after user-data has written /etc/airflow/node.env.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "40-units: run as root" >&2; exit 1; }
: "${BUILD_DIR:?BUILD_DIR is required}" "${WORKER_STOP_TIMEOUT:?WORKER_STOP_TIMEOUT is required}"
case "$WORKER_STOP_TIMEOUT" in '' | *[!0-9]*) echo "40-units: WORKER_STOP_TIMEOUT=$WORKER_STOP_TIMEOUT is not a number of seconds" >&2; exit 1 ;; esac
[ -d "$BUILD_DIR/bootstrap/airflow_node" ] || { echo "40-units: $BUILD_DIR/bootstrap was not uploaded" >&2; exit 1; }

rm -rf /opt/airflow/bootstrap/airflow_node
cp -r "$BUILD_DIR/bootstrap/airflow_node" /opt/airflow/bootstrap/
install -o root -g root -m 0644 "$BUILD_DIR/settings-contract.json" /opt/airflow/bootstrap/settings-contract.json
install -o root -g root -m 0755 "$BUILD_DIR/bootstrap/airflow-bootstrap" /opt/airflow/bin/airflow-bootstrap
# worker scale-in: warm Celery stop + lifecycle-hook completion (airflow-worker-drain.timer)
install -o root -g root -m 0755 "$BUILD_DIR/bootstrap/airflow-worker-drain" /opt/airflow/bin/airflow-worker-drain
chown -R root:root /opt/airflow/bootstrap
find /opt/airflow/bootstrap -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
/opt/airflow/venv/bin/python -m compileall -q /opt/airflow/bootstrap

PYTHONPATH=/opt/airflow/bootstrap /opt/airflow/venv/bin/python -m airflow_node.units render \
  /etc/systemd/system --worker-stop-timeout "$WORKER_STOP_TIMEOUT"
chmod 0644 /etc/systemd/system/airflow-*
# The services append to /var/log/airflow/<component>.log (the CloudWatch agent ships them):
# rotate in place, since systemd holds each file open in append mode.
install -o root -g root -m 0644 /dev/stdin /etc/logrotate.d/airflow-components <<'ROTATE'
/var/log/airflow/*.log {
    daily
    rotate 3
    maxsize 200M
    compress
    delaycompress
    copytruncate
    missingok
    notifempty
}
ROTATE
systemctl daemon-reload
systemctl enable airflow-bootstrap.service
echo "40-units: bootstrap installed; celery worker TimeoutStopSec=$WORKER_STOP_TIMEOUT"
