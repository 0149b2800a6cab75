"""Per-role health checks (shared/ARCHITECTURE.md "Health"), one function per component,
used twice: the bootstrap waits for them before it completes the launch lifecycle hook
with CONTINUE, and airflow-health.timer runs them every minute on a running node.

    python -m airflow_node.health   # the timer's run: check, count, maybe SetInstanceHealth

A node whose checks fail FAILURES_BEFORE_UNHEALTHY runs in a row is marked Unhealthy in
its Auto Scaling group, which replaces it: systemd restarts a crashed unit (Restart=
on-failure), so only a unit that stays down or hangs gets that far. Runs that fail while
the metadata DB or the broker is down do not count: every node fails those together.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from . import BootstrapError, last_line
from . import contract as contract_mod
from .instance import imds_url, set_unhealthy
from .settings import parse_env_file

# systemd timer period (units.py airflow-health.timer) and the run of failures that
# replaces the node: 3 x 60 s outlasts a unit's restart (RestartSec=10s) and a slow start.
INTERVAL_SECONDS = 60
FAILURES_BEFORE_UNHEALTHY = 3
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"

# argv -> completed process; the bootstrap runs commands as the airflow user with the
# rendered environment, the timer's unit already is that user with that environment
Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]
Check = Callable[[Runner, configparser.ConfigParser], str | None]


def _http_ok(url: str) -> tuple[int, bytes] | str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback http
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (OSError, urllib.error.URLError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"


def api_server(_run: Runner, cfg: configparser.ConfigParser) -> str | None:
    """The API server answers /api/v2/monitor/health and reaches the metadata DB."""
    url = f"http://127.0.0.1:{cfg.get('api', 'port', fallback='8080')}/api/v2/monitor/health"
    got = _http_ok(url)
    if isinstance(got, str):
        return got
    try:
        status = json.loads(got[1])["metadatabase"]["status"]
    except (ValueError, KeyError, TypeError):
        return f"{url} answered without metadatabase.status"
    return None if status == "healthy" else f"{url}: metadatabase {status}"


def scheduler(_run: Runner, cfg: configparser.ConfigParser) -> str | None:
    """The scheduler's own health server ([scheduler] enable_health_check): 200 while its
    heartbeat is recent."""
    port = cfg.get("scheduler", "scheduler_health_check_server_port", fallback="8974")
    got = _http_ok(f"http://127.0.0.1:{port}/health")
    return got if isinstance(got, str) else None


def _job_check(job_type: str) -> Check:
    def check(run: Runner, _cfg: configparser.ConfigParser) -> str | None:
        # --local: jobs of this host as Airflow names it ([core] hostname_callable)
        done = run(["airflow", "jobs", "check", "--job-type", job_type, "--local"])
        if done.returncode == 0:
            return None
        output = (done.stdout or "") + (done.stderr or "")
        return f"airflow jobs check --job-type {job_type}: {last_line(output, 'failed', 200)}"

    check.__doc__ = f"A live {job_type} of this host in the metadata DB."
    return check


def worker(run: Runner, _cfg: configparser.ConfigParser) -> str | None:
    """This host's Celery worker answers a ping through the broker."""
    target = f"celery@{socket.gethostname()}"
    done = run(["celery", "--app", CELERY_APP, "inspect", "ping", "-d", target, "--timeout", "10"])
    return None if done.returncode == 0 else f"celery inspect ping -d {target}: no pong"


# unit -> its check; a role is healthy when every check of its units passes
CHECKS: dict[str, Check] = {
    "airflow-api-server.service": api_server,
    "airflow-scheduler.service": scheduler,
    "airflow-dag-processor.service": _job_check("DagProcessorJob"),
    "airflow-triggerer.service": _job_check("TriggererJob"),
    "airflow-celery-worker.service": worker,
}


def check_role(units: Sequence[str], run: Runner, cfg: configparser.ConfigParser) -> list[str]:
    """Problems of the role whose units these are; empty when healthy."""
    return [p for u in units if u in CHECKS for p in [CHECKS[u](run, cfg)] if p]


