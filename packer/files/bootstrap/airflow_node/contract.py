"""Loads config/settings-contract.json: the parameter/secret keys, roles and user-data keys.

On the node the file is baked next to this package; locally it is the repository's copy.
Both sides (infra and bootstrap) read this one file, so a renamed key fails a test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import BootstrapError

_BAKED = Path(__file__).resolve().parent.parent / "settings-contract.json"
# packer/files/bootstrap/airflow_node/ -> <repo>/config/ (only meaningful in a checkout)
_REPO = Path(__file__).resolve().parents[4] / "config" / "settings-contract.json"


@dataclass(frozen=True)
class Contract:
    parameters: tuple[str, ...]
    secrets: tuple[str, ...]
    role_secrets: dict[str, tuple[str, ...]]  # role -> the secrets its node fetches and may read
    roles: dict[str, tuple[str, ...]]
    user_data_keys: tuple[str, ...]
    airflow_options: dict[str, str]  # parameter key -> "section.option" where 1:1
    ports: dict[str, int]
    drain_hook: str  # workerDrain.lifecycleHookName: the worker group's termination hook
    scaling_metric: str  # workerScaling.metricName: the queue-depth signal the worker group tracks
    scaling_dimension: str  # workerScaling.queueDimension
    launch_hook: str  # launchHook.lifecycleHookName: every group's launch hook
    migration_wait: int  # launchHook.migrationWaitSeconds: default AIRFLOW_MIGRATION_WAIT
    health_wait: int  # launchHook.healthWaitSeconds: how long a started role may take to turn healthy
    agent_parameter: str  # cloudwatchAgent.parameter: the agent's configuration under the prefix
    log_dir: str  # cloudwatchAgent.logDir: where each service appends <component>.log
    statsd: tuple[str, int, str]  # cloudwatchAgent.statsd: the agent's listener host, port; the prefix
    statsd_metrics: tuple[str, ...]  # cloudwatchAgent.statsd.metrics: the only names Airflow sends
    oldest_queued_metric: str  # workerScaling.oldestQueuedMetricName: the queued-too-long signal


def default_path() -> Path:
    env = os.environ.get("AIRFLOW_CONTRACT")
    if env:
        return Path(env)
    return _BAKED if _BAKED.is_file() else _REPO


def load(path: Path | None = None) -> Contract:
    path = path or default_path()
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BootstrapError(f"settings contract {path} is unreadable: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise BootstrapError(f"settings contract {path} is not valid JSON: {exc}") from None
    try:
        contract = Contract(
            parameters=tuple(p["key"] for p in raw["parameters"]),
            secrets=tuple(s["key"] for s in raw["secrets"]),
            role_secrets={
                role: tuple(keys) for role, keys in raw["roleSecrets"].items() if not role.startswith("$")
            },
            roles={role: tuple(units) for role, units in raw["roles"].items()},
            user_data_keys=tuple(raw["userData"]["keys"]),
            airflow_options={p["key"]: p["airflow"] for p in raw["parameters"] if "airflow" in p},
            ports={k: int(v) for k, v in raw["ports"].items()},
            drain_hook=raw["workerDrain"]["lifecycleHookName"],
            scaling_metric=raw["workerScaling"]["metricName"],
            scaling_dimension=raw["workerScaling"]["queueDimension"],
            launch_hook=raw["launchHook"]["lifecycleHookName"],
            migration_wait=int(raw["launchHook"]["migrationWaitSeconds"]),
            health_wait=int(raw["launchHook"]["healthWaitSeconds"]),
            agent_parameter=raw["cloudwatchAgent"]["parameter"],
            log_dir=raw["cloudwatchAgent"]["logDir"],
            statsd=(
                raw["cloudwatchAgent"]["statsd"]["host"],
                int(raw["cloudwatchAgent"]["statsd"]["port"]),
                raw["cloudwatchAgent"]["statsd"]["prefix"],
            ),
            statsd_metrics=tuple(raw["cloudwatchAgent"]["statsd"]["metrics"]),
            oldest_queued_metric=raw["workerScaling"]["oldestQueuedMetricName"],
        )
    except (KeyError, TypeError) as exc:
        raise BootstrapError(f"settings contract {path} lacks the expected field {exc}") from None
    for role in contract.roles:
        keys = contract.role_secrets.get(role)
        if keys is None:
            raise BootstrapError(f"settings contract {path}: roleSecrets lacks role {role}")
        unknown = sorted(set(keys) - set(contract.secrets))
        if unknown:
            raise BootstrapError(
                f"settings contract {path}: roleSecrets.{role} names {', '.join(unknown)}, "
                f"not among the secrets ({', '.join(contract.secrets)})"
            )
    return contract
