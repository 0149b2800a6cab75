"""Shared constants of the AMI bootstrap tests (a uniquely named module, so it never
collides with another suite's conftest): paths, and a complete valid set of settings."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_LIB = ROOT / "packer" / "files" / "bootstrap"
CONTRACT_FILE = ROOT / "config" / "settings-contract.json"
PACKER_VARIABLES = ROOT / "packer" / "variables.pkr.hcl"
sys.path.insert(0, str(BOOTSTRAP_LIB))


FERNET = base64.urlsafe_b64encode(b"k" * 32).decode()

VALID_PARAMS = {
    "executor": "CeleryExecutor",
    "db/engine": "postgres",
    "db/endpoint": "airflow-db.abc123.us-east-1.rds.amazonaws.com",
    "db/port": "5432",
    "db/name": "airflow",
    "db/username": "airflow_admin",
    "broker/endpoint": "master.airflow-redis.abc123.use1.cache.amazonaws.com",
    "broker/port": "6379",
    "efs/file-system-id": "fs-0123456789abcdef0",
    "efs/access-point-id": "fsap-0fedcba9876543210",
    "logs/remote-base-log-folder": "s3://airflow-logs-123/task-logs",
    "artifacts/dags-uri": "s3://airflow-artifacts-123/dags",
    "api/base-url": "https://airflow.example.com",
    "api/execution-api-url": "http://internal-exec-123.elb.amazonaws.com:8080/execution/",
    "smtp/from-email": "noreply@example.com",
    # smtp, not the infra's default ses: with it every parameter here is required, so each
    # missing-parameter test applies; the ses backend has tests of its own
    "email/backend": "smtp",
    "smtp/host": "email-smtp.us-east-1.amazonaws.com",
    "scheduler/max-dagruns-to-create-per-loop": "11",
    "scheduler/max-dagruns-per-loop-to-schedule": "21",
    "scheduler/use-row-level-locking": "true",
    "scheduler/pool-metrics-interval": "7",
    "scheduler/orphaned-tasks-check-interval": "301",
    "core/allow-trigger-in-future": "False",
    "core/parallelism": "33",
    "celery/worker-concurrency": "9",
}
VALID_SECRETS = {
    "db-password": "p@ss:w/rd%?#",
    "redis-auth-token": "tok&en!with^chars",
    "fernet-key": FERNET,
    "jwt-secret": "jwt-secret-value-xyz",
    "api-secret-key": "api-secret-value-xyz",
    "admin-password": "admin-secret-value-xyz",
    "flower-password": "flower-secret-value-xyz",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_airflow_probe(probe: str, environment: dict, cwd) -> dict:
    """Runs PROBE (Python source that prints one JSON line last) under a rendered node's
    environment, without this process's AIRFLOW__ overrides, and returns that JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def packer_default(name: str) -> str:
    """The default of a string variable in packer/variables.pkr.hcl."""
    hcl = PACKER_VARIABLES.read_text()
    block = re.search(rf'^variable "{name}" \{{(.*?)^\}}', hcl, re.S | re.M)
    assert block, f"packer/variables.pkr.hcl declares no variable {name}"
    return re.search(r'^\s+default\s*=\s*"([^"]*)"', block.group(1), re.M).group(1)


def run_bootstrap(*args: str, env: dict[str, str] | None = None, timeout_seconds: int = 120):
    """packer/files/bootstrap/airflow-bootstrap with ARGS, run from this checkout (this venv,
    this package, this contract) in ENV (default: this process's environment)."""
    return subprocess.run(
        ["bash", str(BOOTSTRAP_LIB / "airflow-bootstrap"), *args],
        capture_output=True,
        text=True,
        env={
            **(os.environ if env is None else env),
            "AIRFLOW_VENV": str(Path(sys.executable).parent.parent),
            "BOOTSTRAP_LIB": str(BOOTSTRAP_LIB),
            "AIRFLOW_CONTRACT": str(CONTRACT_FILE),
        },
        timeout=timeout_seconds,
    )
