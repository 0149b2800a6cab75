"""Shared fixtures for the pipeline tests: real Airflow (sqlite metadata DB in a temp
AIRFLOW_HOME), a moto server on 127.0.0.1:55000 whose EMR steps are driven by a background
thread, an SMTP sink on 127.0.0.1:55025, and one local PySpark session.

Airflow reads its configuration when first imported, so the environment is set here, at
conftest import, before any test module imports airflow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"
SPARK_JOBS_DIR = ROOT / "spark-jobs"
MOTO_PORT = 55000
SMTP_PORT = 55025
MOTO_URL = f"http://127.0.0.1:{MOTO_PORT}"
REGION = "us-east-1"
DATA_BUCKET = "champion-data"
ARTIFACTS_BUCKET = "champion-artifacts"
ALERT_EMAIL = "data-team@example.test"
FROM_EMAIL = "airflow@example.test"

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pipeline-airflow-home-"))

TEST_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    "AIRFLOW__EMAIL__FROM_EMAIL": FROM_EMAIL,
    # Every AWS call of the DAGs goes to the moto server through the aws_default connection.
    "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": REGION, "endpoint_url": MOTO_URL},
        }
    ),
    "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": SMTP_PORT,
            "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 1},
        }
    ),
    # The DAGs' settings, as the Parameter Store backend serves them in the cluster.
    "AIRFLOW_VAR_DATA_BUCKET": DATA_BUCKET,
    "AIRFLOW_VAR_ARTIFACTS_BUCKET": ARTIFACTS_BUCKET,
    "AIRFLOW_VAR_SPARK_JOB_URI": f"s3://{ARTIFACTS_BUCKET}/spark-jobs/sort_customers-0123abcd.py",
    "AIRFLOW_VAR_EMR_SERVICE_ROLE": "champion-emr-service",
    "AIRFLOW_VAR_EMR_JOB_FLOW_ROLE": "champion-emr-ec2",
    "AIRFLOW_VAR_EMR_LOG_URI": f"s3://{ARTIFACTS_BUCKET}/emr-logs/",
    "AIRFLOW_VAR_EMR_SUBNET_ID": "subnet-0123456789abcdef0",
    "AIRFLOW_VAR_ALERT_EMAIL": ALERT_EMAIL,
    # Fallback credentials so nothing ever reaches for real ones.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
os.environ.update(TEST_ENV)
for leaked in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AIRFLOW_CONFIG"):
    os.environ.pop(leaked, None)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db():
    """Migrate the sqlite metadata DB once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    from airflow import settings

    settings.configure_orm()
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def moto_server():
    """moto's server in this process (so the EMR step driver can reach its backend)."""
    from emr_driver import EmrStepDriver
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=MOTO_PORT, verbose=False)
    server.start()
    driver = EmrStepDriver(region=REGION)
    driver.start()
    yield driver
    driver.stop()
    server.stop()


@pytest.fixture
def emr(moto_server):
    """The EMR step driver, reset to 'every step completes' for each test."""
    moto_server.reset()
    yield moto_server
    moto_server.reset()


@pytest.fixture(scope="session")
def smtp_sink():
    from smtp_sink import SmtpSink

    sink = SmtpSink("127.0.0.1", SMTP_PORT)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def spark_jars() -> list[str]:
    jar_dir = os.environ.get("SPARK_JARS_DIR")
    if not jar_dir:
        jar_dir = subprocess.run(
            ["bash", str(ROOT / "scripts" / "fetch-spark-jars.sh")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    jars = sorted(str(p) for p in Path(jar_dir).glob("*.jar"))
    assert len(jars) == 3, f"expected hadoop-aws, the AWS SDK bundle and its accelerator in {jar_dir}: {jars}"
    return jars


@pytest.fixture(scope="session")
def spark(spark_jars):
    """One local SparkSession for the whole run (JVM start-up dominates small jobs)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("pipeline-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        # Keep the 4 range partitions even for tiny inputs, so the test sees several part files.
        .config("spark.sql.adaptive.coalescePartitions.enabled", "false")
        .config("spark.driver.memory", "1g")
        # On the class path rather than spark.jars: local mode would copy the 700 MB SDK
        # bundle into every session's temp dir.
        .config("spark.driver.extraClassPath", ":".join(spark_jars))
        .config("spark.hadoop.fs.s3a.endpoint", MOTO_URL)
        .config("spark.hadoop.fs.s3a.endpoint.region", REGION)
        .config("spark.hadoop.fs.s3a.path.style.access", "true")
        .config("spark.hadoop.fs.s3a.connection.ssl.enabled", "false")
        .config("spark.hadoop.fs.s3a.access.key", "testing")
        .config("spark.hadoop.fs.s3a.secret.key", "testing")
        .config(
            "spark.hadoop.fs.s3a.aws.credentials.provider",
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        )
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    # py4j logs at INFO from __del__ during interpreter shutdown, onto closed streams.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    yield session
    session.stop()
