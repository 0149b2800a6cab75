"""The operator's side of the running e2e cluster, shared by the e2e test modules: SQL on the
metadata DB, node stop/replace (node.sh), unit logs and liveness, waiting, triggering a DAG."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import e2e_cluster as ec

NODE_SH = Path(__file__).parent / "node.sh"


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
