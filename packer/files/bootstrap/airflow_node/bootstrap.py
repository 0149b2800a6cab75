"""airflow-bootstrap: turn a golden-AMI instance into its role.

Steps: node.env -> the role's settings and secrets (ssm | envfile) -> render -> write config
-> EFS -> database (migrate under a lock, rotate a multi-key fernet secret, or wait for it;
a worker, which holds no database credentials, waits for the Execution API) -> admin user
-> start exactly the role's units -> wait until the role passes its health checks
(health.py) -> complete the group's launch lifecycle hook: CONTINUE when healthy, ABANDON
on any failure, so the group replaces a node that never became healthy.
Any problem ends the run with exit status 1 and one message naming what to fix.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import BootstrapError, error_line, health, last_line
from . import contract as contract_mod
from .instance import complete_launch
from .render import EFS, ETC, HOME, LOGS, Rendered, env_text, render, to_ini
from .settings import Node, load_node, read_settings
from .units import DONE_MARKER, launch_local

MIGRATION_LOCK_PG = 0x41495246_424F4F54  # "AIRFBOOT": distinct from Airflow's own lock ids
MIGRATION_LOCK_MYSQL = "airflow_node_bootstrap_migrate"


def log(message: str) -> None:
    print(f"airflow-bootstrap: {message}", file=sys.stderr, flush=True)


def _airflow_ids() -> tuple[int, int] | None:
    """uid/gid of the airflow user when we are root on a baked node, else None (local)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("airflow").pw_uid, grp.getgrnam("airflow").gr_gid
    except KeyError:
        return None


def _write(path: Path, text: str, mode: int, ids: tuple[int, int] | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # created with the final mode, so a secret is never briefly world-readable
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    if ids is not None:
        os.chown(tmp, 0, ids[1])  # root:airflow
    os.replace(tmp, path)


def write_files(node: Node, out: Rendered) -> None:
    ids = _airflow_ids()
    secret_dir = node.path(f"{ETC}/secrets")
    secret_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secret_dir, 0o750)  # noqa: S103 - the airflow group must traverse it; others get nothing
    if ids is not None:
        os.chown(secret_dir, 0, ids[1])
    for name, value in out.secret_files.items():
        # no trailing newline: Airflow uses a _cmd's output verbatim
        _write(secret_dir / name, value, 0o640, ids)
    # a file an earlier render wrote and this one does not need holds a secret nobody reads
    for stale in secret_dir.iterdir():
        if stale.name not in out.secret_files:
            stale.unlink()
    _write(node.path(f"{ETC}/airflow.cfg"), to_ini(out.config), 0o644, ids)
    _write(node.path(f"{ETC}/airflow.env"), env_text(out.environment), 0o644, ids)
    for d in (HOME, LOGS):
        node.path(d).mkdir(parents=True, exist_ok=True)
        if ids is not None:
            os.chown(node.path(d), *ids)
    log(f"wrote {node.path(ETC + '/airflow.cfg')} and {len(out.secret_files)} secret file(s) (0640)")


def mount_efs(node: Node, out: Rendered) -> None:
    efs = node.path(EFS)
    if not node.efs_mount:
        log(f"EFS mount skipped (AIRFLOW_EFS_MOUNT=false, local mode); using {efs} as is")
    else:
        fstab = Path("/etc/fstab")
        lines = [ln for ln in fstab.read_text().splitlines() if f" {EFS} " not in ln]
        fstab.write_text("\n".join([*lines, out.fstab]) + "\n")
        efs.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["mountpoint", "-q", str(efs)]).returncode != 0:
            done = subprocess.run(["mount", str(efs)], capture_output=True, text=True)
            if done.returncode != 0:
                raise BootstrapError(
                    f"mounting EFS ({out.fstab.split()[0]}) on {efs} failed: {done.stderr.strip()}"
                )
        log(f"EFS mounted on {efs} (tls, iam, access point)")
    for sub in ("dags", "plugins"):
        (efs / sub).mkdir(parents=True, exist_ok=True)


AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"


