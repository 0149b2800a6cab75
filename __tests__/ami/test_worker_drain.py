"""The worker drain on Auto Scaling scale-in and on Spot notices, run for real: the baked
airflow-worker-drain script against a loopback IMDSv2 stub (imds_stub.py: lifecycle state,
instance metadata tags, Spot notices), a moto Auto Scaling group for the instance, the AWS CLI
against the stub's recording endpoint for CompleteLifecycleAction (moto 5.2.5 does not
implement it), and a stand-in Celery worker that must get SIGTERM and finish before the hook is
completed. systemd is not running here: a `systemctl` stand-in on PATH does what `systemctl
stop` does for the worker unit (SIGTERM to the main process, wait for it to exit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ami_support import BOOTSTRAP_LIB
from imds_stub import moto_autoscaling_group, recorded, write_instance

DRAIN = BOOTSTRAP_LIB / "airflow-worker-drain"
WORKER_UNIT = "airflow-celery-worker.service"

STAND_IN_WORKER = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def warm_shutdown(signum, frame):
    log.write(f"sigterm {time.time()}\\n")
    time.sleep(1.5)  # a running task finishing
    log.write(f"exit {time.time()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, warm_shutdown)
log.write("ready\\n")
while True:
    time.sleep(0.1)
"""

# What `systemctl stop` does to airflow-celery-worker.service (KillSignal=SIGTERM,
# KillMode=mixed): TERM the main process, block until it has exited.
SYSTEMCTL = """#!/usr/bin/env bash
set -euo pipefail
echo "$* $(date +%s.%N)" >>"$SYSTEMCTL_LOG"
[ "$1" = stop ] && [ "$2" = airflow-celery-worker.service ] || { echo "unexpected: $*" >&2; exit 1; }
pid=$(cat "$WORKER_PID_FILE")
kill -TERM "$pid" 2>/dev/null || exit 0
while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat")" != Z ]; do sleep 0.05; done
"""


@pytest.fixture
def worker(tmp_path):
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([sys.executable, "-c", STAND_IN_WORKER, str(log)])
    for _ in range(100):
        if log.is_file() and "ready" in log.read_text():
            break
        time.sleep(0.05)
    (tmp_path / "worker.pid").write_text(str(proc.pid))
    yield proc, log
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def asg(moto_url, contract):
    """A moto Auto Scaling group with one instance and the termination hook."""
    autoscaling = moto_autoscaling_group(moto_url, "airflow-dev-worker")
    autoscaling.put_lifecycle_hook(
        LifecycleHookName=contract.drain_hook,
        AutoScalingGroupName="airflow-dev-worker",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=3900,
        DefaultResult="CONTINUE",
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["airflow-dev-worker"])
    return "airflow-dev-worker", group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]


def _drain_env(tmp_path: Path, imds_url: str, moto_url: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "systemctl").write_text(SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        SYSTEMCTL_LOG=str(tmp_path / "systemctl.log"),
        WORKER_PID_FILE=str(tmp_path / "worker.pid"),
        AIRFLOW_DRAIN_IMDS_URL=imds_url,
        AIRFLOW_DRAIN_STATE_DIR=str(tmp_path / "drain-state"),
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",  # noqa: S106 - moto's dummy credentials
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_ENDPOINT_URL_EC2=moto_url,
        # CompleteLifecycleAction goes to the stub's recording endpoint (moto lacks it)
        AWS_ENDPOINT_URL_AUTO_SCALING=imds_url,
    )
    return env


def _hook_args() -> list[str]:
    # exactly what the rendered airflow-worker-drain.service runs
    from airflow_node import contract
    from airflow_node.units import UNITS

    argv = UNITS["airflow-worker-drain.service"].argv[1:]
    return [a.replace("@DRAIN_HOOK@", contract.load().drain_hook) for a in argv]


def _run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(DRAIN), *_hook_args()], env=env, capture_output=True, text=True, timeout=120)


def test_terminating_worker_shuts_down_warmly_then_completes_the_hook(tmp_path, imds, worker, asg, moto_url):
    state, imds_url = imds
    proc, worker_log = worker
    group, instance_id = asg
    write_instance(state, instance_id, group)
    env = _drain_env(tmp_path, imds_url, moto_url)

    # not yet in a group (IMDS 404), then InService: nothing happens
    assert _run(env).returncode == 0
    (state / "lifecycle-state").write_text("InService")
    done = _run(env)
    assert done.returncode == 0, done.stderr
    assert proc.poll() is None and not (tmp_path / "systemctl.log").exists()
    assert not [r for r in recorded(state) if "api" in r]

    # the group starts terminating the instance: drain, then complete
    (state / "lifecycle-state").write_text("Terminated")
    done = _run(env)
    assert done.returncode == 0, done.stderr
    assert proc.wait(timeout=5) == 0
    events = dict(line.split() for line in worker_log.read_text().splitlines() if " " in line)
    calls = [r for r in recorded(state) if "api" in r]
    assert len(calls) == 1
    assert calls[0]["api"] == {
        "Action": "CompleteLifecycleAction",
        "Version": "2011-01-01",
        "LifecycleHookName": "drain",
        "AutoScalingGroupName": group,  # from the IMDS tag
        "InstanceId": instance_id,
        "LifecycleActionResult": "CONTINUE",
    }
    # SIGTERM first, the worker's exit (after its running task) before the completion
    assert float(events["sigterm"]) < float(events["exit"]) < calls[0]["time"]
    assert (tmp_path / "systemctl.log").read_text().startswith(f"stop {WORKER_UNIT} ")
    assert f"completed lifecycle hook drain of {group} for {instance_id}" in done.stderr
    # every metadata read carried the IMDSv2 token (the stub answers 401 otherwise)
    assert any(r.get("imds") == "token" for r in recorded(state))

    # the timer fires again while the instance goes away: nothing more
    done = _run(env)
    assert done.returncode == 0 and len([r for r in recorded(state) if "api" in r]) == 1


