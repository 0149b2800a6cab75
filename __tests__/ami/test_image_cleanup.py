"""The bake's cleanup and its check, without an instance: packer/scripts/80-cleanup.sh and
90-validate.sh's cleanup checks run with IMAGE_ROOT on a throwaway tree that holds what a
builder instance leaves behind (its machine id, SSH keys, cloud-init state, logs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ami_support import ROOT

CLEANUP = ROOT / "packer" / "scripts" / "80-cleanup.sh"
VALIDATE = ROOT / "packer" / "scripts" / "90-validate.sh"
BUILDER_ID = "0123456789abcdef0123456789abcdef"

# What must not reach the image: root-relative path -> content on the builder.
BUILDER_ONLY = {
    "etc/hostname": "ip-10-0-1-23.ec2.internal\n",
    "etc/ssh/ssh_host_ed25519_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAAC3Nz host\n",
    "etc/ssh/ssh_host_rsa_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    "home/ec2-user/.ssh/authorized_keys": "ssh-rsa AAAAB3Nz packer_builder\n",
    "root/.ssh/authorized_keys": "ssh-rsa AAAAB3Nz packer_builder\n",
    "var/lib/dbus/machine-id": BUILDER_ID + "\n",
    "var/lib/cloud/data/instance-id": "i-0builder\n",
    "var/lib/cloud/instances/i-0builder/user-data.txt": "#cloud-config\n",
    "var/lib/cloud/sem/config_scripts_per_once.once": "",
    "var/log/cloud-init.log": "builder boot\n",
    "etc/airflow/node.env": "AIRFLOW_ROLE=worker\n",
    "var/cache/dnf/amazonlinux.solv": "cache",
    "var/lib/dnf/history.sqlite": "history",
    "root/.cache/pip/http/x": "wheel",
    "var/tmp/pip-build-1/setup.py": "",
}
# What the image needs or a running service owns: left as it is.
KEPT = {
    "etc/ssh/sshd_config": "PasswordAuthentication no\n",
    "home/ec2-user/.bashrc": "# .bashrc\n",
    "var/lib/cloud/seed/README": "seed\n",
    "var/lib/cloud/scripts/per-boot/hello.sh": "#!/bin/sh\n",
    "var/tmp/systemd-private-1-chronyd.service-x/tmp/f": "in use",
    "var/log/journal/abc/system.journal": "journal",
}
LOGS = ("var/log/secure", "var/log/wtmp", "var/log/audit/audit.log", "var/log/dnf.log")


def _put(root: Path, rel: str, content: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # replaces a read-only file too (machine-id is 0444)
    path.write_text(content)


def _run(script: Path, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGE_ROOT": str(root)}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def builder(tmp_path) -> Path:
    """A root file system as the builder leaves it before the cleanup."""
    root = tmp_path / "image"
    for rel, content in {**BUILDER_ONLY, **KEPT}.items():
        _put(root, rel, content)
    for rel in LOGS:
        _put(root, rel, "Accepted publickey for ec2-user\n")
    _put(root, "etc/machine-id", BUILDER_ID + "\n")
    (root / "var/lib/cloud/instance").symlink_to("/var/lib/cloud/instances/i-0builder")
    return root


def _cleaned(builder: Path) -> Path:
    done = _run(CLEANUP, builder)
    assert done.returncode == 0, done.stderr
    return builder


def test_validate_refuses_the_builder_as_it_is(builder):
    done = _run(VALIDATE, builder)
    assert done.returncode == 1
    assert done.stderr == (
        f"90-validate: FAILED: /etc/machine-id holds '{BUILDER_ID}'; it must be empty so that"
        " each instance gets its own id\n"
    )


def test_cleanup_leaves_an_image_validate_accepts(builder):
    root = _cleaned(builder)
    left = [rel for rel in BUILDER_ONLY if (root / rel).exists() or (root / rel).is_symlink()]
    assert left == []
    assert not (root / "var/lib/cloud/instance").is_symlink()
    machine_id = root / "etc/machine-id"
    assert machine_id.read_text() == "" and oct(machine_id.stat().st_mode & 0o777) == "0o444"
    assert {rel: (root / rel).read_text() for rel in KEPT} == KEPT
    assert {rel: (root / rel).stat().st_size for rel in LOGS} == dict.fromkeys(LOGS, 0)

    done = _run(VALIDATE, root)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"90-validate: {root} is clean\n"


def test_validate_accepts_the_usual_dbus_link(builder):
    root = _cleaned(builder)
    (root / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    assert _run(VALIDATE, root).returncode == 0


@pytest.mark.parametrize(
    ("rel", "content", "message"),
    [
        ("etc/ssh/ssh_host_ecdsa_key", "key", "/etc/ssh/ssh_host_ecdsa_key is still in the image"),
        ("home/ec2-user/.ssh/authorized_keys", "ssh-rsa A", "/home/ec2-user/.ssh/authorized_keys is still"),
        ("home/airflow/.ssh/authorized_keys", "ssh-rsa A", "/home/airflow/.ssh/authorized_keys is still"),
        ("root/.ssh/authorized_keys", "ssh-rsa A", "/root/.ssh/authorized_keys is still in the image"),
        ("var/lib/cloud/instances/i-0builder/obj.pkl", "", "/var/lib/cloud/instances is still in the image"),
        ("var/lib/cloud/sem/x.once", "", "/var/lib/cloud/sem is still in the image"),
        ("etc/hostname", "ip-10-0-1-23\n", "/etc/hostname is still in the image"),
        ("etc/machine-id", BUILDER_ID, f"/etc/machine-id holds '{BUILDER_ID}'"),
        ("var/lib/dbus/machine-id", BUILDER_ID, "/var/lib/dbus/machine-id is a file"),
    ],
)
def test_validate_names_what_is_left_behind(builder, rel, content, message):
    root = _cleaned(builder)
    _put(root, rel, content)
    done = _run(VALIDATE, root)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("90-validate: FAILED: ")
    assert message in done.stderr


def test_validate_wants_the_machine_id_file_empty_not_absent(builder):
    root = _cleaned(builder)
    (root / "etc/machine-id").unlink()
    done = _run(VALIDATE, root)
    assert done.returncode == 1
    assert "/etc/machine-id is missing; it must be an empty file" in done.stderr


def test_a_dangling_cloud_init_instance_link_is_left_behind_too(builder):
    root = _cleaned(builder)
    (root / "var/lib/cloud/instance").symlink_to("/var/lib/cloud/instances/i-0gone")
    done = _run(VALIDATE, root)
    assert done.returncode == 1
    assert "/var/lib/cloud/instance is still in the image" in done.stderr


@pytest.mark.parametrize("script", [CLEANUP, VALIDATE], ids=["cleanup", "validate"])
def test_an_image_root_that_is_not_a_directory_is_refused(tmp_path, script):
    done = _run(script, tmp_path / "missing")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert f"IMAGE_ROOT '{tmp_path / 'missing'}' must be a directory other than /" in done.stderr