def start_cloudwatch_agent(node: Node, contract: contract_mod.Contract) -> None:
    """The CloudWatch agent, from its configuration parameter (contract cloudwatchAgent), before
    the units start so that its statsd listener takes Airflow's first metrics. A node whose
    agent does not start still serves: the failure is logged (and the scheduler-heartbeat
    alarm fires), since telemetry must not take the cluster down."""
    parameter = f"{node.parameter_prefix.rstrip('/')}/{contract.agent_parameter}"
    if node.service_manager == "local":
        log(f"CloudWatch agent skipped (local mode); on EC2 it loads ssm:{parameter}")
        return
    cmd = [AGENT_CTL, "-a", "fetch-config", "-m", "ec2", "-s", "-c", f"ssm:{parameter}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log(f"WARNING: CloudWatch agent not started ({type(exc).__name__}: {exc}); no logs or metrics ship")
        return
    if done.returncode != 0:
        last = last_line(done.stderr or done.stdout, "(no output)", 300)
        log(f"WARNING: CloudWatch agent not started (ssm:{parameter}): {last}; no logs or metrics ship")
        return
    log(f"CloudWatch agent started from ssm:{parameter}")


def _airflow(node: Node, out: Rendered, *args: str, stdin: str | None = None, capture: bool = True):
    """Run an airflow CLI (or venv python) command as the airflow user with the node's env."""
    # PYTHONPATH: `python -m airflow_node.admin_user` runs from this package's copy
    env = {**os.environ, **out.environment, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    argv = [str(node.venv / "bin" / args[0]), *args[1:]]
    if _airflow_ids() is not None:
        argv = ["runuser", "-u", "airflow", "--", *argv]
    return subprocess.run(
        argv, env=env, input=stdin, capture_output=capture, text=True, cwd=out.environment["AIRFLOW_HOME"]
    )


def _failure(node: Node, step: str, done: subprocess.CompletedProcess) -> str:
    """The command's last line (the exception message) for the error; its whole output goes
    to /var/log/airflow/bootstrap-<step>.log for the operator, so no traceback is shown."""
    text = ((done.stdout or "") + (done.stderr or "")).strip()
    log_file = node.path(f"{LOGS}/bootstrap-{step}.log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(text + "\n")
    lines = text.splitlines()
    # prefer the exception line ("sqlalchemy.exc.OperationalError: ...") over trailers
    errors = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", ln)]
    last = (errors or lines or ["(no output)"])[-1]
    return f"{last[:300]} (full output: {log_file})"


def migrate(node: Node, out: Rendered) -> None:
    """`airflow db migrate` under our own advisory lock.

    Airflow's upgrade path already takes its DBLocks.MIGRATIONS lock on PostgreSQL and MySQL,
    but creating a *fresh* schema on MySQL does not (utils/db.py _create_db_from_orm_mysql),
    and the admin user must be created once; so two scheduler nodes booting together
    serialise here, and the second finds the schema current and skips both.
    """
    from sqlalchemy import create_engine, text

    url = out.secret_files["sql_alchemy_conn"]
    engine = create_engine(url, pool_pre_ping=True)
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_PG})
            else:
                got = conn.execute(text("SELECT GET_LOCK(:k, 1800)"), {"k": MIGRATION_LOCK_MYSQL}).scalar()
                if got != 1:
                    raise BootstrapError("timed out after 1800s waiting for the migration lock")
            waited = time.monotonic() - started
            # a node that waited found the schema migrated (and the admin created) by the
            # holder before it; `db migrate` would redo nothing but cost a minute of boot
            if _airflow(node, out, "airflow", "db", "check-migrations", "-t", "0").returncode == 0:
                log(f"migration lock held after {waited:.1f}s; database schema is current")
                rotate_fernet(node, out)
                return
            log(f"migration lock held after {waited:.1f}s; running airflow db migrate")
            done = _airflow(node, out, "airflow", "db", "migrate")
            if done.returncode != 0:
                raise BootstrapError(
                    f"airflow db migrate failed (exit {done.returncode}): {_failure(node, 'migrate', done)}"
                )
            ensure_admin(node, out)
            rotate_fernet(node, out)
            conn.commit()
    except BootstrapError:
        raise
    except Exception as exc:  # connection errors: name the endpoint, not the password
        raise BootstrapError(
            f"cannot reach the metadata database for the migration lock: {type(exc).__name__}: "
            f"{error_line(exc, 200)}"
        ) from None
    finally:
        engine.dispose()
    log(f"database migrated in {time.monotonic() - started:.1f}s")


def rotate_fernet(node: Node, out: Rendered) -> None:
    """With a multi-key fernet secret ("new,old"), re-encrypt every stored connection,
    variable and trigger with the first key, under the migration lock so two scheduler nodes
    do not interleave. Idempotent: a later boot re-encrypts with the same first key. Once
    it has run, the old key can leave the secret (README, Secrets and rotation)."""
    if not out.rotate_fernet:
        return
    started = time.monotonic()
    done = _airflow(node, out, "airflow", "rotate-fernet-key")
    if done.returncode != 0:
        raise BootstrapError(
            f"airflow rotate-fernet-key failed (exit {done.returncode}): "
            f"{_failure(node, 'rotate-fernet-key', done)}"
        )
    seconds = time.monotonic() - started
    log(f"fernet key rotation: stored values re-encrypted with the first key ({seconds:.1f}s)")


def ensure_admin(node: Node, out: Rendered) -> None:
    # password over stdin: never in argv (ps) or the environment
    done = _airflow(
        node,
        out,
        "python",
        "-m",
        "airflow_node.admin_user",
        "--email",
        out.admin_email,
        stdin=out.admin_password,
    )
    if done.returncode != 0:
        raise BootstrapError(f"creating the FAB admin user failed: {_failure(node, 'admin-user', done)}")
    log(last_line(done.stdout, "admin user ensured"))  # FAB logs its permission sync; keep our verdict


def wait_for_execution_api(node: Node, out: Rendered) -> None:
    """A role without database credentials (worker) waits for the Execution API, the only
    way its tasks reach the metadata DB; the api-server answers only once migrated."""
    url = out.config["core"]["execution_api_server_url"].rstrip("/") + "/health"
    started = time.monotonic()
    log(f"waiting up to {node.migration_wait}s for the Execution API ({url})")
    last = "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - http(s) checked by the renderer
                if resp.status == 200:
                    break
                last = f"HTTP {resp.status}"
        except (OSError, urllib.error.URLError) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if time.monotonic() - started > node.migration_wait:
            raise BootstrapError(
                f"Execution API {url} not healthy within {node.migration_wait}s "
                f"(is an api-server up?): {last}"
            )
        time.sleep(3)
    log(f"Execution API healthy ({time.monotonic() - started:.1f}s)")


def wait_for_migrations(node: Node, out: Rendered) -> None:
    started = time.monotonic()
    log(f"waiting up to {node.migration_wait}s for a scheduler node to migrate the database")
    done = _airflow(node, out, "airflow", "db", "check-migrations", "-t", str(node.migration_wait))
    if done.returncode != 0:
        raise BootstrapError(
            f"database not migrated within {node.migration_wait}s (is a scheduler node up?): "
            f"{_failure(node, 'check-migrations', done)}"
        )
    log(f"database schema is current ({time.monotonic() - started:.1f}s)")


def start_units(node: Node, out: Rendered) -> None:
    if node.service_manager == "local":
        launch_local(
            out.units, node.path(f"{ETC}/airflow.env"), node.path("/run/airflow"), log, node.skip_serve_logs
        )
        return
    for cmd in (["systemctl", "daemon-reload"], ["systemctl", "start", *out.units]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BootstrapError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    inactive = [
        u
        for u in out.units
        if u.endswith(".service") and subprocess.run(["systemctl", "is-active", "--quiet", u]).returncode != 0
    ]
    if inactive:
        raise BootstrapError(f"unit(s) not active after start: {', '.join(inactive)} (see journalctl -u)")
    log(f"started {', '.join(out.units)}")


def complete_launch_hook(node: Node, contract: contract_mod.Contract, result: str) -> None:
    """Tells the group the outcome (CONTINUE or ABANDON). Off EC2 - the local rehearsal - one
    log line."""
    if node.service_manager == "local" and not node.imds_stubbed:
        log(f"launch hook {contract.launch_hook} skipped: local service manager, not on EC2 ({result})")
        return
    complete_launch(node.imds_url, contract.launch_hook, result, log)


def run(node: Node, contract: contract_mod.Contract) -> None:
    log(f"role {node.role}, settings from {node.source} ({node.parameter_prefix}), revision {node.revision}")
    params, secrets = read_settings(node, contract)
    out = render(contract, node, params, secrets)
    write_files(node, out)
    start_cloudwatch_agent(node, contract)
    mount_efs(node, out)
    if out.migrate:
        migrate(node, out)
    elif "sql_alchemy_conn" in out.secret_files:
        wait_for_migrations(node, out)
    else:
        wait_for_execution_api(node, out)
    start_units(node, out)
    health.wait_healthy(
        out.units,
        lambda argv: _airflow(node, out, *argv),
        health.read_config(node.path(f"{ETC}/airflow.cfg")),
        node.health_wait,
        log,
    )
    node.path(DONE_MARKER).parent.mkdir(parents=True, exist_ok=True)
    node.path(DONE_MARKER).write_text(f"{node.role} {node.revision}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="airflow-bootstrap", description=__doc__.splitlines()[0])
    ap.add_argument("--node-env", type=Path, default=Path("/etc/airflow/node.env"))
    ap.add_argument(
        "--contract", type=Path, default=None, help="settings contract JSON (default: baked copy)"
    )
    args = ap.parse_args(argv)
    started = time.monotonic()
    node = None
    try:
        contract = contract_mod.load(args.contract)
        node = load_node(args.node_env, contract)
        run(node, contract)
    except BootstrapError as exc:
        log(f"FAILED after {time.monotonic() - started:.1f}s: {exc}")
        if node is None:  # no node.env or contract, so no hook to name
            log(f"launch hook not completed ({exc}); the group abandons the instance at the hook's timeout")
        else:
            complete_launch_hook(node, contract, "ABANDON")
        return 1
    log(f"role {node.role} ready; bootstrap wall time {time.monotonic() - started:.1f}s")
    complete_launch_hook(node, contract, "CONTINUE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
