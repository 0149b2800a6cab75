"""The EMR stand-in (emr_stand_in.py) as the e2e cluster uses it: a subprocess on 127.0.0.1:57090,
driven with boto3 the way DAG_1 and DAG_2 drive EMR, with real copies and real Spark 3.5.6 runs.

A stage of its own (three Spark jobs, a minute or two), not part of __tests__/pipeline:
    pytest -c config/pytest.ini __tests__/e2e/test_emr_stand_in.py
Needs scripts/setup-emr-spark.sh (run here unless EMR_SPARK_VENV names its output) and Java 17.
The tests share one stand-in and run in file order; the last one stops it with SIGTERM.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = Path(__file__).resolve().parent / "emr_stand_in.py"
JOB = ROOT / "spark-jobs" / "sort_customers.py"
PORT = 57090
REGION = "us-east-1"
DATA_BUCKET = "champion-data"
ARTIFACTS_BUCKET = "champion-artifacts"
JOB_URI = f"s3://{ARTIFACTS_BUCKET}/spark-jobs/sort_customers-0123abcd.py"
SLEEP_JOB_URI = f"s3://{ARTIFACTS_BUCKET}/spark-jobs/sleep.py"
INPUT_FILE = "Mall_Customers.csv"
HEADER = "CustomerID,Genre,Age,Annual Income (k$),Spending Score (1-100)"
START_SECONDS = 1.5
STEP_TIMEOUT = 180
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"}


def client(service: str):
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{PORT}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# ---- the steps, as dags/champion_dag_2_sort.py renders them ----


def copy_step(stamp: str, pattern: str = f".*{re.escape(INPUT_FILE)}") -> dict:
    return {
        "Name": "copy_csv_to_hdfs",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "s3-dist-cp",
                f"--src=s3://{DATA_BUCKET}/champion/data/",
                f"--dest=hdfs:///champion/{stamp}/input",
                f"--srcPattern={pattern}",
            ],
        },
    }


def sort_step(stamp: str) -> dict:
    return {
        "Name": "sort_by_spending_score",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "spark-submit",
                "--deploy-mode",
                "cluster",
                JOB_URI,
                "--input",
                f"hdfs:///champion/{stamp}/input/{INPUT_FILE}",
                "--output",
                f"s3://{DATA_BUCKET}/champion/output/{stamp}/",
            ],
        },
    }


def spark_step(name: str, uri: str) -> dict:
    return {
        "Name": name,
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", uri]},
    }


# ---- data ----


def customers(count: int = 40) -> list[tuple[int, str, int, int, int]]:
    """Shuffled rows with tied spending scores, so the customer-id tie-break matters."""
    rng = random.Random(7)  # noqa: S311 (test data)
    rows = [
        (cid, rng.choice(["Male", "Female"]), rng.randint(18, 70), rng.randint(15, 137), rng.randint(1, 10))
        for cid in range(1, count + 1)
    ]
    rng.shuffle(rows)
    return rows


def csv_text(rows) -> str:
    return "\n".join([HEADER] + [",".join(str(v) for v in row) for row in rows]) + "\n"


# ---- fixtures and helpers ----


@pytest.fixture(scope="module")
def spark_venv() -> Path:
    venv = os.environ.get("EMR_SPARK_VENV")
    if not venv:
        venv = subprocess.run(
            ["bash", str(ROOT / "scripts" / "setup-emr-spark.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
    return Path(venv)


class StandIn:
    def __init__(self, proc: subprocess.Popen, work: Path, stderr: Path) -> None:
        self.proc, self.work, self.stderr = proc, work, stderr

    def log(self) -> str:
        return self.stderr.read_text()


@pytest.fixture(scope="module")
def stand_in(spark_venv, tmp_path_factory):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"127.0.0.1:{PORT} is already in use; the EMR stand-in test needs it")
    work = tmp_path_factory.mktemp("emr-stand-in")
    stderr = work / "stand-in.stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(STAND_IN),
                *("--port", str(PORT), "--work", str(work), "--spark-venv", str(spark_venv)),
                *("--cluster-start-seconds", str(START_SECONDS)),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    ready = proc.stdout.readline()  # blocks until the line, or EOF if it died
    if ready != f"emr-stand-in ready on 127.0.0.1:{PORT}\n":
        proc.kill()
        pytest.fail(f"stand-in did not start: {ready!r}\n{stderr.read_text()}")
    s3 = client("s3")
    for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(JOB), ARTIFACTS_BUCKET, JOB_URI.split("/", 3)[3])
    # A job that only waits, to catch a step while it runs.
    s3.put_object(
        Bucket=ARTIFACTS_BUCKET, Key=SLEEP_JOB_URI.split("/", 3)[3], Body=b"import time\ntime.sleep(600)\n"
    )
    yield StandIn(proc, work, stderr)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def create_cluster(name: str) -> str:
    """RunJobFlow the way DAG_1's create_emr_cluster calls it (the parts EMR acts on)."""
    return client("emr").run_job_flow(
        Name=name,
        ReleaseLabel="emr-7.12.0",
        Applications=[{"Name": "Hadoop"}, {"Name": "Spark"}],
        ServiceRole="EMR_DefaultRole",
        JobFlowRole="EMR_EC2_DefaultRole",
        Instances={
            "InstanceGroups": [
                {
                    "Name": "Primary",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "MASTER",
                    "InstanceType": "m7g.xlarge",
                    "InstanceCount": 1,
                },
                {
                    "Name": "Core",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "CORE",
                    "InstanceType": "m7g.xlarge",
                    "InstanceCount": 2,
                },
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": False,
        },
        StepConcurrencyLevel=1,
    )["JobFlowId"]


def cluster_state(cluster_id: str) -> str:
    return client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


def wait_for(predicate, what: str, timeout: float = STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def add_steps(cluster_id: str, *steps: dict) -> list[str]:
    """One AddJobFlowSteps call per step, as DAG_2's two EmrAddStepsOperators make them."""
    return [client("emr").add_job_flow_steps(JobFlowId=cluster_id, Steps=[s])["StepIds"][0] for s in steps]


def finished(cluster_id: str, step_id: str) -> dict:
    """Poll DescribeStep (what the EmrStepSensor trigger polls) until the step is terminal."""

    def status():
        step = client("emr").describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
        return step["Status"] if step["Status"]["State"] in TERMINAL else None

    return wait_for(status, f"step {step_id} to finish")


def step_state(cluster_id: str, step_id: str) -> str:
    return client("emr").describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]


def running_pid(stand_in: StandIn, step_id: str) -> int:
    log = stand_in.work / "steps" / f"{step_id}.log"
    match = wait_for(
        lambda: log.exists() and re.search(r"^emr-stand-in: pid (\d+) ", log.read_text(), re.M), "pid"
    )
    return int(match.group(1))


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def cluster(stand_in) -> str:
    return create_cluster("champion-stand-in-test")


# ---- tests ----


def test_a_new_cluster_starts_then_waits(stand_in, cluster):
    status = client("emr").describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert status["State"] == "STARTING"
    assert "ReadyDateTime" not in status["Timeline"]
    wait_for(lambda: cluster_state(cluster) == "WAITING", "WAITING", timeout=START_SECONDS + 10)
    assert (
        "ReadyDateTime" in client("emr").describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["Timeline"]
    )


def test_copy_and_sort_steps_run_for_real(stand_in, cluster, spark_venv, tmp_path):
    rows = customers()
    stamp = "20250101T000000"
    s3 = client("s3")
    s3.put_object(Bucket=DATA_BUCKET, Key=f"champion/data/{INPUT_FILE}", Body=csv_text(rows).encode())
    s3.put_object(Bucket=DATA_BUCKET, Key="champion/data/notes.txt", Body=b"not matched by the pattern\n")

    copy_id, sort_id = add_steps(cluster, copy_step(stamp), sort_step(stamp))
    # Queued behind the copy (StepConcurrencyLevel 1), not running alongside it.
    assert step_state(cluster, sort_id) in ("PENDING", "RUNNING")
    copy_status = finished(cluster, copy_id)
    sort_status = finished(cluster, sort_id)
    assert copy_status["State"] == "COMPLETED", copy_status
    assert sort_status["State"] == "COMPLETED", sort_status
    assert sort_status["Timeline"]["StartDateTime"] >= copy_status["Timeline"]["EndDateTime"]

    # s3-dist-cp copied the matching object, only it, into the mapped HDFS directory.
    hdfs_dir = stand_in.work / "hdfs" / "champion" / stamp / "input"
    assert sorted(p.name for p in hdfs_dir.iterdir()) == [INPUT_FILE]
    assert (hdfs_dir / INPUT_FILE).read_text() == csv_text(rows)

    # The job ran on the venv's Spark 3.5.6 and Python 3.9 (Spark's own log line; the venv's
    # interpreter, which the step used as PYSPARK_PYTHON).
    log = (stand_in.work / "steps" / f"{sort_id}.log").read_text()
    assert "Running Spark version 3.5.6" in log
    python = spark_venv / "bin" / "python3.9"
    assert f"PYSPARK_PYTHON={python} " in log
    versions = subprocess.run(
        [str(python), "-c", "import sys, pyspark; print(pyspark.__version__, *sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert versions == ["3.5.6", "3", "9"]
    assert f"wrote s3a://{DATA_BUCKET}/champion/output/{stamp}/" in log

    # Sorted Parquet in moto's S3, read back part by part in name order with the test venv's
    # own (newer) PySpark: an independent reader.
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"champion/output/{stamp}/")["Contents"]
    ]
    parts = sorted(k for k in keys if k.rsplit("/", 1)[1].startswith("part-"))
    assert f"champion/output/{stamp}/_SUCCESS" in keys
    assert parts and all(k.endswith(".snappy.parquet") for k in parts)
    for key in parts:
        s3.download_file(DATA_BUCKET, key, str(tmp_path / key.rsplit("/", 1)[1]))
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        result = [
            tuple(r)
            for part in parts
            for r in spark.read.parquet(str(tmp_path / part.rsplit("/", 1)[1])).collect()
        ]
        columns = spark.read.parquet(str(tmp_path)).columns
    finally:
        spark.stop()
    assert columns == ["customer_id", "gender", "age", "annual_income_k_usd", "spending_score"]
    assert result == sorted(rows, key=lambda r: (r[4], r[0]))

    wait_for(lambda: cluster_state(cluster) == "WAITING", "the idle cluster to be WAITING again", timeout=10)
    assert re.search(
        rf"step {sort_id} \(sort_by_spending_score\) on {cluster}: RUNNING -> COMPLETED after \d",
        stand_in.log(),
    )


def test_a_bad_row_fails_the_sort_step(stand_in, cluster):
    stamp = "20250102T000000"
    bad = csv_text(customers(10)) + "99,Female,abc,50,50\n"
    client("s3").put_object(Bucket=DATA_BUCKET, Key=f"champion/data/{INPUT_FILE}", Body=bad.encode())

    copy_id, sort_id = add_steps(cluster, copy_step(stamp), sort_step(stamp))
    assert finished(cluster, copy_id)["State"] == "COMPLETED"
    status = finished(cluster, sort_id)
    assert status["State"] == "FAILED"
    log_file = stand_in.work / "steps" / f"{sort_id}.log"
    details = status["FailureDetails"]
    assert details["LogFile"] == str(log_file)
    # The job's own error reaches the step's failure message, which the Airflow sensor logs.
    assert "spark-submit exited with code 2: error: input" in details["Message"]
    assert "'99,Female,abc,50,50'" in details["Message"]
    assert details["Message"] == status["StateChangeReason"]["Message"]
    assert "has rows that are not valid" in log_file.read_text()
    listed = client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"champion/output/{stamp}/")
    assert listed["KeyCount"] == 0, "a failed job writes nothing"


