"""Constants and helpers shared by the pipeline tests, their conftest and the DAG runner
subprocess (a module of its own, not conftest, so that it never clashes with another suite's
conftest module when suites share one pytest process)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"
BOOTSTRAP_LIB = ROOT / "packer" / "files" / "bootstrap"
SPARK_JOBS_DIR = ROOT / "spark-jobs"
MOTO_PORT = 55000
SMTP_PORT = 55025
MOTO_URL = f"http://127.0.0.1:{MOTO_PORT}"
REGION = "us-east-1"
DATA_BUCKET = "champion-data"
ARTIFACTS_BUCKET = "champion-artifacts"
ALERT_EMAIL = "data-team@example.test"
FROM_EMAIL = "airflow@example.test"
# the EMR security groups Terraform creates (any sg- id: moto checks them only in a subnet it knows)
EMR_SECURITY_GROUPS = {
    "EmrManagedMasterSecurityGroup": "sg-0a1b2c3d4e5f60001",
    "EmrManagedSlaveSecurityGroup": "sg-0a1b2c3d4e5f60002",
    "ServiceAccessSecurityGroup": "sg-0a1b2c3d4e5f60003",
}


def node_email_env(backend: str) -> dict[str, str]:
    """[email] (and [smtp]) as the bootstrap renders them for `email/backend` = backend, as
    AIRFLOW__ variables, so DAG_1 runs with a node's own e-mail settings."""
    if str(BOOTSTRAP_LIB) not in sys.path:
        sys.path.insert(0, str(BOOTSTRAP_LIB))
    from airflow_node.render import email_config

    sections = email_config(backend, FROM_EMAIL, "127.0.0.1")
    return {
        f"AIRFLOW__{section.upper()}__{option.upper()}": value
        for section, options in sections.items()
        for option, value in options.items()
    }


# Made once by the pytest process; its subprocesses (run_dag.py) inherit it through the env.
AIRFLOW_HOME = Path(
    os.environ.get("PIPELINE_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="pipeline-airflow-home-")
)

TEST_ENV = {
    "PIPELINE_AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    # email/backend=smtp: the outcome mail goes to the SMTP sink (test_dag_runs.py runs SES too)
    **node_email_env("smtp"),
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
    "AIRFLOW_VAR_EMR_CLUSTER_TAG": "champion-dev",
    "AIRFLOW_VAR_EMR_JOB_FLOW_ROLE": "champion-emr-ec2",
    "AIRFLOW_VAR_EMR_LOG_URI": f"s3://{ARTIFACTS_BUCKET}/emr-logs/",
    "AIRFLOW_VAR_EMR_SUBNET_ID": "subnet-0123456789abcdef0",
    "AIRFLOW_VAR_EMR_PRIMARY_SECURITY_GROUP_ID": EMR_SECURITY_GROUPS["EmrManagedMasterSecurityGroup"],
    "AIRFLOW_VAR_EMR_CORE_SECURITY_GROUP_ID": EMR_SECURITY_GROUPS["EmrManagedSlaveSecurityGroup"],
    "AIRFLOW_VAR_EMR_SERVICE_ACCESS_SECURITY_GROUP_ID": EMR_SECURITY_GROUPS["ServiceAccessSecurityGroup"],
    "AIRFLOW_VAR_ALERT_EMAIL": ALERT_EMAIL,
    # Fallback credentials so nothing ever reaches for real ones.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def load_dags():
    """Parse every file in the DAGs folder the way the dag-processor does; return the DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def speed_up(dag) -> None:
    """Poll (and retry) every second instead of every 30-60 s: moto answers at once and the step
    driver finishes a step in ~2 s.

    Only timing changes; the operators, their deferral and their triggers run unchanged.
    """
    for task in dag.tasks:
        if hasattr(task, "poke_interval"):
            task.poke_interval = 1
        if hasattr(task, "waiter_delay"):
            task.waiter_delay = 1
        task.retry_delay = timedelta(seconds=1)