# Connects to the Celery broker once, as the worker would; exit 0 when it answers.
BROKER_PROBE = (
    f"from {CELERY_APP.rsplit('.', 1)[0]} import app; "
    "app.connection_for_write().ensure_connection(max_retries=1)"
)


def shared_outage(units: Sequence[str], run: Runner, cfg: configparser.ConfigParser) -> str | None:
    """What every node of the cluster would see too, or None. A metadata DB or broker outage
    fails every node's checks at once; replacing nodes cannot mend it, and the replacements
    could not turn healthy either, so a run that fails during one is not counted."""
    if cfg.has_option("database", "sql_alchemy_conn_cmd"):
        if run(["airflow", "db", "check"]).returncode != 0:
            return "the metadata database does not answer"
    if "airflow-celery-worker.service" in units:
        if run(["python", "-c", BROKER_PROBE]).returncode != 0:
            return "the Celery broker does not answer"
    return None


def wait_healthy(
    units: Sequence[str], run: Runner, cfg: configparser.ConfigParser, seconds: int, log
) -> None:
    """Polls the role's checks until all pass; BootstrapError naming the last problems after
    `seconds`."""
    started = time.monotonic()
    log(f"waiting up to {seconds}s for the role to turn healthy")
    while problems := check_role(units, run, cfg):
        if time.monotonic() - started > seconds:
            raise BootstrapError(f"role not healthy within {seconds}s: {'; '.join(problems)}")
        time.sleep(5)
    log(f"role healthy ({time.monotonic() - started:.1f}s)")


def read_config(path: Path) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path)
    return cfg


# --- the timer's run ------------------------------------------------------------------


def log(message: str) -> None:
    print(f"airflow-health: {message}", file=sys.stderr, flush=True)


def _count(state: Path, healthy: bool) -> int:
    """Consecutive failures, kept in a file across the timer's runs."""
    previous = int(state.read_text() or 0) if state.is_file() else 0
    failures = 0 if healthy else previous + 1
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(str(failures))
    return failures


def timer_run(node_env: Path, airflow_cfg: Path, done_marker: Path, state_dir: Path, run: Runner) -> int:
    if not done_marker.is_file():
        log(f"bootstrap not finished ({done_marker} absent): nothing to check yet")
        return 0
    env = parse_env_file(node_env, "node env file")
    role = env.get("AIRFLOW_ROLE", "")
    units = contract_mod.load().roles.get(role)
    if units is None:
        raise BootstrapError(f"{node_env}: AIRFLOW_ROLE={role!r} is not a role of the settings contract")
    cfg = read_config(airflow_cfg)
    problems = check_role(units, run, cfg)
    if problems and (outage := shared_outage(units, run, cfg)):
        log(f"{role} checks fail while {outage}: not counted, every node sees it ({'; '.join(problems)})")
        return 1
    failures = _count(state_dir / "failures", not problems)
    if not problems:
        return 0
    log(f"{role} unhealthy ({failures}/{FAILURES_BEFORE_UNHEALTHY}): {'; '.join(problems)}")
    if failures >= FAILURES_BEFORE_UNHEALTHY and not (state_dir / "reported").is_file():
        reason = f"{failures} failed health checks in a row"
        if set_unhealthy(imds_url(env.get("AIRFLOW_IMDS_URL")), reason, log):
            (state_dir / "reported").write_text(reason + "\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m airflow_node.health", description=__doc__.splitlines()[0])
    ap.add_argument("--node-env", type=Path, default=Path("/etc/airflow/node.env"))
    ap.add_argument("--airflow-cfg", type=Path, default=Path("/etc/airflow/airflow.cfg"))
    ap.add_argument("--done-marker", type=Path, default=Path("/run/airflow-bootstrap.done"))
    ap.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("RUNTIME_DIRECTORY", "/run/airflow-health"))
    )
    args = ap.parse_args(argv)

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)

    try:
        return timer_run(args.node_env, args.airflow_cfg, args.done_marker, args.state_dir, run)
    except BootstrapError as exc:
        log(f"ERROR: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