@pytest.mark.parametrize(
    "pattern",
    [
        re.escape(INPUT_FILE),  # unanchored: a substring match (find()) would take it, matches() does not
        r".*Mall_Customers\.parquet",
    ],
)
def test_a_pattern_matching_nothing_fails_the_copy(stand_in, cluster, pattern):
    stamp = "20250103T000000"
    (copy_id,) = add_steps(cluster, copy_step(stamp, pattern))
    status = finished(cluster, copy_id)
    assert status["State"] == "FAILED"
    assert (
        f"no object under s3://{DATA_BUCKET}/champion/data/ matches --srcPattern {pattern!r}"
        in (status["FailureDetails"]["Message"])
    )
    assert not (stand_in.work / "hdfs" / "champion" / stamp).exists()


@pytest.mark.parametrize(
    ("jar", "args", "reason"),
    [
        (
            "s3://champion-artifacts/custom.jar",
            ["x"],
            "only command-runner.jar steps, not Jar 's3://champion-artifacts/custom.jar'",
        ),
        ("command-runner.jar", ["bash", "-c", "true"], "command 'bash' is not supported"),
        (
            "command-runner.jar",
            ["s3-dist-cp", "--src=s3://champion-data/x/", "--dest=hdfs:///x", "--groupBy=.*"],
            "'--groupBy=.*' is not supported",
        ),
        (
            "command-runner.jar",
            ["spark-submit", "--py-files", "a.zip", JOB_URI],
            "option '--py-files' is not supported",
        ),
    ],
)
def test_unsupported_steps_fail_saying_why(stand_in, cluster, jar, args, reason):
    (step_id,) = add_steps(
        cluster, {"Name": "odd", "ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": jar, "Args": args}}
    )
    status = finished(cluster, step_id)
    assert status["State"] == "FAILED"
    assert reason in status["FailureDetails"]["Message"]


