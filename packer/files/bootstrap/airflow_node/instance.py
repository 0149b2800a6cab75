"""This instance in its Auto Scaling group: IMDSv2 for the instance id, group name and
region, and the two Auto Scaling calls a node makes about itself - completing its launch
lifecycle hook, and reporting itself unhealthy so that the group replaces it.

Off EC2 (the local rehearsal) there is no IMDS: every call here logs one line and does
nothing. Tests point AIRFLOW_IMDS_URL at a loopback stub (__tests__/ami/imds_stub.py).
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from . import BootstrapError, error_line

IMDS = "http://169.254.169.254"
# link-local IMDS, or a loopback stub in tests; nothing else may stand in for it
_IMDS_RE = re.compile(r"http://(169\.254\.169\.254|127\.0\.0\.1:\d{1,5})")
GROUP_TAG = "tags/instance/aws:autoscaling:groupName"
# a node that was not launched into a group, or whose hook is no longer pending (a reboot)
_NOT_PENDING = "No active Lifecycle Action"

Log = Callable[[str], None]


def imds_url(value: str | None, env: str = "AIRFLOW_IMDS_URL") -> str:
    """The IMDS base URL from the environment variable `env` (tests), checked; default the
    link-local one."""
    url = value or IMDS
    if not _IMDS_RE.fullmatch(url):
        raise BootstrapError(f"{env}={url!r} is invalid: allowed {IMDS} or http://127.0.0.1:<port> (tests)")
    return url


class NoImds(BootstrapError):
    """No IMDSv2 token: not on EC2 (the local rehearsal), or IMDS is off."""


class Imds:
    """IMDSv2 at a URL checked by :func:`imds_url`: one session token, then metadata reads."""

    def __init__(self, url: str, token_timeout_seconds: float = 2) -> None:
        self.url = url
        req = urllib.request.Request(  # noqa: S310 - URL checked by imds_url
            f"{url}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        )
        try:
            with urllib.request.urlopen(req, timeout=token_timeout_seconds) as resp:  # noqa: S310 - imds_url
                self.token = resp.read().decode()
        except (OSError, urllib.error.URLError) as exc:
            raise NoImds(f"no IMDSv2 token from {url} ({getattr(exc, 'reason', exc)})") from None

    def get(self, path: str) -> str | None:
        """A metadata path's value; None when IMDS has none (404) or it is empty."""
        req = urllib.request.Request(  # noqa: S310 - URL checked by imds_url
            f"{self.url}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": self.token}
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - URL checked by imds_url
                return resp.read().decode().strip() or None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise BootstrapError(f"IMDS {path} answered HTTP {exc.code}") from None
        except (OSError, urllib.error.URLError) as exc:
            raise BootstrapError(f"IMDS {path}: {getattr(exc, 'reason', exc)}") from None


@dataclass(frozen=True)
class Identity:
    instance_id: str
    group: str
    region: str


def identity(url: str, log: Log) -> Identity | None:
    """Instance id, group name (instance metadata tags) and region, or None with one log line
    when there is no IMDS (not on EC2) or the instance is not in an Auto Scaling group."""
    try:
        imds = Imds(url)
    except NoImds as exc:
        log(f"{exc}: not on EC2, no Auto Scaling call made")
        return None
    instance_id = imds.get("instance-id")
    if instance_id is None:
        raise BootstrapError("IMDS has no instance-id")
    group = imds.get(GROUP_TAG)
    if group is None:
        # the launch template enables instance metadata tags; none means no group
        log(f"instance {instance_id} has no {GROUP_TAG} in IMDS: not in an Auto Scaling group")
        return None
    return Identity(instance_id, group, imds.get("placement/region") or os.environ.get("AWS_REGION", ""))


def _autoscaling(region: str):
    import boto3  # the Airflow venv's (amazon provider); imported late: only on EC2

    return boto3.client("autoscaling", region_name=region)


def complete_launch(url: str, hook: str, result: str, log: Log) -> bool:
    """Completes this instance's launch lifecycle hook with CONTINUE or ABANDON.
    Returns whether the group took the result; every failure is one log line (the hook's
    default result, ABANDON, applies at its timeout)."""
    if result not in ("CONTINUE", "ABANDON"):
        raise BootstrapError(f"lifecycle action result {result!r} is invalid: allowed CONTINUE or ABANDON")
    try:
        me = identity(url, log)
        if me is None:
            return False
        _autoscaling(me.region).complete_lifecycle_action(
            LifecycleHookName=hook,
            AutoScalingGroupName=me.group,
            InstanceId=me.instance_id,
            LifecycleActionResult=result,
        )
    except BootstrapError as exc:
        log(f"launch hook {hook} not completed: {exc}")
        return False
    except Exception as exc:  # botocore errors: one line, the group decides at the timeout
        message = error_line(exc, 300)
        if _NOT_PENDING in message:
            log(f"launch hook {hook}: no lifecycle action pending (a reboot); nothing to complete")
        else:
            log(f"launch hook {hook} not completed ({type(exc).__name__}: {message}); ABANDON at its timeout")
        return False
    log(f"completed launch hook {hook} of {me.group} for {me.instance_id} ({result})")
    return True


def set_unhealthy(url: str, reason: str, log: Log) -> bool:
    """Marks this instance Unhealthy in its group, which then replaces it."""
    try:
        me = identity(url, log)
        if me is None:
            return False
        _autoscaling(me.region).set_instance_health(
            InstanceId=me.instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False
        )
    except BootstrapError as exc:
        log(f"could not mark the instance unhealthy: {exc}")
        return False
    except Exception as exc:  # botocore errors
        log(f"SetInstanceHealth failed ({type(exc).__name__}: {error_line(exc, 300)})")
        return False
    log(f"marked {me.instance_id} Unhealthy in {me.group} ({reason}); the group replaces it")
    return True
