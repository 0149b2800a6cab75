"""The one unit -> command mapping: rendered into systemd units at bake time
(``python -m airflow_node.units render DIR``) and run directly by the local launcher in the
rehearsal, so both start exactly the same commands.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import BootstrapError
from . import contract as contract_mod
from .health import INTERVAL_SECONDS
from .render import LOGS as LOG_DIR  # contract cloudwatchAgent.logDir (a seam test compares them)

ENV_FILE = "/etc/airflow/airflow.env"
BOOTSTRAP_BIN = "/opt/airflow/bin/airflow-bootstrap"
DRAIN_BIN = "/opt/airflow/bin/airflow-worker-drain"
WORKER_UNIT = "airflow-celery-worker.service"
DONE_MARKER = "/run/airflow-bootstrap.done"
BOOTSTRAP_LIB = "/opt/airflow/bootstrap"  # the airflow_node package on the node


@dataclass(frozen=True)
class Unit:
    description: str
    argv: tuple[str, ...]  # argv[0] is looked up on the venv's bin/ (PATH in airflow.env)
    kind: str = "simple"  # simple | oneshot | timer
    extra_service: tuple[str, ...] = ()
    serves_logs: bool = False  # starts Airflow's log server (accepts --skip-serve-logs)
    user: str = "airflow"  # "root": no User=/Group= lines
    timer_every: str = "60s"  # timers: OnUnitActiveSec


def _airflow(*args: str) -> tuple[str, ...]:
    return ("airflow", *args)


def _node_module(description: str, module: str, state_dir: str | None = None, *extra: str) -> Unit:
    """A oneshot `python -m airflow_node.<module>` from the baked package; `state_dir` is a
    RuntimeDirectory kept between its runs (not across a reboot)."""
    state = (f"RuntimeDirectory={state_dir}", "RuntimeDirectoryPreserve=yes") if state_dir else ()
    return Unit(
        description,
        ("python", "-m", f"airflow_node.{module}"),
        kind="oneshot",
        extra_service=(f"Environment=PYTHONPATH={BOOTSTRAP_LIB}", *state, *extra),
    )


UNITS: dict[str, Unit] = {
    "airflow-api-server.service": Unit(
        "Airflow API server (UI, REST and Execution API)", _airflow("api-server")
    ),
    "airflow-scheduler.service": Unit("Airflow scheduler", _airflow("scheduler")),
    "airflow-dag-processor.service": Unit("Airflow DAG processor", _airflow("dag-processor")),
    "airflow-triggerer.service": Unit("Airflow triggerer", _airflow("triggerer"), serves_logs=True),
    "airflow-celery-worker.service": Unit(
        "Airflow Celery worker",
        _airflow("celery", "worker"),
        extra_service=(
            # Warm shutdown (apache/airflow#26587): SIGTERM only to the main process, which
            # stops taking tasks and waits for running ones; KillMode=mixed keeps systemd from
            # also TERMing the task processes themselves. SIGKILL only after the limit.
            "KillSignal=SIGTERM",
            "KillMode=mixed",
            "TimeoutStopSec=@WORKER_STOP_TIMEOUT@",
        ),
        serves_logs=True,
    ),
    "airflow-flower.service": Unit("Celery Flower (Airflow)", _airflow("celery", "flower")),
    "airflow-dag-sync.service": Unit(
        "Sync DAG files from the artifacts bucket onto EFS",
        ("aws", "s3", "sync", "--delete", "--only-show-errors", "${AIRFLOW_DAGS_URI}", "${AIRFLOW_DAGS_DIR}"),
        kind="oneshot",
    ),
    "airflow-dag-sync.timer": Unit("Sync DAG files every minute", (), kind="timer"),
    # Scale-in (apache/airflow#26587): when the worker group's termination lifecycle hook
    # holds this instance, stop the Celery worker warmly, then complete the hook. Root:
    # it stops a unit. Its run lasts up to the worker's TimeoutStopSec.
    "airflow-worker-drain.service": Unit(
        "Warm Celery shutdown and lifecycle-hook completion on Auto Scaling termination",
        (DRAIN_BIN, "--hook", "@DRAIN_HOOK@", "--unit", WORKER_UNIT),
        kind="oneshot",
        user="root",
        extra_service=("TimeoutStartSec=@DRAIN_TIMEOUT@",),
    ),
    "airflow-worker-drain.timer": Unit(
        "Poll the Auto Scaling lifecycle state and Spot notices every 5 s (IMDS)",
        (),
        kind="timer",
        timer_every="5s",
    ),
    # The worker autoscaling signal (queue_depth.py): scheduler nodes hold the DB credentials.
    "airflow-queue-depth.service": _node_module(
        "Publish the worker autoscaling signal (running + queued tasks / worker_concurrency)", "queue_depth"
    ),
    "airflow-queue-depth.timer": Unit("Publish the worker autoscaling signal every minute", (), kind="timer"),
    # Scale-in protection while the local Celery worker runs tasks (worker_protect.py).
    # (its state directory holds the protection last set: the API is called only on a change)
    "airflow-worker-protect.service": _node_module(
        "Protect this worker from scale-in while it runs tasks", "worker_protect", "airflow-worker-protect"
    ),
    "airflow-worker-protect.timer": Unit(
        # each run imports Airflow (about 2.4 CPU-seconds): every minute keeps a burstable
        # worker near its baseline; a task that starts between two runs is still drained, not lost
        "Check every 60 s whether this worker runs tasks",
        (),
        kind="timer",
        timer_every="60s",
    ),
    # Lost units mean a replaced node: the role's health checks every minute; after
    # health.FAILURES_BEFORE_UNHEALTHY failures in a row, SetInstanceHealth Unhealthy.
    # (its state directory holds the failure count)
    "airflow-health.service": _node_module(
        "Role health checks; mark the instance unhealthy in its Auto Scaling group after repeated failures",
        "health",
        "airflow-health",
        "TimeoutStartSec=300",
    ),
    "airflow-health.timer": Unit(
        "Run the role's health checks every minute", (), kind="timer", timer_every=f"{INTERVAL_SECONDS}s"
    ),
}


VENV_EXECUTABLES = ("airflow", "python")


def executable(exe: str, venv: str) -> str:
    """A unit's argv[0] as ExecStart= names it: absolute as given, Airflow's and Python's
    from the venv, anything else from /usr/bin."""
    if exe.startswith("/"):
        return exe
    return f"{venv}/bin/{exe}" if exe in VENV_EXECUTABLES else f"/usr/bin/{exe}"


def component_log_file(unit: str, log_dir: str) -> str:
    """airflow-<component>.service (or its .timer) -> <log_dir>/<component>.log."""
    component = unit.removeprefix("airflow-").rsplit(".", 1)[0]
    return f"{log_dir}/{component}.log"


def render_systemd(
    name: str,
    worker_stop_timeout: int,
    venv: str = "/opt/airflow/venv",
    drain_hook: str | None = None,
    log_dir: str = LOG_DIR,
) -> str:
    unit = UNITS[name]
    subst = {
        "@WORKER_STOP_TIMEOUT@": str(worker_stop_timeout),
        # the drain run waits for the worker's stop, then calls the Auto Scaling API
        "@DRAIN_TIMEOUT@": str(worker_stop_timeout + 300),
        "@DRAIN_HOOK@": drain_hook,  # from the contract, never a default here
    }

    def fill(text: str) -> str:
        for key, value in subst.items():
            if key in text and value is None:
                raise BootstrapError(f"unit {name} needs the drain hook name (contract workerDrain)")
            text = text.replace(key, str(value))
        return text

    if unit.kind == "timer":
        return "\n".join(
            [
                "[Unit]",
                f"Description={unit.description}",
                "",
                "[Timer]",
                "OnActiveSec=0",
                f"OnUnitActiveSec={unit.timer_every}",
                "AccuracySec=1s",
                "",
                "[Install]",
                "WantedBy=timers.target",
                "",
            ]
        )
    exe_path = executable(unit.argv[0], venv)
    lines = [
        "[Unit]",
        f"Description={unit.description}",
        "Wants=network-online.target",
        "After=network-online.target remote-fs.target",
        "",
        "[Service]",
        f"Type={unit.kind}",
        *([f"User={unit.user}", f"Group={unit.user}"] if unit.user != "root" else []),
        f"EnvironmentFile={ENV_FILE}",
        "WorkingDirectory=/var/lib/airflow",
        fill(f"ExecStart={exe_path} {' '.join(unit.argv[1:])}".rstrip()),
    ]
    if unit.kind == "simple":
        lines += ["Restart=on-failure", "RestartSec=10s"]
    # The CloudWatch agent reads files, not journald: each service appends to its
    # component's file (contract cloudwatchAgent), which the agent ships to its log group.
    lines += [f"StandardOutput=append:{component_log_file(name, log_dir)}", "StandardError=inherit"]
    lines += ["NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=full"]
    lines += [fill(x) for x in unit.extra_service]
    if unit.kind == "simple":
        lines += ["", "[Install]", "WantedBy=multi-user.target"]
    return "\n".join(lines) + "\n"


def render_bootstrap_unit() -> str:
    # First boot: user-data writes node.env and execs the bootstrap itself, which leaves
    # DONE_MARKER in /run (tmpfs). On a reboot user-data does not run again and /run is
    # empty, so this unit re-runs the bootstrap (fresh settings, remount, start units).
    # The role's units must not be After= this unit: it starts them and would deadlock.
    return "\n".join(
        [
            "[Unit]",
            "Description=Airflow node bootstrap on reboot (settings -> airflow.cfg -> role units)",
            "Wants=network-online.target",
            "After=network-online.target cloud-final.service",
            "ConditionPathExists=/etc/airflow/node.env",
            f"ConditionPathExists=!{DONE_MARKER}",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            f"ExecStart={BOOTSTRAP_BIN}",
            "TimeoutStartSec=1800",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def all_unit_files(worker_stop_timeout: int, drain_hook: str, log_dir: str = LOG_DIR) -> dict[str, str]:
    files = {
        name: render_systemd(name, worker_stop_timeout, drain_hook=drain_hook, log_dir=log_dir)
        for name in UNITS
    }
    files["airflow-bootstrap.service"] = render_bootstrap_unit()
    return files


# --- local launcher (the rehearsal's stand-in for systemd) ---------------------------


def parse_environment_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.strip('"')
    return env


def launch_local(units: tuple[str, ...], env_file: Path, run_dir: Path, log, skip_serve_logs: bool) -> None:
    """Start each simple unit's command detached, logging to run_dir/<unit>.log and
    recording its process-group id in run_dir/<unit>.pid for the caller's teardown.

    skip_serve_logs: Airflow's task-log server binds every interface (hard-coded host=""
    in airflow/utils/serve_logs/core.py); a rehearsal must listen on loopback only, so it
    runs without it (nothing there reads live task logs from another node)."""
    env = {**os.environ, **parse_environment_file(env_file)}
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in units:
        unit = UNITS.get(name)
        if unit is None:
            raise BootstrapError(f"unit {name} has no command mapping (known: {', '.join(UNITS)})")
        if unit.kind != "simple":
            log(f"local launcher: skipping {name} ({unit.kind} units need systemd; no S3 to sync locally)")
            continue
        argv = [*unit.argv, "--skip-serve-logs"] if skip_serve_logs and unit.serves_logs else list(unit.argv)
        with open(run_dir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=env.get("AIRFLOW_HOME"),
            )
        (run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
        log(f"local launcher: started {name} (pid {proc.pid}): {' '.join(argv)}")


def stop_local(run_dir: Path) -> None:
    for pid_file in run_dir.glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m airflow_node.units")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write every unit file into DIR (bake time)")
    r.add_argument("dir", type=Path)
    r.add_argument("--worker-stop-timeout", type=int, required=True)
    sub.add_parser("list", help="print unit names")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join([*UNITS, "airflow-bootstrap.service"]))
        return 0
    if args.worker_stop_timeout < 1:
        print(
            f"error: --worker-stop-timeout {args.worker_stop_timeout} must be a positive number of seconds",
            file=sys.stderr,
        )
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    # the hook name the infra gives the worker group (settings contract workerDrain)
    try:
        contract = contract_mod.load()
    except BootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, text in all_unit_files(args.worker_stop_timeout, contract.drain_hook, contract.log_dir).items():
        (args.dir / name).write_text(text)
        print(args.dir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