def test_terminate_cancels_the_running_and_pending_steps(stand_in):
    cluster_id = create_cluster("champion-stand-in-terminate")
    running_id, pending_id = add_steps(
        cluster_id, spark_step("sleeps", SLEEP_JOB_URI), copy_step("20250104T000000")
    )
    wait_for(lambda: step_state(cluster_id, running_id) == "RUNNING", "the step to run")
    pgid = running_pid(stand_in, running_id)
    assert not group_gone(pgid)
    assert step_state(cluster_id, pending_id) == "PENDING"

    client("emr").terminate_job_flows(JobFlowIds=[cluster_id])

    cluster = client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["Status"]["State"] == "TERMINATED"
    assert cluster["Status"]["StateChangeReason"]["Message"] == "Terminated by user request"
    assert step_state(cluster_id, running_id) == "CANCELLED"
    assert step_state(cluster_id, pending_id) == "CANCELLED"
    wait_for(lambda: group_gone(pgid), "the step's process group to be killed", timeout=20)
    with pytest.raises(ClientError, match="may not be modified"):
        add_steps(cluster_id, copy_step("20250104T000000"))
    assert not (stand_in.work / "hdfs" / "champion" / "20250104T000000").exists(), (
        "the pending copy never ran"
    )


def test_sigterm_kills_the_running_step_and_exits_cleanly(stand_in, cluster):
    (step_id,) = add_steps(cluster, spark_step("sleeps", SLEEP_JOB_URI))
    wait_for(lambda: step_state(cluster, step_id) == "RUNNING", "the step to run")
    pgid = running_pid(stand_in, step_id)

    stand_in.proc.send_signal(signal.SIGTERM)

    assert stand_in.proc.wait(30) == 0
    assert group_gone(pgid)
    assert "Traceback" not in stand_in.log()
    assert stand_in.proc.stdout.read() == "", "the ready line is the only line on stdout"
