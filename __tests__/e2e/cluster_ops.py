"""The operator's side of the running e2e cluster, shared by the e2e test modules: SQL on the
metadata DB, node stop/replace (node.sh), unit logs and liveness, waiting, triggering a DAG,
running a node's timer-driven unit once, and the loopback IMDS stub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import e2e_cluster as ec

NODE_SH = Path(__file__).parent / "node.sh"
BOOTSTRAP_LIB = ec.ROOT / "packer/files/bootstrap"
IMDS_STUB = ec.ROOT / "__tests__/ami/imds_stub.py"
sys.path.insert(0, str(BOOTSTRAP_LIB))
sys.path.insert(0, str(IMDS_STUB.parent))
# the loopback IMDS stand-in's helpers (serving, the instance's files, its requests, the
# moto group), re-exported for the tests
from imds_stub import moto_autoscaling_group, recorded, serving, write_instance  # noqa: E402, F401


def sql(cluster: ec.Cluster, query: str, **params: str) -> list[list[str]]:
    """Rows of a query on the metadata DB, as an operator would look (never from a task).
    Parameters are psql variables, quoted by psql (:'name')."""
    out = subprocess.run(
        [
            *("runuser", "-u", "postgres", "--", f"{cluster.env['E2E_PG_BIN']}/psql"),
            *("-h", str(cluster.work / "pgsock"), "-p", cluster.env["E2E_PG_PORT"]),
            *("-U", "postgres", "-d", "airflow", "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1"),
            *(arg for k, v in params.items() for arg in ("-v", f"{k}={v}")),
        ],
        input=query,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def node_of(hostname: str) -> str:
    return hostname.removeprefix("e2e-")


def node(cluster: ec.Cluster, *args: str) -> None:
    subprocess.run(["bash", str(NODE_SH), args[0], str(cluster.work), *args[1:]], check=True)


def unit_log(cluster: ec.Cluster, name: str, unit: str) -> Path:
    return cluster.work / "nodes" / name / "run" / "airflow" / f"{unit}.log"


def unit_alive(cluster: ec.Cluster, name: str, unit: str) -> bool:
    pid_file = cluster.work / "nodes" / name / "run" / "airflow" / f"{unit}.pid"
    try:
        os.killpg(int(pid_file.read_text()), 0)
        return True
    except (ProcessLookupError, FileNotFoundError):
        return False


def wait_until(what: str, check, timeout_seconds: float = 180, every_seconds: float = 2):
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds:.0f}s waiting for {what}")
        time.sleep(every_seconds)


def log_says_after(path: Path, offset: int, needle: str) -> bool:
    if not path.exists():
        return False
    with path.open("rb") as fh:
        fh.seek(offset)
        return needle.encode() in fh.read()


def replace_node(cluster: ec.Cluster, name: str, ready: dict[str, str]) -> None:
    """Replace NAME (stop, boot again) and wait until each {unit: log line} shows up anew."""
    offsets = {unit: unit_log(cluster, name, unit).stat().st_size for unit in ready}
    node(cluster, "replace", name)
    for unit, needle in ready.items():
        path = unit_log(cluster, name, unit)
        wait_until(
            f"{name} {unit} logs {needle!r}",
            lambda p=path, u=unit, n=needle: log_says_after(p, offsets[u], n),
        )


WORKER_READY = {"airflow-celery-worker.service": " ready."}
SCHEDULER_READY = {
    "airflow-scheduler.service": "Starting the scheduler",
    "airflow-triggerer.service": "Starting the triggerer",
}


def trigger(cluster: ec.Cluster, dag_id: str, conf: dict | None = None) -> str:
    token = cluster.token()
    ec.wait_parsed(cluster, dag_id, token)
    run = cluster.api(
        "POST", f"dags/{dag_id}/dagRuns", token, json={"logical_date": None, "conf": conf or {}}
    )
    return run["dag_run_id"]


def unit_env(cluster: ec.Cluster, name: str) -> dict[str, str]:
    """The environment NAME's units run with: what node.sh gives the instance (the moto
    endpoint and test credentials standing in for the instance role, the local CA), then the
    rendered airflow.env (systemd's EnvironmentFile=)."""
    from airflow_node.units import parse_environment_file

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "PYTHON"))}
    env.update(
        AWS_ENDPOINT_URL=cluster.moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's dummy credentials
        AWS_DEFAULT_REGION=cluster.region,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        SSL_CERT_FILE=str(cluster.work / "tls/ca.pem"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(parse_environment_file(cluster.work / "nodes" / name / "etc/airflow/airflow.env"))
    return env


def run_unit(
    cluster: ec.Cluster,
    name: str,
    unit_name: str,
    extra_env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout_seconds: float = 300,
) -> subprocess.CompletedProcess:
    """One run of a oneshot unit on NAME, as its timer would start it (the local launcher runs
    no timers): the unit's own command line from units.py with its Environment= lines, the
    baked paths mapped to this checkout, under NAME's host name (node.sh's UTS namespace).
    extra_env: a test's stand-ins (e.g. a `systemctl` first on PATH, a loopback IMDS); args:
    appended, for options whose defaults are baked paths (the local node's files live under
    its AIRFLOW_NODE_ROOT)."""
    from airflow_node import contract
    from airflow_node.units import BOOTSTRAP_LIB as NODE_BOOTSTRAP_LIB
    from airflow_node.units import DRAIN_BIN, UNITS, executable

    unit = UNITS[unit_name]
    node_env = unit_env(cluster, name)
    env = dict(node_env)
    for line in unit.extra_service:
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value.replace(NODE_BOOTSTRAP_LIB, str(BOOTSTRAP_LIB))
    env.update(extra_env or {})
    venv = Path(node_env["PATH"].split(":")[0]).parent  # airflow.env puts the venv's bin first
    baked = {DRAIN_BIN: str(BOOTSTRAP_LIB / Path(DRAIN_BIN).name)}
    exe = executable(unit.argv[0], str(venv))
    drain_hook = contract.load().drain_hook
    argv = [baked.get(exe, exe), *(a.replace("@DRAIN_HOOK@", drain_hook) for a in unit.argv[1:])]
    return subprocess.run(
        [
            *("unshare", "--uts", "bash", "-c", 'hostname "$1" && shift && exec "$@"', "_"),
            f"e2e-{name}",
            *argv,
            *args,
        ],
        env=env,
        cwd=env["AIRFLOW_HOME"],
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
    )
