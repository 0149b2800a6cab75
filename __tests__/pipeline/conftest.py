"""Shared fixtures for the pipeline tests: real Airflow (sqlite metadata DB in a temp
AIRFLOW_HOME), a moto server on 127.0.0.1:55000 whose EMR steps are driven by a background
thread, an SMTP sink on 127.0.0.1:55025, and one local PySpark session.

Airflow reads its configuration when first imported, so the environment is set here, at
conftest import, before any test module imports airflow.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_support import (  # noqa: E402
    AIRFLOW_HOME,
    MOTO_PORT,
    MOTO_URL,
    REGION,
    ROOT,
    SMTP_PORT,
    TEST_ENV,
)

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
    """The EMR step driver, reset to 'every step completes' for each test; the test errors if
    the driver failed on any tick during it."""
    moto_server.reset()
    yield moto_server
    errors, alive = moto_server.errors, moto_server.is_alive()
    moto_server.reset()
    if errors or not alive:
        pytest.fail(f"EMR step driver (alive={alive}) failed during the test:\n" + "\n".join(errors))


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
