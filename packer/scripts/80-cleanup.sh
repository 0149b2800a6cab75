#!/usr/bin/env bash
# Leave nothing instance-specific or build-only in the image.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "80-cleanup: run as root" >&2; exit 1; }
: "${BUILD_DIR:?BUILD_DIR is required}"

rm -rf "$BUILD_DIR" /root/.cache/pip /var/cache/dnf/*
dnf -y -q clean all
# a baked node.env would make the bootstrap run with the builder's settings
rm -f /etc/airflow/node.env /etc/airflow/airflow.cfg /etc/airflow/airflow.env /etc/airflow/secrets/*
# first boot of each instance must run cloud-init (user-data) afresh
cloud-init clean --logs
find /var/log -type f \( -name '*.log' -o -name 'messages' \) -exec truncate -s 0 {} +
journalctl --rotate --vacuum-time=1s >/dev/null 2>&1 || true
echo "80-cleanup: done"
