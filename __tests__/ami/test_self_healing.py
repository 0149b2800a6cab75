"""Self-healing on real code paths: the bootstrap CLI completing the launch lifecycle hook
against the loopback IMDSv2 stub and its recording Auto Scaling endpoint (imds_stub.py;
moto 5.2.5 lacks CompleteLifecycleAction), and the health timer reporting a node whose
units are down to a moto server's SetInstanceHealth after repeated failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow_node import contract as contract_mod
from airflow_node import health
from ami_support import (
    CONTRACT_FILE,
    VALID_PARAMS,
    VALID_SECRETS,
    free_port,
    run_bootstrap,
)
from imds_stub import moto_autoscaling_group, recorded, write_instance

VENV_BIN = Path(sys.executable).parent
LAUNCH_HOOK = contract_mod.load(CONTRACT_FILE).launch_hook


@pytest.fixture
def imds(imds):
    """The conftest IMDS stub as an api-server instance of its group."""
    state, _ = imds
    write_instance(state, "i-0123456789abcdef0", "airflow-dev-api-server")
    return imds


def _api_calls(state: Path) -> list[dict]:
    return [r["api"] for r in recorded(state) if "api" in r]


def _aws_env(imds_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",  # noqa: S106 - dummy credentials for the stub
        AWS_CONFIG_FILE="/nonexistent",
        AWS_ENDPOINT_URL_AUTO_SCALING=imds_url,
    )
    return env


def _node_env(tmp_path: Path, role: str, **extra: str) -> Path:
    """node.env of a local node whose metadata database does not answer (never migrated)."""
    settings = tmp_path / "settings.env"
    params = {**VALID_PARAMS, "db/endpoint": "127.0.0.1", "db/port": str(free_port())}
    settings.write_text("".join(f"{k}={v}\n" for k, v in params.items()))
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for k, v in VALID_SECRETS.items():
        (secrets / k).write_text(v)
    env = {
        "AIRFLOW_ROLE": role,
        "AIRFLOW_PARAMETER_PREFIX": "/airflow/dev",
        "AIRFLOW_SECRET_PREFIX": "airflow/dev",
        "AWS_REGION": "us-east-1",
        "AIRFLOW_SETTINGS_REVISION": "abc",
        "AIRFLOW_SETTINGS_SOURCE": "envfile",
        "AIRFLOW_SETTINGS_FILE": str(settings),
        "AIRFLOW_SECRETS_DIR": str(secrets),
        "AIRFLOW_NODE_ROOT": str(tmp_path / "root"),
        "AIRFLOW_VENV": str(VENV_BIN.parent),
        "AIRFLOW_TLS": "false",
        "AIRFLOW_EFS_MOUNT": "false",
        "AIRFLOW_SERVICE_MANAGER": "local",
        "AIRFLOW_MIGRATION_WAIT": "1",
        **extra,
    }
    path = tmp_path / "node.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return path


def test_api_server_on_an_unmigrated_database_abandons_its_launch(tmp_path, imds):
    # GIVEN a new api-server (it never migrates) whose database schema no scheduler has
    # migrated (nothing answers there) and an instance held by the group's launch hook
    state, url = imds
    node_env = _node_env(tmp_path, "api-server", AIRFLOW_IMDS_URL=url)
    # WHEN it boots
    done = run_bootstrap("--node-env", str(node_env), env=_aws_env(url))
    # THEN the bootstrap fails in one line, starts nothing and tells the group ABANDON: the
    # old nodes keep serving, the new one is replaced - never put in service on a schema behind
    assert done.returncode == 1, done.stderr
    assert "database not migrated within 1s" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "root" / "run").glob("airflow/*.pid")), "no unit may start"
    assert _api_calls(state) == [
        {
            "Action": "CompleteLifecycleAction",
            "Version": "2011-01-01",
            "LifecycleHookName": LAUNCH_HOOK,
            "AutoScalingGroupName": "airflow-dev-api-server",
            "InstanceId": "i-0123456789abcdef0",
            "LifecycleActionResult": "ABANDON",
        }
    ]
    assert f"completed launch hook {LAUNCH_HOOK} of airflow-dev-api-server" in done.stderr


def test_local_rehearsal_skips_the_hook_in_one_line(tmp_path):
    # GIVEN the local service manager and no IMDS stub (the rehearsal, off EC2)
    node_env = _node_env(tmp_path, "api-server")
    done = run_bootstrap("--node-env", str(node_env))
    assert done.returncode == 1
    skipped = [ln for ln in done.stderr.splitlines() if f"launch hook {LAUNCH_HOOK}" in ln]
    assert skipped == [
        f"airflow-bootstrap: launch hook {LAUNCH_HOOK} skipped: local service manager, not on EC2 (ABANDON)"
    ]


@pytest.mark.parametrize("result", ["CONTINUE", "ABANDON"])
def test_complete_launch_sends_the_result_for_this_instance_and_group(imds, monkeypatch, result):
    from airflow_node.instance import complete_launch

    state, url = imds
    for k, v in _aws_env(url).items():
        monkeypatch.setenv(k, v)
    lines: list[str] = []
    assert complete_launch(url, LAUNCH_HOOK, result, lines.append)
    assert [c["LifecycleActionResult"] for c in _api_calls(state)] == [result]
    assert _api_calls(state)[0]["InstanceId"] == "i-0123456789abcdef0"


def test_a_reboot_with_no_pending_hook_is_one_line_not_a_failure(imds, monkeypatch):
    from airflow_node.instance import complete_launch

    state, url = imds
    (state / "fail-complete").write_text("1")  # the API's "No active Lifecycle Action found"
    for k, v in _aws_env(url).items():
        monkeypatch.setenv(k, v)
    lines: list[str] = []
    assert not complete_launch(url, LAUNCH_HOOK, "CONTINUE", lines.append)
    assert lines == [
        f"launch hook {LAUNCH_HOOK}: no lifecycle action pending (a reboot); nothing to complete"
    ]


# --- the health timer -------------------------------------------------------------------


@pytest.fixture
def moto_group(moto_url):
    """A moto Auto Scaling group with one healthy instance (moto implements SetInstanceHealth)."""
    autoscaling = moto_autoscaling_group(moto_url, "airflow-dev-api-server")

    def instance() -> dict:
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["airflow-dev-api-server"])
        return groups["AutoScalingGroups"][0]["Instances"][0]

    return instance


def test_health_timer_marks_a_node_with_dead_units_unhealthy_after_three_failures(
    tmp_path, imds, moto_url, moto_group, monkeypatch
):
    # GIVEN a bootstrapped api-server node whose API server is down (nothing listens on its port)
    state, url = imds
    instance_id = moto_group()["InstanceId"]
    (state / "instance-id").write_text(instance_id)
    node_env = tmp_path / "node.env"
    node_env.write_text(f"AIRFLOW_ROLE=api-server\nAIRFLOW_IMDS_URL={url}\n")
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(f"[api]\nport = {free_port()}\n")
    marker = tmp_path / "airflow-bootstrap.done"
    marker.write_text("api-server abc\n")
    for k, v in {**_aws_env(url), "AWS_ENDPOINT_URL_AUTO_SCALING": moto_url}.items():
        monkeypatch.setenv(k, v)
    argv = [
        *("--node-env", str(node_env), "--airflow-cfg", str(cfg)),
        *("--done-marker", str(marker), "--state-dir", str(tmp_path / "state")),
    ]
    # WHEN the timer runs: the first failures only count
    for _ in range(health.FAILURES_BEFORE_UNHEALTHY - 1):
        assert health.main(argv) == 1
        assert moto_group()["HealthStatus"] == "Healthy"
    # THEN the third in a row marks the instance Unhealthy, so the group replaces it
    assert health.main(argv) == 1
    assert moto_group()["HealthStatus"] == "Unhealthy"


def test_health_timer_counts_only_failures_in_a_row(tmp_path, monkeypatch):
    # GIVEN a node whose API server answers healthy between two failures
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Health(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps({"metadatabase": {"status": "healthy"}}).encode()
            self.send_response(200 if self.path == "/api/v2/monitor/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    node_env = tmp_path / "node.env"
    node_env.write_text("AIRFLOW_ROLE=api-server\n")
    marker = tmp_path / "done"
    marker.write_text("x")
    port = free_port()
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(f"[api]\nport = {port}\n")
    argv = ["--node-env", str(node_env), "--airflow-cfg", str(cfg), "--done-marker", str(marker)]
    argv += ["--state-dir", str(tmp_path / "state")]
    assert health.main(argv) == 1 and health.main(argv) == 1
    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert health.main(argv) == 0
    finally:
        server.shutdown()
        server.server_close()
    # THEN the count starts over: one more failure is 1, not 3
    assert health.main(argv) == 1
    assert (tmp_path / "state" / "failures").read_text() == "1"


def test_health_timer_waits_for_the_bootstrap(tmp_path):
    node_env = tmp_path / "node.env"
    node_env.write_text("AIRFLOW_ROLE=api-server\n")
    argv = ["--node-env", str(node_env), "--done-marker", str(tmp_path / "absent")]
    assert health.main([*argv, "--state-dir", str(tmp_path / "state")]) == 0
    assert not (tmp_path / "state").exists()


@pytest.fixture
def redis_url(tmp_path):
    """A throwaway Redis (the broker) on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("role", "config", "outage"),
    [
        # an api-server whose API server is down: its own failure while the DB answers...
        ("api-server", "[database]\nsql_alchemy_conn_cmd = echo sqlite:///{tmp}/airflow.db\n", None),
        # ...but not counted while nothing listens where the DB should be: every node fails
        # then, and replacing this one would not help
        (
            "api-server",
            "[database]\nsql_alchemy_conn_cmd = echo postgresql://airflow:x@127.0.0.1:{port}/airflow\n",
            "the metadata database does not answer",
        ),
        # a worker whose Celery worker is not running: counted while the broker answers...
        ("worker", "[core]\nexecutor = CeleryExecutor\n[celery]\nbroker_url_cmd = echo {redis}\n", None),
        # ...but not while the broker itself is down
        (
            "worker",
            "[core]\nexecutor = CeleryExecutor\n[celery]\nbroker_url_cmd = echo redis://127.0.0.1:{port}/0\n",
            "the Celery broker does not answer",
        ),
    ],
)
def test_health_timer_does_not_count_a_run_that_fails_during_a_shared_outage(
    tmp_path, monkeypatch, capsys, redis_url, role, config, outage
):
    # GIVEN a node whose own unit is down, with a metadata DB or broker that answers or not
    node_env = tmp_path / "node.env"
    node_env.write_text(f"AIRFLOW_ROLE={role}\n")
    marker = tmp_path / "done"
    marker.write_text("x")
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(
        f"[api]\nport = {free_port()}\n" + config.format(tmp=tmp_path, port=free_port(), redis=redis_url)
    )
    # the real `airflow db check` and broker probe read this config, as the unit's environment says
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONFIG", str(cfg))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    state = tmp_path / "state"
    argv = ["--node-env", str(node_env), "--airflow-cfg", str(cfg), "--done-marker", str(marker)]
    # WHEN the timer runs
    assert health.main([*argv, "--state-dir", str(state)]) == 1
    # THEN the failure counts only when the shared dependency answered
    failures = state / "failures"
    assert (failures.read_text() if failures.is_file() else None) == (None if outage else "1")
    if outage:
        assert f"{outage}: not counted" in capsys.readouterr().err