def test_failed_completion_exits_nonzero_and_retries_next_run(tmp_path, imds, worker, asg, moto_url):
    state, imds_url = imds
    proc, _ = worker
    group, instance_id = asg
    write_instance(state, instance_id, group, "Terminated")
    (state / "fail-complete").write_text("1")
    env = _drain_env(tmp_path, imds_url, moto_url)
    done = _run(env)
    assert done.returncode == 1
    assert f"complete-lifecycle-action drain on {group} failed" in done.stderr
    assert proc.wait(timeout=5) == 0  # the warm shutdown still happened
    (state / "fail-complete").unlink()
    done = _run(env)  # the next timer run completes it
    assert done.returncode == 0, done.stderr
    assert len([r for r in recorded(state) if "api" in r]) == 2


def test_without_metadata_tags_the_worker_still_drains_but_the_hook_is_not_guessed(
    tmp_path, imds, worker, asg, moto_url
):
    # an instance launched without instance metadata tags: no DescribeTags fallback any more
    state, imds_url = imds
    proc, _ = worker
    _, instance_id = asg
    write_instance(state, instance_id, lifecycle_state="Terminated")
    done = _run(_drain_env(tmp_path, imds_url, moto_url))
    assert done.returncode == 1
    assert "IMDS has no tags/instance/aws:autoscaling:groupName" in done.stderr
    assert "Traceback" not in done.stderr
    assert proc.wait(timeout=5) == 0  # the warm shutdown happened first
    assert not [r for r in recorded(state) if "api" in r]


@pytest.mark.parametrize(
    ("notice_file", "body"),
    [
        ("rebalance", '{"noticeTime": "2026-01-01T00:00:00Z"}'),
        ("spot-instance-action", '{"action": "terminate", "time": "2026-01-01T00:02:00Z"}'),
    ],
)
def test_spot_notice_drains_at_once_and_the_hook_completes_when_the_group_terminates(
    tmp_path, imds, worker, asg, moto_url, notice_file, body
):
    state, imds_url = imds
    proc, worker_log = worker
    group, instance_id = asg
    write_instance(state, instance_id, group, "InService")
    env = _drain_env(tmp_path, imds_url, moto_url)

    # GIVEN EC2 posts the notice while the group still has the instance InService
    (state / notice_file).write_text(body)
    done = _run(env)
    # THEN Celery stops warmly at once, and no hook is completed (none is pending yet)
    assert done.returncode == 0, done.stderr
    assert proc.wait(timeout=5) == 0
    assert "exit" in worker_log.read_text()
    assert not [r for r in recorded(state) if "api" in r]
    assert "Spot notice" in done.stderr

    # WHEN the timer runs again: the unit is not stopped twice
    assert _run(env).returncode == 0
    assert len((tmp_path / "systemctl.log").read_text().splitlines()) == 1

    # WHEN capacity rebalancing / the interruption terminates it through the hook
    (state / "lifecycle-state").write_text("Terminated")
    done = _run(env)
    assert done.returncode == 0, done.stderr
    calls = [r for r in recorded(state) if "api" in r]
    assert [c["api"]["Action"] for c in calls] == ["CompleteLifecycleAction"]
    assert calls[0]["api"]["InstanceId"] == instance_id
    assert len((tmp_path / "systemctl.log").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--hook", "bad hook!", "--unit", WORKER_UNIT], {}, "--hook 'bad hook!' is invalid"),
        (["--hook", "drain", "--unit", "worker"], {}, "--unit 'worker' is invalid"),
        (["--hook", "drain"], {}, "--unit '' is invalid"),
        (["--bogus"], {}, "unknown argument '--bogus'"),
        (
            ["--hook", "drain", "--unit", WORKER_UNIT],
            {"AIRFLOW_DRAIN_IMDS_URL": "http://10.1.2.3"},
            "AIRFLOW_DRAIN_IMDS_URL='http://10.1.2.3' is invalid",
        ),
    ],
)
def test_bad_input_is_refused_naming_it(args, env, message):
    done = subprocess.run(
        [str(DRAIN), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


def test_worker_role_runs_the_drain_timer(contract):
    assert "airflow-worker-drain.timer" in contract.roles["worker"]
    assert not any("drain" in u for role, units in contract.roles.items() if role != "worker" for u in units)


def test_drain_unit_outlasts_the_worker_stop(contract):
    from airflow_node.units import render_systemd

    text = render_systemd("airflow-worker-drain.service", 3600, drain_hook=contract.drain_hook)
    assert f"--hook {contract.drain_hook} --unit {WORKER_UNIT}" in text
    assert "TimeoutStartSec=3900" in text and "User=" not in text  # root: it stops a unit
    timer = render_systemd("airflow-worker-drain.timer", 3600)
    assert "OnUnitActiveSec=5s" in timer


def test_stand_in_worker_handles_sigterm(worker):
    # guard: the stand-in really handles SIGTERM (the drain test depends on it)
    proc, log = worker
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=5) == 0 and "exit" in log.read_text()
