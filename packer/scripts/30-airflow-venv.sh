#!/usr/bin/env bash
# Airflow venv at the fixed prefix /opt/airflow/venv, installed from the committed
# requirements.lock with hashes only (--no-deps: the lock is the complete closure).
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "30-airflow-venv: run as root" >&2; exit 1; }
: "${BUILD_DIR:?BUILD_DIR is required}" "${AIRFLOW_VERSION:?AIRFLOW_VERSION is required}"
LOCK="$BUILD_DIR/requirements.lock"
VENV=/opt/airflow/venv
[ -f "$LOCK" ] || { echo "30-airflow-venv: $LOCK was not uploaded" >&2; exit 1; }
grep -q "^apache-airflow==$AIRFLOW_VERSION " "$LOCK" ||
  { echo "30-airflow-venv: requirements.lock does not pin apache-airflow==$AIRFLOW_VERSION (variable airflow_version)" >&2; exit 1; }

SECONDS=0
rm -rf "$VENV"
python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
  --no-deps --require-hashes -r "$LOCK"
"$VENV/bin/python" -m pip check
chown -R root:root "$VENV" # read-only for the airflow user
echo "30-airflow-venv: installed $(grep -c '^[a-z0-9]' "$LOCK") pinned packages in ${SECONDS}s"
