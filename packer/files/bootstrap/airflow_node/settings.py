"""Where a node's settings come from: /etc/airflow/node.env, then a pluggable source.

- ``ssm`` (EC2): ``aws ssm get-parameters-by-path`` under AIRFLOW_PARAMETER_PREFIX and
  ``aws secretsmanager get-secret-value`` for each secret of the node's role (contract
  roleSecrets), with the instance role, which may read those and no others.
- ``envfile`` (local rehearsal): a KEY=value file with the contract's parameter keys and a
  directory holding one file per contract secret; only the role's secrets are read.

Both return the same two dicts (parameter key -> value, secret key -> value), so the one
renderer serves both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import BootstrapError, last_line
from .contract import Contract
from .instance import imds_url

# Keys user-data may not carry but the local rehearsal (or an operator) may set in node.env.
# Anything else is rejected so that a typo fails loudly instead of being ignored.
LOCAL_KEYS = {
    "AIRFLOW_SETTINGS_SOURCE": "ssm or envfile (default ssm)",
    "AIRFLOW_SETTINGS_FILE": "envfile source: KEY=value file of contract parameter keys",
    "AIRFLOW_SECRETS_DIR": "envfile source: directory with one file per contract secret",
    "AIRFLOW_NODE_ROOT": "prefix for /etc/airflow, /var/lib/airflow, /var/log/airflow, /mnt/efs (default /)",
    "AIRFLOW_VENV": "Airflow virtualenv (default /opt/airflow/venv)",
    "AIRFLOW_TLS": "true or false: rediss:// and TLS to the database (default true)",
    "AIRFLOW_EFS_MOUNT": "true or false: mount EFS (default true)",
    "AIRFLOW_SERVICE_MANAGER": "systemd or local (default systemd)",
    "AIRFLOW_CONFIG_OVERLAY": "ini file merged over the rendered airflow.cfg (local ports etc.)",
    "AIRFLOW_SKIP_SERVE_LOGS": "true or false: local launcher runs worker/triggerer without the log server",
    "AIRFLOW_MIGRATION_WAIT": "seconds non-migrating roles wait for the migration (default: launchHook)",
    "AIRFLOW_HEALTH_WAIT": "seconds a started role may take to turn healthy (default: launchHook)",
    "AIRFLOW_IMDS_URL": "tests only: a loopback IMDS stub http://127.0.0.1:<port> (default 169.254.169.254)",
}
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env_file(path: Path, what: str) -> dict[str, str]:
    """KEY=value lines; blank lines and # comments ignored; optional surrounding quotes."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BootstrapError(f"{what} {path} is unreadable: {exc.strerror}") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BootstrapError(f"{what} {path} line {number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


@dataclass(frozen=True)
class Node:
    role: str
    parameter_prefix: str
    secret_prefix: str
    region: str
    revision: str
    source: str
    settings_file: Path | None
    secrets_dir: Path | None
    root: Path
    venv: Path
    tls: bool
    efs_mount: bool
    service_manager: str
    overlay: Path | None
    migration_wait: int
    skip_serve_logs: bool
    health_wait: int
    imds_url: str
    imds_stubbed: bool  # AIRFLOW_IMDS_URL set: a test's stub, reached even in local mode

    def path(self, absolute: str) -> Path:
        """A fixed node path (/etc/airflow/...), under AIRFLOW_NODE_ROOT when set."""
        return self.root / absolute.lstrip("/")


def _bool(env: dict[str, str], key: str, default: bool) -> bool:
    value = env.get(key)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BootstrapError(f"node.env {key}={value!r} is invalid: allowed true or false")


def _seconds(env: dict[str, str], key: str, default: int) -> int:
    """A positive number of seconds from node.env, else the contract's `default`."""
    value = env.get(key) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise BootstrapError(f"{key}={value!r} is invalid: a positive number of seconds")
    return int(value)


