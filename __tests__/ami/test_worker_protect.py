"""Scale-in protection while busy (airflow_node.worker_protect): the IMDSv2 stub serves the
lifecycle state and the group's metadata tag, a moto Auto Scaling group records the
protection, which is read back with DescribeAutoScalingInstances."""

from __future__ import annotations

import pytest
from airflow_node import BootstrapError
from airflow_node.instance import Imds, imds_url
from airflow_node.worker_protect import IMDS_ENV, apply
from imds_stub import moto_autoscaling_group, write_instance


@pytest.fixture
def autoscaling(moto_url):
    return moto_autoscaling_group(moto_url, "airflow-dev-worker")


def _instance(autoscaling) -> str:
    return autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]


def _no_client():
    raise AssertionError("no Auto Scaling client is needed when the protection stays as it is")


def _protected(autoscaling, instance_id: str) -> bool:
    answer = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
    return answer["AutoScalingInstances"][0]["ProtectedFromScaleIn"]


def test_protection_follows_the_running_tasks(tmp_path, imds, autoscaling):
    state, url = imds
    instance_id = _instance(autoscaling)
    write_instance(state, instance_id, "airflow-dev-worker", "InService")
    run_dir = tmp_path / "run"

    # busy: protected
    assert "protection on" in apply(Imds(url), lambda: autoscaling, 2, run_dir)
    assert _protected(autoscaling, instance_id) is True
    # still busy: no second API call is needed
    assert "already on" in apply(Imds(url), _no_client, 1, run_dir)
    # idle: cleared
    assert "protection off" in apply(Imds(url), lambda: autoscaling, 0, run_dir)
    assert _protected(autoscaling, instance_id) is False
    # the worker does not answer (stopping, starting): left as it is
    assert "unchanged" in apply(Imds(url), _no_client, None, run_dir)
    assert _protected(autoscaling, instance_id) is False


def test_a_terminating_worker_is_left_to_the_drain(tmp_path, imds, autoscaling):
    state, url = imds
    instance_id = _instance(autoscaling)
    write_instance(state, instance_id, "airflow-dev-worker", "Terminated")
    assert "lifecycle state Terminated: protection unchanged" in apply(Imds(url), _no_client, 3, tmp_path)
    assert _protected(autoscaling, instance_id) is False


def test_without_metadata_tags_it_says_so_in_one_line(tmp_path, imds, autoscaling):
    state, url = imds
    write_instance(state, "i-0123456789abcdef0", lifecycle_state="InService")
    with pytest.raises(BootstrapError, match=r"instance metadata tags must be enabled"):
        apply(Imds(url), lambda: autoscaling, 1, tmp_path)


def test_imds_url_outside_imds_and_loopback_is_refused():
    with pytest.raises(BootstrapError, match=r"AIRFLOW_DRAIN_IMDS_URL='http://10.1.2.3' is invalid"):
        imds_url("http://10.1.2.3", IMDS_ENV)
