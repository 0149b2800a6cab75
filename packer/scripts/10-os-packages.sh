#!/usr/bin/env bash
# OS packages for an Airflow node on Amazon Linux 2023: Python 3.11 (+ headers and a
# compiler for the few sdists in the lock, mysqlclient needs mariadb-connector-c-devel and
# pkgconf), EFS mount helper (TLS via stunnel), CloudWatch agent, AWS CLI v2, jq, logrotate
# (the component log files the agent ships).
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "10-os-packages: run as root" >&2; exit 1; }
grep -q 'Amazon Linux.*2023' /etc/os-release || { echo "10-os-packages: expects Amazon Linux 2023" >&2; exit 1; }

# Security and bug fixes of the release the source AMI is locked to (AL2023 repos are versioned).
dnf -y -q upgrade
dnf -y -q install \
  python3.11 python3.11-devel python3.11-pip \
  gcc make mariadb-connector-c-devel pkgconf-pkg-config \
  amazon-efs-utils amazon-cloudwatch-agent awscli-2 jq logrotate \
  amazon-ssm-agent chrony
# Session Manager access (no inbound SSH) and time sync: JWTs between nodes need clocks in step.
systemctl enable amazon-ssm-agent chronyd
echo "10-os-packages: $(python3.11 --version), $(aws --version 2>&1 | cut -d' ' -f1)"