def load_node(path: Path, contract: Contract) -> Node:
    env = parse_env_file(path, "node env file")
    missing = [k for k in contract.user_data_keys if not env.get(k)]
    if missing:
        raise BootstrapError(f"node env file {path} lacks {', '.join(missing)} (written by user-data)")
    unknown = sorted(set(env) - set(contract.user_data_keys) - set(LOCAL_KEYS))
    if unknown:
        allowed = ", ".join([*contract.user_data_keys, *LOCAL_KEYS])
        raise BootstrapError(
            f"node env file {path} has unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    role = env["AIRFLOW_ROLE"]
    if role not in contract.roles:
        raise BootstrapError(f"AIRFLOW_ROLE={role!r} is not a role; allowed: {', '.join(contract.roles)}")
    for key in ("AIRFLOW_PARAMETER_PREFIX", "AIRFLOW_SECRET_PREFIX"):
        value = env[key]
        if not re.fullmatch(r"/?[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*", value):
            raise BootstrapError(
                f"{key}={value!r} is invalid: expected a path like /airflow/dev (no trailing slash)"
            )
    if not env["AIRFLOW_PARAMETER_PREFIX"].startswith("/"):
        raise BootstrapError(
            f"AIRFLOW_PARAMETER_PREFIX={env['AIRFLOW_PARAMETER_PREFIX']!r} is invalid: must start with /"
        )
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", env["AWS_REGION"]):
        raise BootstrapError(f"AWS_REGION={env['AWS_REGION']!r} is not an AWS region name (e.g. us-east-1)")
    source = env.get("AIRFLOW_SETTINGS_SOURCE") or "ssm"
    if source not in ("ssm", "envfile"):
        raise BootstrapError(f"AIRFLOW_SETTINGS_SOURCE={source!r} is invalid: allowed ssm or envfile")
    settings_file = secrets_dir = None
    if source == "envfile":
        for key in ("AIRFLOW_SETTINGS_FILE", "AIRFLOW_SECRETS_DIR"):
            if not env.get(key):
                raise BootstrapError(
                    f"node env file {path}: {key} is required with AIRFLOW_SETTINGS_SOURCE=envfile"
                )
        settings_file, secrets_dir = Path(env["AIRFLOW_SETTINGS_FILE"]), Path(env["AIRFLOW_SECRETS_DIR"])
    manager = env.get("AIRFLOW_SERVICE_MANAGER") or "systemd"
    if manager not in ("systemd", "local"):
        raise BootstrapError(f"AIRFLOW_SERVICE_MANAGER={manager!r} is invalid: allowed systemd or local")
    migration_wait = _seconds(env, "AIRFLOW_MIGRATION_WAIT", contract.migration_wait)
    health_wait = _seconds(env, "AIRFLOW_HEALTH_WAIT", contract.health_wait)
    overlay = env.get("AIRFLOW_CONFIG_OVERLAY")
    return Node(
        role=role,
        parameter_prefix=env["AIRFLOW_PARAMETER_PREFIX"],
        secret_prefix=env["AIRFLOW_SECRET_PREFIX"],
        region=env["AWS_REGION"],
        revision=env["AIRFLOW_SETTINGS_REVISION"],
        source=source,
        settings_file=settings_file,
        secrets_dir=secrets_dir,
        root=Path(env.get("AIRFLOW_NODE_ROOT") or "/"),
        venv=Path(env.get("AIRFLOW_VENV") or "/opt/airflow/venv"),
        tls=_bool(env, "AIRFLOW_TLS", True),
        efs_mount=_bool(env, "AIRFLOW_EFS_MOUNT", True),
        service_manager=manager,
        overlay=Path(overlay) if overlay else None,
        migration_wait=migration_wait,
        skip_serve_logs=_bool(env, "AIRFLOW_SKIP_SERVE_LOGS", False),
        health_wait=health_wait,
        imds_url=imds_url(env.get("AIRFLOW_IMDS_URL")),
        imds_stubbed=bool(env.get("AIRFLOW_IMDS_URL")),
    )


# --- sources ------------------------------------------------------------------------


def _aws(node: Node, *args: str) -> str:
    env = {**os.environ, "AWS_REGION": node.region, "AWS_DEFAULT_REGION": node.region}
    try:
        done = subprocess.run(
            ["aws", *args, "--output", "json"], capture_output=True, text=True, env=env, timeout=120
        )
    except FileNotFoundError:
        raise BootstrapError("the AWS CLI (aws) is not installed") from None
    if done.returncode != 0:
        # the CLI's stderr names the API error (AccessDenied, ResourceNotFound); never holds a value
        raise BootstrapError(f"aws {' '.join(args[:2])} failed: {last_line(done.stderr, '(no message)')}")
    return done.stdout


def read_ssm(node: Node, contract: Contract) -> tuple[dict[str, str], dict[str, str]]:
    prefix = node.parameter_prefix.rstrip("/")
    # The CLI follows NextToken itself, so one call returns every page.
    raw = json.loads(
        _aws(node, "ssm", "get-parameters-by-path", "--path", prefix, "--recursive", "--with-decryption")
    )
    params = {p["Name"][len(prefix) + 1 :]: p["Value"] for p in raw.get("Parameters", [])}
    params = {k: v for k, v in params.items() if k in contract.parameters}
    secrets: dict[str, str] = {}
    for key in contract.role_secrets[node.role]:
        secret_id = f"{node.secret_prefix.rstrip('/')}/{key}"
        env = {**os.environ, "AWS_REGION": node.region, "AWS_DEFAULT_REGION": node.region}
        done = subprocess.run(
            ["aws", "secretsmanager", "get-secret-value", "--secret-id", secret_id, "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if done.returncode == 0:
            secrets[key] = json.loads(done.stdout).get("SecretString", "")
        elif "ResourceNotFoundException" not in done.stderr:
            raise BootstrapError(
                f"aws secretsmanager get-secret-value {secret_id} failed: "
                f"{last_line(done.stderr, '(no message)')}"
            )
        # a missing secret is reported by the renderer, which knows which ones this node needs
    return params, secrets


def read_envfile(node: Node, contract: Contract) -> tuple[dict[str, str], dict[str, str]]:
    assert node.settings_file is not None and node.secrets_dir is not None
    params = parse_env_file(node.settings_file, "settings file")
    unknown = sorted(set(params) - set(contract.parameters))
    if unknown:
        raise BootstrapError(
            f"settings file {node.settings_file} has key(s) not in the contract: {', '.join(unknown)}"
        )
    if not node.secrets_dir.is_dir():
        raise BootstrapError(f"secrets directory {node.secrets_dir} does not exist")
    secrets = {}
    for key in contract.role_secrets[node.role]:
        f = node.secrets_dir / key
        if f.is_file():
            secrets[key] = f.read_text().rstrip("\n")
    return params, secrets


def read_settings(node: Node, contract: Contract) -> tuple[dict[str, str], dict[str, str]]:
    return (read_ssm if node.source == "ssm" else read_envfile)(node, contract)
