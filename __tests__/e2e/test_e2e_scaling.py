"""Worker autoscaling and self-healing on the local cluster (the session's one cluster,
conftest.py), with the AMI's own code run the way its units run it (cluster_ops.run_unit):

- the queue-depth signal airflow-queue-depth.service publishes from a scheduler node equals
  ceil((running + queued) / worker_concurrency), counted from the REST API, in moto's CloudWatch;
- scale from zero: with no worker taking tasks, one queued task turns that metric from 0 to 1;
- airflow-health.service on a worker whose Celery unit hangs fails three runs in a row and then
  marks the instance Unhealthy in its (moto) Auto Scaling group;
- airflow-worker-drain.service on a worker running a task: the task finishes on that worker
  before the termination hook is completed.

Stand-ins, named as such: a loopback IMDS (__tests__/ami/imds_stub.py, which also records
CompleteLifecycleAction, absent from moto 5.2.5), a `systemctl` that stops the worker unit the
way systemd does, and SIGSTOP for a hung unit or a worker group at zero (local nodes run no
systemd and no Auto Scaling). Runs after test_e2e_least_privilege.py (file order), on the
cluster it leaves whole; each test leaves it whole again.
"""

from __future__ import annotations

import math
import secrets
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import e2e_cluster as ec  # noqa: E402
from cluster_ops import (  # noqa: E402
    WORKER_READY,
    moto_autoscaling_group,
    node,
    node_of,
    recorded,
    replace_node,
    run_unit,
    serving,
    trigger,
    unit_env,
    wait_until,
    write_instance,
)

pytestmark = pytest.mark.timeout(1800)

PUBLISHER = "scheduler-1"
WORKER_UNIT = "airflow-celery-worker.service"
HOLD_DAG = "e2e_hold"
HOLD_TASK = "hold"
# five tasks on worker_concurrency 4: ceil gives 2, where floor or round would give 1
HOLDS = 5

# What `systemctl stop airflow-celery-worker.service` does on a node (units.py:
# KillSignal=SIGTERM, KillMode=mixed): SIGTERM to the main process only, block until it has
# exited (Celery's warm shutdown lets running tasks finish first), then SIGKILL what is left of
# the unit. The local launcher's process group stands in for the unit's cgroup.
SYSTEMCTL = """#!/usr/bin/env bash
set -euo pipefail
if [ "$*" != "stop airflow-celery-worker.service" ]; then
  echo "systemctl stand-in: unexpected $*" >&2
  exit 1
fi
pid=$(cat "$WORKER_PID_FILE")
echo "sigterm $(date +%s.%N)" >>"$SYSTEMCTL_LOG"
kill -TERM "$pid" 2>/dev/null || exit 0
# the launcher that started it is gone, so an exited main process stays a zombie until reaped
while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat")" != Z ]; do sleep 0.2; done
kill -KILL -- "-$pid" 2>/dev/null || true
echo "stopped $(date +%s.%N)" >>"$SYSTEMCTL_LOG"
"""


def workers(cluster: ec.Cluster) -> list[str]:
    return [n for n in cluster.env["E2E_NODES"].split() if unit_env(cluster, n)["AIRFLOW_ROLE"] == "worker"]


def active_by_queue(cluster: ec.Cluster, token: str) -> dict[str, int]:
    """Running + queued task instances of every DAG per queue, from the REST API (not the
    publisher's SQL)."""
    tis: list[dict] = []
    while True:
        page = cluster.api(
            "GET",
            "dags/~/dagRuns/~/taskInstances",
            token,
            params={"state": ["running", "queued"], "limit": 100, "offset": len(tis)},
        )
        tis += page["task_instances"]
        if not page["task_instances"] or len(tis) >= page["total_entries"]:
            return dict(Counter(ti["queue"] for ti in tis))


def read_back(
    cluster: ec.Cluster, start: datetime, end: datetime, metric: str | None = None
) -> dict[str, float]:
    """Per queue, the one datapoint of `metric` (default: the queue depth) moto's CloudWatch
    holds for the publish between start and end (moto keeps whole seconds: the window is
    widened to them)."""
    from airflow_node import contract

    c = contract.load()
    metric = metric or c.scaling_metric
    namespace = unit_env(cluster, PUBLISHER)["AIRFLOW_METRICS_NAMESPACE"]
    cw = cluster.client("cloudwatch")
    queues = [
        d["Value"]
        for m in cw.list_metrics(Namespace=namespace, MetricName=metric)["Metrics"]
        for d in m["Dimensions"]
        if d["Name"] == c.scaling_dimension
    ]
    values = {}
    for queue in sorted(set(queues)):
        points = cw.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": c.scaling_dimension, "Value": queue}],
            StartTime=start.replace(microsecond=0),
            EndTime=end + timedelta(seconds=1),
            Period=60,
            Statistics=["Maximum", "SampleCount"],
        )["Datapoints"]
        if points:
            assert [p["SampleCount"] for p in points] == [1.0], points
            values[queue] = points[0]["Maximum"]
    return values


LAST_PUBLISH: list[datetime] = []


