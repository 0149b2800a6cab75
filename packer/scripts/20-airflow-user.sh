#!/usr/bin/env bash
# The airflow system user and the fixed directory layout. AIRFLOW_UID/AIRFLOW_GID come from
# the settings contract (airflowUser), which also sets the EFS access point's POSIX user, so
# files on EFS are owned the same from every node.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "20-airflow-user: run as root" >&2; exit 1; }
: "${AIRFLOW_UID:?AIRFLOW_UID is required}" "${AIRFLOW_GID:?AIRFLOW_GID is required}"

getent group airflow >/dev/null || groupadd --system --gid "$AIRFLOW_GID" airflow
getent passwd airflow >/dev/null ||
  useradd --system --uid "$AIRFLOW_UID" --gid airflow --home-dir /var/lib/airflow --create-home \
    --shell /sbin/nologin --comment "Apache Airflow" airflow
[ "$(id -u airflow)" = "$AIRFLOW_UID" ] || { echo "20-airflow-user: airflow uid is $(id -u airflow), expected $AIRFLOW_UID" >&2; exit 1; }
[ "$(id -g airflow)" = "$AIRFLOW_GID" ] || { echo "20-airflow-user: airflow gid is $(id -g airflow), expected $AIRFLOW_GID" >&2; exit 1; }

install -d -o root -g root -m 0755 /opt/airflow /opt/airflow/bin /opt/airflow/bootstrap /mnt/efs
# config is root-owned (airflow cannot rewrite its own settings); secrets/ is root:airflow 0750
install -d -o root -g airflow -m 0750 /etc/airflow /etc/airflow/secrets
install -d -o airflow -g airflow -m 0750 /var/lib/airflow /var/log/airflow
echo "20-airflow-user: $(id airflow)"
