"""The node's side of telemetry: [metrics] points Airflow at the agent's statsd listener,
each service appends to the file the agent ships, and the bootstrap starts the agent from
the contract's parameter (or says in one line that local mode skips it)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys

import pytest
from airflow_node import bootstrap
from airflow_node.render import LOGS, render
from airflow_node.units import UNITS, component_log_file, render_systemd
from ami_support import CONTRACT_FILE, VALID_PARAMS, VALID_SECRETS

RAW = json.loads(CONTRACT_FILE.read_text())["cloudwatchAgent"]


@pytest.mark.parametrize("role", ["api-server", "scheduler", "worker"])
def test_every_role_sends_statsd_to_the_agent_without_legacy_names(contract, make_node, role):
    out = render(contract, make_node(role), dict(VALID_PARAMS), dict(VALID_SECRETS))
    assert out.config["metrics"] == {
        "statsd_on": "True",
        "statsd_host": RAW["statsd"]["host"],
        "statsd_port": str(RAW["statsd"]["port"]),
        "statsd_prefix": RAW["statsd"]["prefix"],
        # dag/task ids in names would each be a billed custom metric
        "legacy_names_on": "False",
        "metrics_allow_list": ",".join(f"^{re.escape(m)}$" for m in RAW["statsd"]["metrics"]),
    }


def test_the_log_directory_is_the_contracts(contract):
    assert contract.log_dir == RAW["logDir"] == LOGS


@pytest.mark.parametrize("name", [n for n, u in UNITS.items() if u.kind != "timer"])
def test_each_service_appends_to_its_component_file(name):
    text = render_systemd(name, worker_stop_timeout=60, drain_hook="drain")
    component = name.removeprefix("airflow-").removesuffix(".service")
    assert f"StandardOutput=append:{RAW['logDir']}/{component}.log\n" in text
    assert "StandardError=inherit\n" in text


def test_a_timer_names_the_file_of_the_service_it_runs():
    assert component_log_file("airflow-dag-sync.timer", "/l") == "/l/dag-sync.log"


def test_airflow_with_the_rendered_metrics_sends_prefixed_names_to_the_listener(
    contract, make_node, tmp_path
):
    """Airflow's own Stats client, configured by the rendered [metrics] alone (the port
    moved to a free one), emits `<prefix>.<name>` over UDP."""
    out = render(contract, make_node("scheduler"), dict(VALID_PARAMS), dict(VALID_SECRETS))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((RAW["statsd"]["host"], 0))
    sock.settimeout(30)
    metrics = {**out.config["metrics"], "statsd_port": str(sock.getsockname()[1])}
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        **{f"AIRFLOW__METRICS__{k.upper()}": v for k, v in metrics.items()},
    }
    # a listed name, then names the allow list must drop: one unlisted, one that only
    # contains a listed name (the entries are regexes, so they must be anchored)
    code = (
        "from airflow.stats import Stats; Stats.incr('scheduler_heartbeat', 1, 1);"
        " Stats.incr('dagrun.duration.success', 1, 1); Stats.incr('scheduler_heartbeat_extra', 1, 1)"
    )
    try:
        argv = [sys.executable, "-c", code]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        sock.settimeout(1)
        packets = []
        while True:  # Airflow's import emits a few metrics of its own first
            try:
                packets += sock.recv(65535).decode().splitlines()
            except TimeoutError:
                break
    finally:
        sock.close()
    assert f"{RAW['statsd']['prefix']}.scheduler_heartbeat:1|c" in packets
    assert all(p.startswith(f"{RAW['statsd']['prefix']}.") for p in packets)
    # only the contract's names leave the node: each is a billed custom metric
    sent = {p.split(":", 1)[0].removeprefix(f"{RAW['statsd']['prefix']}.") for p in packets}
    assert sent <= set(RAW["statsd"]["metrics"]), sorted(sent - set(RAW["statsd"]["metrics"]))


def test_local_mode_skips_the_agent_in_one_line(contract, make_node, capsys):
    bootstrap.start_cloudwatch_agent(make_node("worker", AIRFLOW_SERVICE_MANAGER="local"), contract)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"airflow-bootstrap: CloudWatch agent skipped (local mode); on EC2 it loads "
        f"ssm:/airflow/dev/{RAW['parameter']}"
    ]


def _fake_ctl(tmp_path, exit_code: int, message: str = ""):
    """A stand-in for the AMI's amazon-cloudwatch-agent-ctl that records its arguments."""
    args = tmp_path / "ctl-args"
    ctl = tmp_path / "amazon-cloudwatch-agent-ctl"
    ctl.write_text(f'#!/bin/sh\necho "$@" > {args}\necho "{message}" >&2\nexit {exit_code}\n')
    ctl.chmod(ctl.stat().st_mode | stat.S_IXUSR)
    return ctl, args


def test_on_ec2_the_agent_loads_the_contracts_parameter(contract, make_node, tmp_path, monkeypatch, capsys):
    ctl, args = _fake_ctl(tmp_path, 0)
    monkeypatch.setattr(bootstrap, "AGENT_CTL", str(ctl))
    bootstrap.start_cloudwatch_agent(make_node("scheduler"), contract)
    assert args.read_text().split() == [
        "-a",
        "fetch-config",
        "-m",
        "ec2",
        "-s",
        "-c",
        f"ssm:/airflow/dev/{RAW['parameter']}",
    ]
    assert "CloudWatch agent started" in capsys.readouterr().err


@pytest.mark.parametrize("broken", ["fails", "missing"])
def test_an_agent_that_does_not_start_is_one_warning_not_a_failed_boot(
    contract, make_node, tmp_path, monkeypatch, capsys, broken
):
    ctl, _ = _fake_ctl(tmp_path, 1, "AccessDeniedException: ssm:GetParameter")
    monkeypatch.setattr(bootstrap, "AGENT_CTL", str(ctl) if broken == "fails" else str(tmp_path / "nope"))
    bootstrap.start_cloudwatch_agent(make_node("worker"), contract)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("airflow-bootstrap: WARNING: CloudWatch agent not started")
    if broken == "fails":
        assert "AccessDeniedException" in lines[0]
