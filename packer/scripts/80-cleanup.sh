#!/usr/bin/env bash
# Leave nothing instance-specific or build-only in the image, after amazon-eks-ami's
# templates/al2023/provisioners/cleanup.sh: every instance must get its own machine id, SSH
# host keys and cloud-init run, and no builder login may survive. 90-validate.sh checks it.
#
# IMAGE_ROOT=<dir> applies only the file removals, to a copy of a root file system (the
# offline test, __tests__/ami/test_image_cleanup.py); unset, it cleans the running builder.
set -euo pipefail
root=${IMAGE_ROOT:-}
if [ -n "$root" ]; then
  if [ ! -d "$root" ] || [ "$(realpath "$root")" = / ]; then
    echo "80-cleanup: IMAGE_ROOT '$root' must be a directory other than /" >&2
    exit 1
  fi
else
  [ "$(id -u)" -eq 0 ] || { echo "80-cleanup: run as root" >&2; exit 1; }
  : "${BUILD_DIR:?BUILD_DIR is required}"
  # Packer may get in before cloud-init's final stage is done; it would write its state back.
  # Only the waiting matters here, not its verdict on the builder's own boot.
  cloud-init status --wait >/dev/null || true
  rm -rf "$BUILD_DIR"
  dnf -y -q clean all
fi

# a baked node.env would make the bootstrap run with the builder's settings
rm -f "$root"/etc/airflow/node.env "$root"/etc/airflow/airflow.cfg "$root"/etc/airflow/airflow.env \
  "$root"/etc/airflow/secrets/*

# Machine id: an EMPTY file, not an absent one. systemd (machine-id(5)) generates a fresh id
# at a boot that finds the file empty, mounts it over the file and commits it to disk
# (systemd-machine-id-commit.service), so each instance gets its own. An absent file would
# also do that but makes the boot a "first boot": ConditionFirstBoot units run and systemd
# applies the preset policy, enabling units this bake left disabled (machine-id(5)
# recommends the empty file for images; amazon-eks-ami ships it empty too).
: >"$root"/etc/machine-id
chmod 0444 "$root"/etc/machine-id
# systemd takes the id from D-Bus's copy when that is a real file (a link to
# /etc/machine-id is the norm and harmless): it would hand every instance the builder's id.
dbus_id="$root"/var/lib/dbus/machine-id
[ -L "$dbus_id" ] || rm -f "$dbus_id"

# The hostname is cloud-init's to set from the instance's metadata (before the bootstrap
# runs: airflow-bootstrap.service is After=cloud-final.service). /etc/resolv.conf stays:
# systemd-resolved owns it on AL2023, and 90-validate still runs over this network.
rm -f "$root"/etc/hostname
# sshd-keygen makes new host keys at boot when none exist; cloud-init installs the
# launching key pair. The builder's temporary key must not open any instance.
rm -f "$root"/etc/ssh/ssh_host_* "$root"/root/.ssh/authorized_keys "$root"/home/*/.ssh/authorized_keys
# Cloud-init state (what `cloud-init clean --logs` removes, keeping seed/ and scripts/):
# without an instances/ record for the next instance id, cloud-init runs user-data afresh.
rm -rf "$root"/var/lib/cloud/data "$root"/var/lib/cloud/instance "$root"/var/lib/cloud/instances \
  "$root"/var/lib/cloud/sem "$root"/var/log/cloud-init.log "$root"/var/log/cloud-init-output.log
rm -rf "$root"/root/.cache/pip "$root"/var/cache/dnf/* "$root"/var/lib/dnf/history*
# /tmp is a tmpfs on AL2023 (nothing of it is in the snapshot); /var/tmp is on disk. The
# systemd-private-* directories belong to services still running on the builder.
find "$root"/var/tmp -mindepth 1 -maxdepth 1 ! -name 'systemd-private-*' -exec rm -rf {} +
# Logs are emptied, not removed: daemons still running (auditd) keep them open, and each
# keeps its owner, mode and SELinux label. The journal is vacuumed below, not truncated.
find "$root"/var/log -path "$root"/var/log/journal -prune -o -type f -exec truncate -s 0 {} +
if [ -z "$root" ]; then
  journalctl --rotate --vacuum-time=1s >/dev/null 2>&1 || true
fi
echo "80-cleanup: done"
