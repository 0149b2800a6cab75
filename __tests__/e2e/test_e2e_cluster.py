"""The pipeline end to end on the local multi-node cluster (scripts/e2e.sh --up), then faults
injected into that running cluster.

One cluster serves the whole session (conftest.py); the tests run in file
order and each leaves the cluster whole again (a killed node is replaced, as its Auto Scaling
group would). Timeouts set for these tests live in scripts/e2e.sh's node overlay:
``[scheduler] task_instance_heartbeat_timeout = 30`` (a SIGKILLed worker's task is declared
lost after 30 s, not 5 min) and ``[triggerer] triggerer_health_check_threshold = 20`` (a dead
triggerer's triggers move after 20 s).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import e2e_cluster as ec  # noqa: E402
from cluster_ops import (  # noqa: E402
    SCHEDULER_READY,
    WORKER_READY,
    node,
    node_of,
    replace_node,
    sql,
    trigger,
    unit_alive,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / ".artifacts"))
PIPELINE_TIMEOUT_SECONDS = 1200
REDIS_OUTAGE_SECONDS = 10
INT_COLUMNS = ("customer_id", "age", "annual_income_k_usd", "spending_score")

pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def success_run(cluster, tmp_path_factory):
    return ec.run_pipeline(
        cluster, FIXTURES / "Mall_Customers.csv", tmp_path_factory.mktemp("out"), PIPELINE_TIMEOUT_SECONDS
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --- the cluster as it boots -------------------------------------------------------------


def test_nodes_booting_at_once_run_one_migration(cluster):
    # GIVEN five nodes bootstrapped at the same moment, two of them schedulers (migrating roles)
    logs = {n: (cluster.work / f"bootstrap-{n}.log").read_text() for n in cluster.env["E2E_NODES"].split()}
    # THEN exactly one node migrated the schema and every other one found it current, but the
    # workers, which hold no database credentials: they waited for the Execution API instead
    migrated = [n for n, text in logs.items() if "database migrated" in text]
    assert len(migrated) == 1, f"nodes that ran the migration: {migrated}"
    workers = [n for n in logs if n.startswith("worker-")]
    assert all("database schema is current" in logs[n] for n in logs if n not in migrated + workers)
    assert all("Execution API healthy" in logs[n] and "schema" not in logs[n] for n in workers)
    assert sql(cluster, "SELECT count(*) FROM alembic_version") == [["1"]]


# --- the pipeline ------------------------------------------------------------------------


def test_success_path(cluster, success_run):
    # GIVEN the fixture CSV uploaded to the data bucket, WHEN a user triggers DAG_1 over the API
    r = success_run
    source = read_csv(FIXTURES / "Mall_Customers.csv")
    # THEN both DAGs succeeded, the EMR cluster is gone and the email says so
    assert (r["dag_1_state"], r["dag_2_state"]) == ("success", "success")
    assert r["emr_cluster_state"] == "TERMINATED"
    assert r["email_subject"] == f"[Airflow] {ec.DAG_1} SUCCESS: {r['dag_1_run_id']}"
    # AND the Parquet output holds every input row once, sorted by score then customer id
    rows = r["output_rows"]
    assert len(rows) == len(source)
    assert sorted(row["customer_id"] for row in rows) == sorted(int(s["CustomerID"]) for s in source)
    keys = [(row["spending_score"], row["customer_id"]) for row in rows]
    assert keys == sorted(keys)
    by_id = {int(s["CustomerID"]): s for s in source}
    for row in rows:
        assert row["spending_score"] == int(by_id[row["customer_id"]]["Spending Score (1-100)"])
    # AND the two dag-processors agree on the DAG: runs did not fork new versions of it
    assert sql(cluster, "SELECT count(*) FROM dag_version WHERE dag_id = :'d'", d=ec.DAG_1) == [["1"]]
    # AND with integer column types
    types = rows[0]["__types__"]
    assert {c: types[c] for c in INT_COLUMNS} == dict.fromkeys(INT_COLUMNS, "int"), types


def test_ui_in_headless_chromium(cluster, success_run):
    # GIVEN DAG_1's successful run, WHEN admin logs in to the UI in a real browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "e2e-ui-dag-1-runs.png"
    done = subprocess.run(
        ["node", str(Path(__file__).parent / "ui_login.js")],
        env={
            **os.environ,
            "UI_URL": cluster.api_url,
            "UI_USERNAME": "admin",
            "UI_PASSWORD": cluster.admin_password(),  # environment, never argv
            "UI_DAG_IDS": f"{ec.DAG_1},{ec.DAG_2}",
            "UI_RUN_ID": success_run["dag_1_run_id"],
            "UI_SCREENSHOT": str(screenshot),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # THEN the browser got past the login form, saw both DAGs and DAG_1's run as successful
    assert seen["logged_in"] is True
    assert seen["dags_visible"] == [ec.DAG_1, ec.DAG_2]
    assert seen["run_visible"] is True and seen["run_state"] == "success"
    assert screenshot.stat().st_size > 10_000


def test_failure_path(cluster, tmp_path):
    # GIVEN an input with a row whose Age is not a number
    r = ec.run_pipeline(
        cluster, FIXTURES / "Mall_Customers_bad_row.csv", tmp_path / "out", PIPELINE_TIMEOUT_SECONDS
    )
    # THEN the Spark step failed DAG_2, the cluster still ended TERMINATED, DAG_1 failed
    assert (r["dag_1_state"], r["dag_2_state"]) == ("failed", "failed")
    assert r["emr_cluster_state"] == "TERMINATED"
    assert r["rows"] == 0
    # AND the email says FAILED and names every task that failed in DAG_2
    assert r["email_subject"] == f"[Airflow] {ec.DAG_1} FAILED: {r['dag_1_run_id']}"
    token = cluster.token()
    failed = sorted(
        t for t, s in cluster.task_states(ec.DAG_2, r["dag_2_run_id"], token).items() if s == "failed"
    )
    assert failed, "DAG_2 failed without a failed task"
    body = r["email"].get_body(("html", "plain")).get_content()
    for task_id in failed:
        assert task_id in body, f"email body does not name {task_id}: {body}"


# --- faults ------------------------------------------------------------------------------


def test_sigkilled_worker_task_is_retried_on_the_other_worker(cluster):
    # GIVEN a task holding a worker slot
    run_id = trigger(cluster, "e2e_hold", {"hold_seconds": 45})
    token = cluster.token()

    def running_on():
        ti = cluster.api("GET", f"dags/e2e_hold/dagRuns/{run_id}/taskInstances/hold", token)
        return ti["state"] == "running" and ti["hostname"]

    first_host = wait_until("hold running", running_on)
    victim = node_of(first_host)
    try:
        # WHEN that worker's Celery process group is SIGKILLed (no chance to report anything)
        node(cluster, "stop", victim, "airflow-celery-worker.service", "KILL")
        wait_until(
            f"{victim} worker gone", lambda: not unit_alive(cluster, victim, "airflow-celery-worker.service")
        )
        state = cluster.wait_for_run("e2e_hold", run_id, 600)
        ti = cluster.api("GET", f"dags/e2e_hold/dagRuns/{run_id}/taskInstances/hold", cluster.token())
        # THEN the lost task was retried on the surviving worker and the run succeeded
        assert state == "success"
        assert ti["try_number"] >= 2
        assert ti["hostname"] not in ("", None, first_host)
        assert node_of(ti["hostname"]).startswith("worker-")
    finally:
        replace_node(cluster, victim, WORKER_READY)


def test_redis_restart_mid_run(cluster):
    # GIVEN a 200-task fan-out under way
    run_id = trigger(cluster, "e2e_fanout")
    token = cluster.token()

    def states() -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in ec.task_instances(cluster, "e2e_fanout", run_id, token)}

    def done_count() -> int:
        return sum(s == "success" for s in states().values())

    wait_until("10 fan-out tasks done", lambda: done_count() >= 10, timeout_seconds=300)
    # WHEN Redis restarts (it keeps its data on a graceful restart, as an ElastiCache primary's
    # replica does on failover)
    redis_pid = int((cluster.work / "redis" / "redis.pid").read_text())
    os.kill(redis_pid, 15)
    wait_until("Redis stopped", lambda: not Path(f"/proc/{redis_pid}").exists(), every_seconds=0.2)
    down_at = done_count()
    # the scheduler keeps queueing tasks meanwhile; an ElastiCache failover is seconds, not 0
    time.sleep(REDIS_OUTAGE_SECONDS)
    subprocess.run(["redis-server", str(cluster.work / "redis" / "redis.conf")], check=True)
    # THEN workers reconnect and every task runs, the queued ones included
    state = cluster.wait_for_run("e2e_fanout", run_id, 900)
    final = states()
    assert state == "success", {s: sum(v == s for v in final.values()) for s in set(final.values())}
    assert len(final) == 200 and set(final.values()) == {"success"}
    assert down_at < 200, "the fan-out finished before Redis restarted; the test proved nothing"


def test_killed_triggerer_hands_deferred_sensors_to_the_other_node(cluster, tmp_path):
    # GIVEN DAG_1 waiting for DAG_2 with a deferred sensor held by one node's triggerer
    fault: dict = {}

    def holder(run_id: str) -> str | None:
        rows = sql(
            cluster,
            "SELECT j.hostname FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "JOIN job j ON j.id = t.triggerer_id "
            "WHERE ti.dag_id = :'dag_id' AND ti.task_id = 'wait_for_dag_2' AND ti.run_id = :'run_id'",
            dag_id=ec.DAG_1,
            run_id=run_id,
        )
        return rows[0][0] if rows else None

    def on_tick(seen):
        if seen.get(f"{ec.DAG_1}.wait_for_dag_2") != "deferred":
            return
        run_id = fault.setdefault("run_id", latest_run(cluster, ec.DAG_1))
        host = holder(run_id)
        if host and "killed" not in fault:
            # WHEN that triggerer is SIGKILLed
            fault["killed"] = host
            node(cluster, "stop", node_of(host), "airflow-triggerer.service", "KILL")
        elif host and host != fault.get("killed"):
            fault["taken_over_by"] = host

    r = ec.run_pipeline(
        cluster, FIXTURES / "Mall_Customers.csv", tmp_path / "out", PIPELINE_TIMEOUT_SECONDS, on_tick
    )
    try:
        # THEN the other node's triggerer took the trigger over and the pipeline finished
        assert "killed" in fault, "wait_for_dag_2 was never seen deferred on a triggerer"
        assert not unit_alive(cluster, node_of(fault["killed"]), "airflow-triggerer.service")
        assert fault.get("taken_over_by") not in (None, fault["killed"])
        assert (r["dag_1_state"], r["dag_2_state"], r["emr_cluster_state"]) == (
            "success",
            "success",
            "TERMINATED",
        )
    finally:
        if "killed" in fault:
            replace_node(cluster, node_of(fault["killed"]), SCHEDULER_READY)


def test_stopped_scheduler_node_leaves_the_run_to_the_other(cluster, tmp_path):
    # GIVEN a pipeline run that has just started DAG_2
    victim, survivor = "scheduler-1", "scheduler-2"
    fault: dict = {}

    def on_tick(seen):
        if "stopped_at" not in fault and seen.get(f"{ec.DAG_1}.trigger_dag_2") == "success":
            # WHEN one scheduler node stops (scheduler, dag-processor and triggerer all go)
            fault["stopped_at"] = sql(cluster, "SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS.US TZH')")[0][0]
            node(cluster, "stop", victim)

    r = ec.run_pipeline(
        cluster, FIXTURES / "Mall_Customers.csv", tmp_path / "out", PIPELINE_TIMEOUT_SECONDS, on_tick
    )
    # THEN the other node scheduled everything queued after the stop, and the run finished
    assert "stopped_at" in fault, "trigger_dag_2 never succeeded"
    queued_by = sql(
        cluster,
        "SELECT ti.dag_id || '.' || ti.task_id, j.hostname FROM task_instance ti "
        "JOIN job j ON j.id = ti.queued_by_job_id "
        "WHERE ti.run_id IN (:'run_1', :'run_2') AND ti.queued_dttm > :'stopped_at'::timestamptz",
        run_1=r["dag_1_run_id"],
        run_2=r["dag_2_run_id"],
        stopped_at=fault["stopped_at"],
    )
    assert queued_by, "no task was queued after the scheduler node stopped"
    assert {host for _, host in queued_by} == {f"e2e-{survivor}"}, queued_by
    assert (r["dag_1_state"], r["dag_2_state"], r["emr_cluster_state"]) == (
        "success",
        "success",
        "TERMINATED",
    )


def latest_run(cluster: ec.Cluster, dag_id: str) -> str:
    runs = cluster.api("GET", f"dags/{dag_id}/dagRuns?order_by=-run_after&limit=1", cluster.token())
    return runs["dag_runs"][0]["dag_run_id"]