def publish(cluster: ec.Cluster) -> tuple[dict[str, int], dict[str, float]]:
    """One run of airflow-queue-depth.service on the publisher node between two REST API counts
    that agree: (those counts, the values moto's CloudWatch received). The run's window is
    kept in LAST_PUBLISH for the other metric it sends."""
    for _ in range(5):
        token = cluster.token()
        before = active_by_queue(cluster, token)
        time.sleep(1.1)  # no earlier datapoint in the read-back window's first second
        start = datetime.now(UTC)
        done = run_unit(cluster, PUBLISHER, "airflow-queue-depth.service")
        end = datetime.now(UTC)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "published" in done.stdout, done.stdout
        if active_by_queue(cluster, token) == before:
            LAST_PUBLISH[:] = [start, end]
            return before, read_back(cluster, start, end)
    raise AssertionError("running + queued tasks kept changing around every publish")


def hold_states(cluster: ec.Cluster, run_ids: list[str]) -> list[str]:
    token = cluster.token()
    return [
        cluster.api("GET", f"dags/{HOLD_DAG}/dagRuns/{r}/taskInstances/{HOLD_TASK}", token)["state"]
        for r in run_ids
    ]


def signal_workers(cluster: ec.Cluster, names: list[str], sig: str) -> None:
    for name in names:
        node(cluster, "stop", name, WORKER_UNIT, sig)


# --- the queue-depth signal ---------------------------------------------------------------


def test_published_queue_depth_is_running_plus_queued_over_worker_concurrency(cluster):
    concurrency = int(cluster.env["E2E_WORKER_CONCURRENCY"])
    # GIVEN five tasks sleeping in worker slots (two workers of 4 slots each)
    runs = [trigger(cluster, HOLD_DAG, {"hold_seconds": 60}) for _ in range(HOLDS)]
    wait_until(
        f"{HOLDS} holds running or queued",
        lambda: set(hold_states(cluster, runs)) <= {"running", "queued"},
        every_seconds=1,
    )
    # WHEN the scheduler node's publisher runs, as its timer would every minute
    counts, values = publish(cluster)
    # THEN CloudWatch holds ceil((running + queued) / worker_concurrency) for the queue
    assert counts == {"default": HOLDS}, counts
    assert values == {"default": math.ceil(HOLDS / concurrency)}
    assert values["default"] == 2  # five tasks on 4 slots each need two workers
    for run_id in runs:
        assert cluster.wait_for_run(HOLD_DAG, run_id, 300) == "success"


def test_scale_from_zero_one_queued_task_turns_the_metric_from_0_to_1(cluster):
    # GIVEN no worker takes tasks (both Celery workers frozen: a worker group at zero) and
    # nothing running or queued
    wait_until("an idle cluster", lambda: not active_by_queue(cluster, cluster.token()))
    frozen = workers(cluster)
    signal_workers(cluster, frozen, "STOP")
    run_id = None
    try:
        counts, values = publish(cluster)
        assert (counts, values) == ({}, {"default": 0.0})  # 0 is published, not nothing
        # WHEN one task is queued
        run_id = trigger(cluster, HOLD_DAG, {"hold_seconds": 0})
        wait_until("the task queued", lambda: hold_states(cluster, [run_id]) == ["queued"], every_seconds=1)
        counts, values = publish(cluster)
        # THEN the metric turns to 1: target tracking starts a worker
        assert (counts, values) == ({"default": 1}, {"default": 1.0})
        # AND the same run reports how long that task has waited (the queued-too-long alarm's
        # signal), in whole seconds between its queued_when and the publish
        from airflow_node import contract

        start, end = LAST_PUBLISH
        path = f"dags/{HOLD_DAG}/dagRuns/{run_id}/taskInstances/{HOLD_TASK}"
        ti = cluster.api("GET", path, cluster.token())
        queued_at = datetime.fromisoformat(ti["queued_when"].replace("Z", "+00:00"))
        oldest = read_back(cluster, start, end, contract.load().oldest_queued_metric)
        assert set(oldest) == {"default"}, oldest
        waited = (int((start - queued_at).total_seconds()), (end - queued_at).total_seconds())
        assert waited[0] - 1 <= oldest["default"] <= waited[1] + 1, (oldest, waited)
    finally:
        signal_workers(cluster, frozen, "CONT")
    assert cluster.wait_for_run(HOLD_DAG, run_id, 300) == "success"


# --- self-healing and drain: the node in a (moto) Auto Scaling group --------------------


def moto_group(cluster: ec.Cluster, name: str) -> str:
    """A moto Auto Scaling group of one instance; that instance's id."""
    autoscaling = moto_autoscaling_group(cluster.moto_url, name, cluster.region)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return group["Instances"][0]["InstanceId"]


