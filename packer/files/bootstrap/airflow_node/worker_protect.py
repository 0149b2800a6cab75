"""Scale-in protection while this worker runs tasks, run by airflow-worker-protect.timer.

Target tracking scales the worker group in when the queue shrinks, and Auto Scaling picks
which instance goes; a busy one would then drain for up to its whole stop timeout while an
idle one could have gone at once. So a worker with running tasks sets SetInstanceProtection
on itself and clears it once idle. The group name comes from the instance metadata tags
(aws:autoscaling:groupName), so the role needs no ec2:DescribeTags; the API call is made only
when the wanted state differs from the one last set (kept in the runtime directory).

Instance refresh replaces protected workers too (the group's refresh preference), and Spot
interruptions ignore protection: both go through the drain instead.

    python -m airflow_node.worker_protect      # once; the timer runs it every 60 s
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from . import BootstrapError
from .instance import GROUP_TAG, Imds, imds_url

IMDS_ENV = "AIRFLOW_DRAIN_IMDS_URL"  # tests only: a loopback IMDS stub, as for the drain


def active_tasks(hostname: str) -> int | None:
    """Tasks the local Celery worker is running; None when it does not answer (not up yet,
    stopping): the protection then stays as it is."""
    from airflow.providers.celery.executors.celery_executor import app

    replies = app.control.inspect(destination=[f"celery@{hostname}"], timeout=5).active()
    if not replies:
        return None
    return sum(len(tasks) for tasks in replies.values())


def apply(imds: Imds, autoscaling: Callable[[], object], busy: int | None, state_dir: Path) -> str:
    """Sets or clears this instance's scale-in protection to match `busy`; returns what it did.
    `autoscaling` makes the Auto Scaling client, called only when the protection changes."""
    if busy is None:
        return "worker not answering: protection unchanged"
    lifecycle = imds.get("autoscaling/target-lifecycle-state")
    if lifecycle != "InService":
        # not in a group yet, or leaving it: the drain owns the instance now
        return f"lifecycle state {lifecycle or 'none'}: protection unchanged"
    want = busy > 0
    marker = state_dir / "protected"
    if marker.is_file() and marker.read_text().strip() == str(want):
        return f"{busy} running task(s): protection already {'on' if want else 'off'}"
    instance_id = imds.get("instance-id")
    group = imds.get(GROUP_TAG)
    if not instance_id or not group:
        raise BootstrapError(
            f"IMDS has no instance-id or {GROUP_TAG} (instance metadata tags must be enabled)"
        )
    autoscaling().set_instance_protection(
        InstanceIds=[instance_id], AutoScalingGroupName=group, ProtectedFromScaleIn=want
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{want}\n")
    switched = "on" if want else "off"
    return f"{busy} running task(s): scale-in protection {switched} for {instance_id} in {group}"


def _autoscaling():
    import boto3  # most runs change nothing and need no client

    return boto3.client("autoscaling")


def main() -> int:
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        imds = Imds(imds_url(os.environ.get(IMDS_ENV), IMDS_ENV), token_timeout_seconds=5)
        try:
            message = apply(
                imds,
                _autoscaling,
                active_tasks(socket.gethostname()),
                # systemd's RuntimeDirectory (units.py), as for airflow-health
                Path(os.environ.get("RUNTIME_DIRECTORY", "/run/airflow-worker-protect")),
            )
        except (BotoCoreError, ClientError) as exc:
            raise BootstrapError(f"SetInstanceProtection failed: {exc}") from None
    except BootstrapError as exc:
        print(f"airflow-worker-protect: ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"airflow-worker-protect: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
