"""Airflow's statsd output on the running cluster: a UDP listener where every node's
`[metrics] statsd_host:statsd_port` points (the CloudWatch agent's listener on EC2) receives
real metric names, and every Airflow metric an alarm reads (AIRFLOW_METRIC_ALARMS in
modules/alarms.ts) is among them with the statsd type the alarm expects.

The names seen go to $ARTIFACTS_DIR/statsd-names.txt: their count is what the agent would
publish as custom metrics (scripts/cost.js prices it)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cluster_ops import trigger  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / ".artifacts"))
CONTRACT = json.loads((ROOT / "config" / "settings-contract.json").read_text())
PREFIX = CONTRACT["cloudwatchAgent"]["statsd"]["prefix"]
STATSD_TYPE = {"counter": "c", "gauge": "g", "timer": "ms"}
LISTEN_SECONDS = 240

pytestmark = pytest.mark.timeout(900)


def alarmed_metrics() -> list[dict]:
    """AIRFLOW_METRIC_ALARMS as the infra defines it (transpiled, then read by node)."""
    subprocess.run(["node", "scripts/compile.js"], cwd=ROOT, check=True, capture_output=True)
    code = "console.log(JSON.stringify(require('./dist/modules/alarms').AIRFLOW_METRIC_ALARMS))"
    out = subprocess.run(["node", "-e", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def template(metric: str) -> re.Pattern:
    """An alarm's metric name as a pattern: `{dag_id}`-style parts match one name segment."""
    parts = re.split(r"\{[a-z_]+\}", metric)
    return re.compile("^" + r"[^.]+".join(re.escape(p) for p in parts) + "$")


def test_every_alarmed_airflow_metric_is_emitted_by_the_cluster(cluster):
    alarms = alarmed_metrics()
    assert alarms, "AIRFLOW_METRIC_ALARMS is empty"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", int(cluster.env["E2E_STATSD_PORT"])))
    sock.settimeout(2)
    seen: dict[str, set[str]] = {}  # name without prefix -> statsd types
    missing = list(alarms)
    try:
        # a task that queues and runs, so task-level metrics have a reason to be sent
        trigger(cluster, "e2e_hold", {"hold_seconds": 0})
        deadline = time.monotonic() + LISTEN_SECONDS
        while missing and time.monotonic() < deadline:
            try:
                data = sock.recv(65535).decode()
            except TimeoutError:
                continue
            for line in data.splitlines():
                m = re.match(r"^([^:]+):[^|]*\|([a-z]+)", line)
                assert m, f"not a statsd line: {line!r}"
                name, kind = m.groups()
                assert name.startswith(f"{PREFIX}."), f"{name}: no statsd prefix {PREFIX!r}"
                seen.setdefault(name[len(PREFIX) + 1 :], set()).add(kind)
            missing = [
                a
                for a in alarms
                if not any(
                    template(a["metric"]).match(n) and STATSD_TYPE[a["type"]] in k for n, k in seen.items()
                )
            ]
    finally:
        sock.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "statsd-names.txt").write_text(
            "".join(f"{n} {','.join(sorted(k))}\n" for n, k in sorted(seen.items()))
        )
    print(f"statsd: {len(seen)} distinct metric names in {LISTEN_SECONDS}s or less", file=sys.stderr)
    assert seen, "no statsd packet reached the listener: is [metrics] statsd_on rendered?"
    assert not missing, (
        "alarms read metrics this Airflow never emitted (name or type): "
        + ", ".join(f"{a['id']}: {PREFIX}.{a['metric']} ({a['type']})" for a in missing)
        + f"; {len(seen)} names seen, see {ARTIFACTS / 'statsd-names.txt'}"
    )