def test_hung_worker_fails_three_health_runs_then_is_marked_unhealthy(cluster, tmp_path):
    # GIVEN a worker node that is an instance of a (moto) Auto Scaling group
    # a new group name per run: moto keeps the groups of an earlier run on a kept cluster
    victim, group = workers(cluster)[-1], f"airflow-e2e-worker-{secrets.token_hex(3)}"
    instance_id = moto_group(cluster, group)
    write_instance(tmp_path / "imds", instance_id, group, "InService")
    autoscaling = cluster.client("autoscaling")

    def health_status() -> str:
        found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
        return found["AutoScalingInstances"][0]["HealthStatus"]

    root = cluster.work / "nodes" / victim
    with serving(tmp_path / "imds") as url:
        # the node's node.env as user-data writes it, pointed at the loopback IMDS
        node_env = tmp_path / "node.env"
        node_env.write_text((root / "node.env").read_text() + f"AIRFLOW_IMDS_URL={url}\n")

        def health_run():
            # airflow-health.service once; its defaults are baked paths, the node's live under its root
            return run_unit(
                cluster,
                victim,
                "airflow-health.service",
                extra_env={"RUNTIME_DIRECTORY": str(tmp_path / "health")},
                args=(
                    *("--node-env", str(node_env)),
                    *("--airflow-cfg", str(root / "etc/airflow/airflow.cfg")),
                    *("--done-marker", str(root / "run/airflow-bootstrap.done")),
                ),
            )

        healthy = health_run()
        assert healthy.returncode == 0, healthy.stderr[-2000:]
        # WHEN its Celery worker hangs (SIGSTOP: alive, answering nothing)
        signal_workers(cluster, [victim], "STOP")
        try:
            runs, statuses = [], []
            for _ in range(3):
                runs.append(health_run())
                statuses.append(health_status())
        finally:
            signal_workers(cluster, [victim], "CONT")
    # THEN each run fails naming the check; the third marks the instance Unhealthy
    for i, done in enumerate(runs, start=1):
        assert done.returncode == 1, done.stderr[-2000:]
        assert f"worker unhealthy ({i}/3): celery inspect ping -d celery@e2e-{victim}: no pong" in done.stderr
    assert statuses == ["Healthy", "Healthy", "Unhealthy"]
    assert f"marked {instance_id} Unhealthy in {group}" in runs[-1].stderr


def test_drained_worker_finishes_its_task_before_the_hook_completes(cluster, tmp_path):
    # GIVEN a task sleeping on a real Celery worker
    run_id = trigger(cluster, HOLD_DAG, {"hold_seconds": 30})
    token = cluster.token()

    def running_on():
        ti = cluster.api("GET", f"dags/{HOLD_DAG}/dagRuns/{run_id}/taskInstances/{HOLD_TASK}", token)
        return ti["state"] == "running" and ti["hostname"]

    host = wait_until("hold running", running_on, every_seconds=1)
    victim = node_of(host)
    # AND its Auto Scaling group terminating that instance (IMDS: lifecycle state Terminated)
    group, instance_id = "airflow-e2e-worker", "i-0e2e0000000000001"
    write_instance(tmp_path / "imds", instance_id, group, "Terminated")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    systemctl_log = tmp_path / "systemctl.log"
    pid_file = cluster.work / "nodes" / victim / "run/airflow" / f"{WORKER_UNIT}.pid"
    ti_path = f"dags/{HOLD_DAG}/dagRuns/{run_id}/taskInstances/{HOLD_TASK}"
    try:
        with serving(tmp_path / "imds") as url:
            # WHEN airflow-worker-drain.service runs, as its timer would
            drain_started = time.time()
            done = run_unit(
                cluster,
                victim,
                "airflow-worker-drain.service",
                extra_env={
                    "PATH": f"{bin_dir}:{unit_env(cluster, victim)['PATH']}",
                    "SYSTEMCTL_LOG": str(systemctl_log),
                    "WORKER_PID_FILE": str(pid_file),
                    "AIRFLOW_DRAIN_IMDS_URL": url,
                    "AIRFLOW_DRAIN_STATE_DIR": str(tmp_path / "drain-state"),
                    # CompleteLifecycleAction to the stub's recording endpoint (moto lacks it)
                    "AWS_ENDPOINT_URL_AUTO_SCALING": url,
                },
                timeout_seconds=600,
            )
        assert done.returncode == 0, done.stderr[-3000:]
        calls = [r for r in recorded(tmp_path / "imds") if "api" in r]
        ti = cluster.api("GET", ti_path, cluster.token())
        events = dict(line.split() for line in systemctl_log.read_text().splitlines())
        # THEN the task succeeded on that worker, in its first try (not killed and retried)
        assert (ti["state"], ti["hostname"], ti["try_number"]) == ("success", host, 1)
        assert cluster.wait_for_run(HOLD_DAG, run_id, 120) == "success"
        # AND the order was: drain starts, task ends, worker exits, hook completed (CONTINUE)
        task_end = datetime.fromisoformat(ti["end_date"]).timestamp()
        assert [c["api"]["Action"] for c in calls] == ["CompleteLifecycleAction"]
        assert calls[0]["api"]["InstanceId"] == instance_id
        assert calls[0]["api"]["LifecycleActionResult"] == "CONTINUE"
        sigterm, stopped = float(events["sigterm"]), float(events["stopped"])
        assert drain_started < sigterm < task_end < stopped < calls[0]["time"]
    finally:
        replace_node(cluster, victim, WORKER_READY)
