"""Full DAG runs with dag.test() against the moto server: real operators, sensors, triggers
(run inline by dag.test), real Airflow metadata DB, real SMTP delivery to a loopback sink, and
real SES calls to moto when the node's e-mail backend is SES."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from pipeline_support import (
    ALERT_EMAIL,
    DATA_BUCKET,
    EMR_SECURITY_GROUPS,
    FROM_EMAIL,
    MOTO_URL,
    REGION,
    TEST_ENV,
    load_dags,
    node_email_env,
    speed_up,
)

DAG_1 = "champion_dag_1_emr"
DAG_2 = "champion_dag_2_sort"
RUNNER = Path(__file__).resolve().parent / "run_dag.py"
# DAG_1's node with email/backend=ses instead of the suite's smtp
SES_NODE_ENV = {**dict.fromkeys(node_email_env("smtp")), **node_email_env("ses")}

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def dags(airflow_db):
    bag = load_dags()
    for dag in bag.dags.values():
        speed_up(dag)
    return bag.dags


def _moto_client(service: str):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=MOTO_URL,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def emr_client(moto_server):
    return _moto_client("emr")


def unique_logical_date() -> datetime:
    # dag.test() replaces an existing run of the same DAG and logical date: keep them apart.
    time.sleep(0.01)
    return datetime.now(UTC)


def make_cluster(emr_client) -> str:
    return emr_client.run_job_flow(
        Name="test-cluster",
        ReleaseLabel="emr-7.12.0",
        Applications=[{"Name": "Hadoop"}, {"Name": "Spark"}],
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m7g.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m7g.xlarge", "InstanceCount": 2},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_the_emr_step_driver_only_acts_on_whole_clusters(emr, emr_client):
    # moto registers a cluster before its state and steps exist; a driver tick that met one
    # would crash the stand-in and leave every sensor of the suite waiting for its timeout.
    # GIVEN the driver ticking as fast as it can, and threads switching every microsecond
    tick, emr.tick = emr.tick, 0.0
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        # WHEN clusters are created on several server threads at once
        with ThreadPoolExecutor(max_workers=4) as pool:
            cluster_ids = list(pool.map(lambda _: make_cluster(emr_client), range(100)))
        time.sleep(0.2)
    finally:
        sys.setswitchinterval(switch)
        emr.tick = tick

    # THEN no tick failed, the driver still runs, and each cluster is waiting for steps
    assert emr.errors == []
    assert emr.is_alive()
    states = {emr_client.describe_cluster(ClusterId=c)["Cluster"]["Status"]["State"] for c in cluster_ids}
    assert states == {"WAITING"}
    emr_client.terminate_job_flows(JobFlowIds=cluster_ids)


def test_dag_2_runs_both_steps_to_completion(dags, emr, emr_client, capsys, caplog):
    cluster_id = make_cluster(emr_client)
    dag_run = dags[DAG_2].test(logical_date=unique_logical_date(), run_conf={"cluster_id": cluster_id})

    assert str(dag_run.state) == "success", task_states(dag_run)
    # Each step sensor saw its step RUNNING, deferred, and its trigger polled the moto server
    # through aiobotocore (dag.test runs triggers inline) until the step COMPLETED.
    # (task logs reach stdout or the logging capture, depending on how pytest captures)
    captured = capsys.readouterr()
    log = "\n".join((captured.out, captured.err, caplog.text))
    for sensor_id in ("watch_copy_step", "watch_sort_step"):
        assert any(
            "Pausing task as DEFERRED" in line and f"task_id={sensor_id}" in line for line in log.splitlines()
        )
    assert log.count("Step is still in non-terminal state: RUNNING") >= 2
    steps = emr_client.list_steps(ClusterId=cluster_id)["Steps"][::-1]  # API lists newest first
    assert [(s["Name"], s["Status"]["State"]) for s in steps] == [
        ("copy_csv_to_hdfs", "COMPLETED"),
        ("sort_by_spending_score", "COMPLETED"),
    ]
    copy_args, sort_args = (s["Config"]["Args"] for s in steps)
    stamp = dag_run.run_id.replace(":", "").replace("+", "")
    assert copy_args == [
        "s3-dist-cp",
        f"--src=s3://{DATA_BUCKET}/champion/data/",
        f"--dest=hdfs:///champion/{stamp}/input",
        "--srcPattern=.*/champion/data/Mall_Customers\\.csv",
    ]
    assert sort_args == [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        TEST_ENV["AIRFLOW_VAR_SPARK_JOB_URI"],
        "--input",
        f"hdfs:///champion/{stamp}/input/Mall_Customers.csv",
        "--output",
        f"s3://{DATA_BUCKET}/champion/output/{stamp}/",
    ]
    assert all(s["ActionOnFailure"] == "CONTINUE" for s in steps)


@pytest.mark.parametrize("conf", [{}, {"cluster_id": "not-a-cluster"}, {"cluster_id": "j-lower"}])
def test_dag_2_rejects_a_missing_or_bad_cluster_id(dags, emr, conf, capsys):
    dag_run = dags[DAG_2].test(logical_date=unique_logical_date(), run_conf=conf)

    assert str(dag_run.state) == "failed"
    states = task_states(dag_run)
    assert states["validate_cluster_id"] == "failed"
    assert states["add_copy_step"] == "upstream_failed"
    output = capsys.readouterr()
    assert "dag_run.conf['cluster_id'] must be an EMR cluster id" in output.out + output.err
    assert repr(conf.get("cluster_id")) in output.out + output.err


def test_dag_2_param_rejects_a_non_string_cluster_id_at_trigger_time(dags):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="cluster_id"):
        dags[DAG_2].test(logical_date=unique_logical_date(), run_conf={"cluster_id": 42})


def _find_dag_run(dag_id: str, *, logical_date: datetime | None = None, run_id: str | None = None):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        if logical_date is not None:
            query = query.where(DagRun.logical_date == logical_date)
        if run_id is not None:
            query = query.where(DagRun.run_id == run_id)
        dag_run = session.scalar(query)
        if dag_run is None:
            return None
        return {
            "run_id": dag_run.run_id,
            "logical_date": dag_run.logical_date,
            "run_after": dag_run.run_after,
            "conf": dict(dag_run.conf or {}),
            "state": str(dag_run.state),
            "tasks": {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)},
        }


def run_dag_1(
    dags, tmp_path, env: dict | None = None, timeout: float = 300
) -> tuple[dict, dict | None, dict]:
    """Run DAG_1 with dag.test() in a subprocess; run the DAG_2 run it triggers in this process.

    dag.test() executes one DAG run and no scheduler runs the run TriggerDagRunOperator
    creates, so the test plays the scheduler for it: once DAG_1's trigger has created the
    queued DAG_2 run, DAG_2's dag.test() runs it (same logical date, run id and conf;
    dag.test replaces the queued run with its own, so only run_after differs). DAG_1's
    deferred sensor meanwhile polls the shared metadata DB, as it would in the cluster.
    Returns (DAG_1 run, DAG_2 run or None, DAG_2 run as triggered).
    """
    logical_date = unique_logical_date()
    result_file = tmp_path / "dag_1_result.json"
    log_file = (tmp_path / "dag_1.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), DAG_1, logical_date.isoformat(), str(result_file)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None},
    )
    try:
        deadline = time.monotonic() + timeout
        triggered = None
        while triggered is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            triggered = _find_dag_run(DAG_2, logical_date=logical_date)
        dag_2_run = None
        if triggered is not None:
            # dag.test() names its run manual__<run_after>; TriggerDagRunOperator named the
            # triggered one manual__<logical date>: pass that as run_after to keep the run id.
            run = dags[DAG_2].test(
                logical_date=triggered["logical_date"],
                run_after=triggered["logical_date"],
                run_conf=triggered["conf"],
            )
            dag_2_run = _find_dag_run(DAG_2, run_id=run.run_id)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()
    assert result_file.exists(), f"DAG_1 runner failed, see {tmp_path / 'dag_1.log'}"
    result = json.loads(result_file.read_text())
    dag_1_run = _find_dag_run(DAG_1, run_id=result["run_id"])
    return dag_1_run, dag_2_run, triggered


def cluster_of(emr_client, dag_1_run_id: str) -> dict:
    summaries = (s for page in emr_client.get_paginator("list_clusters").paginate() for s in page["Clusters"])
    for summary in summaries:
        cluster = emr_client.describe_cluster(ClusterId=summary["Id"])["Cluster"]
        tags = {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}
        if tags.get("airflow:run_id") == dag_1_run_id:
            return cluster
    raise AssertionError(f"no EMR cluster tagged with DAG_1 run {dag_1_run_id}")


def test_dag_1_end_to_end_success(dags, emr, emr_client, smtp_sink, tmp_path):
    smtp_sink.clear()
    dag_1_run, dag_2_run, triggered = run_dag_1(dags, tmp_path)

    assert dag_1_run["state"] == "success", dag_1_run["tasks"]
    assert set(dag_1_run["tasks"].values()) == {"success"}
    assert dag_2_run is not None and dag_2_run["state"] == "success", dag_2_run
    assert dag_2_run["run_id"] == triggered["run_id"]

    cluster = cluster_of(emr_client, dag_1_run["run_id"])
    assert triggered["conf"] == {"cluster_id": cluster["Id"]}
    assert cluster["Status"]["State"] == "TERMINATED"
    assert cluster["ReleaseLabel"] == dags[DAG_1].params["release_label"]
    assert {a["Name"] for a in cluster["Applications"]} == {"Hadoop", "Spark"}
    assert cluster["ServiceRole"] == TEST_ENV["AIRFLOW_VAR_EMR_SERVICE_ROLE"]
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == TEST_ENV["AIRFLOW_VAR_EMR_JOB_FLOW_ROLE"]
    assert cluster["Ec2InstanceAttributes"]["Ec2SubnetId"] == TEST_ENV["AIRFLOW_VAR_EMR_SUBNET_ID"]
    # the security groups from the emr_*_security_group_id Variables, not EMR's default ones
    for field, group in EMR_SECURITY_GROUPS.items():
        assert cluster["Ec2InstanceAttributes"][field] == group, field
    assert cluster["LogUri"] == TEST_ENV["AIRFLOW_VAR_EMR_LOG_URI"]
    assert cluster["AutoTerminate"] is False  # KeepJobFlowAliveWhenNoSteps
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert tags["for-use-with-amazon-emr-managed-policies"] == "true"  # the EMR v2 policies need it
    # the node roles control only clusters carrying their cluster's name (modules/iam.ts)
    assert tags["airflow:cluster"] == TEST_ENV["AIRFLOW_VAR_EMR_CLUSTER_TAG"]
    assert all(k.startswith("airflow:") or k == "for-use-with-amazon-emr-managed-policies" for k in tags), (
        tags
    )
    groups = emr_client.list_instance_groups(ClusterId=cluster["Id"])["InstanceGroups"]
    shape = sorted((g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"]) for g in groups)
    assert shape == [("CORE", "m7g.xlarge", 2), ("MASTER", "m7g.xlarge", 1)]
    steps = emr_client.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert sorted((s["Name"], s["Status"]["State"]) for s in steps) == [
        ("copy_csv_to_hdfs", "COMPLETED"),
        ("sort_by_spending_score", "COMPLETED"),
    ]

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == ALERT_EMAIL
    assert message["From"] == FROM_EMAIL
    assert message["Subject"] == f"[Airflow] {DAG_1} SUCCESS: {dag_1_run['run_id']}"
    body = message.get_body(("html", "plain")).get_content()
    assert cluster["Id"] in body and triggered["run_id"] in body
    assert "Failed tasks" not in body


@pytest.fixture(scope="module")
def ses_client(moto_server):
    return _moto_client("ses")


def ses_messages(source: str) -> list[email.message.EmailMessage]:
    """The messages moto's SES accepted (SendRawEmail) from source, from the server's state dump."""
    with urllib.request.urlopen(f"{MOTO_URL}/moto-api/data.json", timeout=30) as response:  # noqa: S310
        raw_messages = json.load(response).get("ses", {}).get("RawMessage", [])
    return [
        email.message_from_string(m["raw_data"], policy=email.policy.default)
        for m in raw_messages
        if m["source"] == source
    ]


def test_dag_1_with_the_ses_backend_mails_the_outcome_through_ses(
    dags, emr, emr_client, ses_client, smtp_sink, tmp_path
):
    smtp_sink.clear()
    # GIVEN the sender is a verified SES identity (moto, like SES, refuses any other sender)
    ses_client.verify_email_identity(EmailAddress=FROM_EMAIL)
    before = len(ses_messages(FROM_EMAIL))
    dag_1_run, _, triggered = run_dag_1(dags, tmp_path, env=SES_NODE_ENV)

    assert dag_1_run["state"] == "success", dag_1_run["tasks"]
    assert set(dag_1_run["tasks"].values()) == {"success"}
    # THEN the outcome went through the SES API, not SMTP
    messages = ses_messages(FROM_EMAIL)
    assert len(messages) == before + 1, messages
    message = messages[-1]
    assert message["From"] == FROM_EMAIL
    assert message["To"] == ALERT_EMAIL
    assert message["Subject"] == f"[Airflow] {DAG_1} SUCCESS: {dag_1_run['run_id']}"
    body = message.get_body(("html", "plain")).get_content()
    assert cluster_of(emr_client, dag_1_run["run_id"])["Id"] in body and triggered["run_id"] in body
    time.sleep(1)
    assert smtp_sink.messages == []


def test_dag_1_with_the_ses_backend_fails_when_ses_refuses_the_sender(dags, emr, smtp_sink, tmp_path):
    smtp_sink.clear()
    # GIVEN a sender that is no verified SES identity
    sender = "unverified@example.test"
    dag_1_run, _, _ = run_dag_1(dags, tmp_path, env={**SES_NODE_ENV, "AIRFLOW__EMAIL__FROM_EMAIL": sender})

    # THEN the pipeline succeeded, but the run fails because the outcome mail was refused
    tasks = dag_1_run["tasks"]
    assert tasks["terminate_emr_cluster"] == "success", tasks
    assert tasks["email_outcome"] == "failed"
    assert tasks["fail_run_if_pipeline_failed"] == "failed"
    assert dag_1_run["state"] == "failed"
    log = (tmp_path / "dag_1.log").read_text()
    assert f"Did not have authority to send from email {sender}" in log
    assert ses_messages(sender) == []
    assert smtp_sink.messages == []  # no fallback to SMTP


def test_dag_1_when_a_step_fails_still_terminates_emails_and_fails(
    dags, emr, emr_client, smtp_sink, tmp_path
):
    smtp_sink.clear()
    emr.fail_steps = {"sort_by_spending_score"}
    dag_1_run, dag_2_run, triggered = run_dag_1(dags, tmp_path)

    assert dag_2_run is not None and dag_2_run["state"] == "failed"
    assert dag_2_run["tasks"]["watch_sort_step"] == "failed"
    assert dag_2_run["tasks"]["watch_copy_step"] == "success"

    tasks = dag_1_run["tasks"]
    assert dag_1_run["state"] == "failed", tasks
    assert tasks["wait_for_dag_2"] == "failed"
    assert tasks["terminate_emr_cluster"] == "success"
    assert tasks["email_outcome"] == "success"
    assert tasks["fail_run_if_pipeline_failed"] == "failed"

    cluster = cluster_of(emr_client, dag_1_run["run_id"])
    assert cluster["Status"]["State"] == "TERMINATED"
    steps = {s["Name"]: s["Status"]["State"] for s in emr_client.list_steps(ClusterId=cluster["Id"])["Steps"]}
    assert steps == {"copy_csv_to_hdfs": "COMPLETED", "sort_by_spending_score": "FAILED"}

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == ALERT_EMAIL
    assert message["Subject"] == f"[Airflow] {DAG_1} FAILED: {dag_1_run['run_id']}"
    body = message.get_body(("html", "plain")).get_content()
    assert f"Failed tasks in {DAG_1}: wait_for_dag_2" in body
    assert f"Failed tasks in {DAG_2}: watch_sort_step" in body
    assert cluster["Id"] in body


def test_dag_1_without_an_alert_address_skips_only_the_email(dags, emr, emr_client, smtp_sink, tmp_path):
    smtp_sink.clear()
    dag_1_run, dag_2_run, _ = run_dag_1(dags, tmp_path, env={"AIRFLOW_VAR_ALERT_EMAIL": "none"})

    tasks = dag_1_run["tasks"]
    assert dag_1_run["state"] == "success", tasks
    assert tasks["email_outcome"] == "skipped"
    assert tasks["fail_run_if_pipeline_failed"] == "success"
    assert cluster_of(emr_client, dag_1_run["run_id"])["Status"]["State"] == "TERMINATED"
    time.sleep(1)
    assert smtp_sink.messages == []


def test_dag_1_when_the_cluster_cannot_be_created_reports_it_and_fails(dags, emr, smtp_sink, tmp_path):
    smtp_sink.clear()
    # A missing setting makes create_emr_cluster fail before any cluster exists.
    dag_1_run, dag_2_run, triggered = run_dag_1(dags, tmp_path, env={"AIRFLOW_VAR_EMR_SUBNET_ID": None})

    assert triggered is None and dag_2_run is None
    tasks = dag_1_run["tasks"]
    assert dag_1_run["state"] == "failed", tasks
    assert tasks["create_emr_cluster"] == "failed"
    assert tasks["wait_for_dag_2"] == "upstream_failed"
    assert tasks["terminate_emr_cluster"] == "skipped"  # nothing to terminate, no bogus error
    assert tasks["email_outcome"] == "success"
    assert tasks["fail_run_if_pipeline_failed"] == "failed"

    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == f"[Airflow] {DAG_1} FAILED: {dag_1_run['run_id']}"
    body = message.get_body(("html", "plain")).get_content()
    assert f"Failed tasks in {DAG_1}: create_emr_cluster</pre>" in body
    assert "EMR cluster: not created" in body


class ThrottlingProxy:
    """In front of the moto server: answers the first ``throttled`` DescribeCluster calls with
    ThrottlingException (what EMR answers a busy account), forwards everything else."""

    def __init__(self, throttled: int) -> None:
        import http.server
        import threading
        import urllib.request

        proxy = self
        self.remaining = throttled
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("X-Amz-Target", "").endswith(".DescribeCluster"):
                    with proxy.lock:
                        throttle, proxy.remaining = proxy.remaining > 0, proxy.remaining - 1
                    if throttle:
                        payload = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
                        self.send_response(400)
                        self.send_header("Content-Type", "application/x-amz-json-1.1")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(MOTO_URL + self.path, data=body, headers=headers)  # noqa: S310
                try:
                    response = urllib.request.urlopen(request, timeout=30)  # noqa: S310 - loopback moto server
                except urllib.error.HTTPError as err:
                    response = err
                data = response.read()
                self.send_response(response.status if hasattr(response, "status") else response.code)
                for key, value in response.headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "server",
                        "date",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_dag_1_terminates_a_cluster_whose_create_task_failed_after_run_job_flow(
    dags, emr, emr_client, smtp_sink, tmp_path
):
    smtp_sink.clear()
    # GIVEN EMR throttles DescribeCluster right after RunJobFlow succeeded: more throttles than
    # botocore retries, so create_emr_cluster fails although its cluster exists
    proxy = ThrottlingProxy(throttled=5)
    connection = json.loads(TEST_ENV["AIRFLOW_CONN_AWS_DEFAULT"])
    connection["extra"]["endpoint_url"] = proxy.url
    try:
        dag_1_run, _, triggered = run_dag_1(
            dags, tmp_path, env={"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}
        )
    finally:
        proxy.close()

    # THEN the cluster it made is still terminated, and the run fails naming the create task
    tasks = dag_1_run["tasks"]
    assert tasks["create_emr_cluster"] == "failed", tasks
    assert tasks["terminate_emr_cluster"] == "success"
    assert dag_1_run["state"] == "failed"
    assert triggered is None
    cluster = cluster_of(emr_client, dag_1_run["run_id"])
    assert cluster["Status"]["State"] == "TERMINATED"
    [message] = smtp_sink.wait_for(1)
    body = message.get_body(("html", "plain")).get_content()
    assert f"EMR cluster: {cluster['Id']}" in body
    assert f"Failed tasks in {DAG_1}: create_emr_cluster" in body


@pytest.mark.parametrize("variable", ["AIRFLOW_VAR_EMR_SERVICE_ROLE", "AIRFLOW_VAR_EMR_JOB_FLOW_ROLE"])
def test_dag_1_without_the_emr_roles_fails_instead_of_using_the_default_roles(
    dags, emr, emr_client, smtp_sink, tmp_path, variable
):
    smtp_sink.clear()
    clusters_before = len(emr_client.list_clusters()["Clusters"])
    dag_1_run, _, triggered = run_dag_1(dags, tmp_path, env={variable: None})

    assert dag_1_run["tasks"]["create_emr_cluster"] == "failed"
    assert dag_1_run["state"] == "failed"
    assert triggered is None
    # no cluster was requested at all, so none runs with EMR_DefaultRole / EMR_EC2_DefaultRole
    assert len(emr_client.list_clusters()["Clusters"]) == clusters_before
    smtp_sink.wait_for(1)


def test_dag_1_fails_fast_when_dag_2_is_paused(dags, emr, emr_client, smtp_sink, tmp_path):
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    def set_paused(paused: bool) -> None:
        with create_session() as session:
            session.execute(update(DagModel).where(DagModel.dag_id == DAG_2).values(is_paused=paused))

    smtp_sink.clear()
    # GIVEN DAG_2 was paused by someone (it is created unpaused: see its DAG arguments)
    set_paused(True)
    try:
        dag_1_run, dag_2_run, triggered = run_dag_1(dags, tmp_path)
    finally:
        set_paused(False)

    # THEN the trigger fails at once instead of leaving a queued run to wait 6 h for
    tasks = dag_1_run["tasks"]
    assert tasks["trigger_dag_2"] == "failed", tasks
    assert tasks["wait_for_dag_2"] == "upstream_failed"
    assert tasks["terminate_emr_cluster"] == "success"
    assert dag_1_run["state"] == "failed"
    assert triggered is None and dag_2_run is None
    assert cluster_of(emr_client, dag_1_run["run_id"])["Status"]["State"] == "TERMINATED"
    [message] = smtp_sink.wait_for(1)
    assert f"Failed tasks in {DAG_1}: trigger_dag_2" in message.get_body(("html", "plain")).get_content()
