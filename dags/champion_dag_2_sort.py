"""
DAG_2 of the champion pipeline: on the EMR cluster DAG_1 created, copy the Mall Customers CSV
from S3 into HDFS (s3-dist-cp) and sort it by spending score with the Spark job, writing Parquet
to s3://<data bucket>/champion/output/<DAG_2 run id>/.

Triggered by DAG_1 with ``{"cluster_id": "j-..."}`` as its conf (schedule None); it can also be
triggered by hand against a running cluster. The cluster id is checked before any step is added.

Settings are Airflow Variables read in templates at run time (Parameter Store secrets backend in
the cluster, see config/settings-contract.json): data_bucket, spark_job_uri (the content-hashed
copy of spark-jobs/sort_customers.py that the deploy uploads to the artifacts bucket).

Waiting without holding a worker slot: the step sensors are deferrable. Each pokes once on a
worker; while the step is still pending or running it hands the wait to the triggerer (one runs
on every scheduler node), whose EmrStepSensorTrigger polls DescribeStep through aiobotocore (the
AMI's lock has the Amazon provider's ``aiobotocore`` extra) every STEP_POKE_SECONDS, for at most
STEP_TIMEOUT. COMPLETED resumes the task on a worker; FAILED, CANCELLED or INTERRUPTED fails it.
No ``mode`` is set: with deferrable=True the provider's execute() never enters the sensor's
poke/reschedule loop, so "reschedule" would only mislead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk import DAG, Param, chain, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

DAG_ID = "champion_dag_2_sort"
AWS_CONN_ID = "aws_default"
# Deferred to the triggerer (see the module docstring); False would fall back to a blocking poke.
AWS_DEFERRABLE = True
STEP_POKE_SECONDS = 30
STEP_TIMEOUT = timedelta(hours=2)

# EMR cluster ids are "j-" followed by upper-case letters and digits (13 today).
CLUSTER_ID_PATTERN = r"^j-[0-9A-Z]{8,20}$"
CLUSTER_ID = "{{ ti.xcom_pull(task_ids='validate_cluster_id') }}"

# One folder per DAG_2 run, named after its run id without the ':' and '+' that Hadoop paths
# reject (two runs in the same second still get folders of their own).
RUN_STAMP = "{{ run_id | replace(':', '') | replace('+', '') }}"
INPUT_PREFIX = "s3://{{ var.value.data_bucket }}/champion/data/"
INPUT_FILE = "Mall_Customers.csv"
HDFS_DIR = f"hdfs:///champion/{RUN_STAMP}/input"
OUTPUT_URI = f"s3://{{{{ var.value.data_bucket }}}}/champion/output/{RUN_STAMP}/"

COPY_STEPS = [
    {
        "Name": "copy_csv_to_hdfs",
        # DAG_1 owns the cluster's life: a failed step must not terminate it behind its back.
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "s3-dist-cp",
                f"--src={INPUT_PREFIX}",
                f"--dest={HDFS_DIR}",
                # s3-dist-cp matches the whole source URI (Java Matcher.matches()): only this
                # exact object, not backup_Mall_Customers.csv or a copy in a sub-folder.
                f"--srcPattern=.*/champion/data/{re.escape(INPUT_FILE)}",
            ],
        },
    }
]
SORT_STEPS = [
    {
        "Name": "sort_by_spending_score",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "spark-submit",
                "--deploy-mode",
                "cluster",
                "{{ var.value.spark_job_uri }}",
                "--input",
                f"{HDFS_DIR}/{INPUT_FILE}",
                "--output",
                OUTPUT_URI,
            ],
        },
    }
]

default_args = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}


@task(retries=0)  # a bad conf does not get better by retrying
def validate_cluster_id() -> str:
    """Return dag_run.conf['cluster_id'] after checking it looks like an EMR cluster id."""
    conf = get_current_context()["dag_run"].conf or {}
    cluster_id = conf.get("cluster_id")
    if not isinstance(cluster_id, str) or not re.fullmatch(CLUSTER_ID_PATTERN, cluster_id):
        raise AirflowFailException(
            f"dag_run.conf['cluster_id'] must be an EMR cluster id matching {CLUSTER_ID_PATTERN} "
            f"(e.g. j-2AXXXXXXGAPLF), got {cluster_id!r}; trigger this DAG from champion_dag_1_emr "
            'or with conf {"cluster_id": "j-..."}'
        )
    return cluster_id


def step_sensor(task_id: str, add_task_id: str) -> EmrStepSensor:
    return EmrStepSensor(
        task_id=task_id,
        aws_conn_id=AWS_CONN_ID,
        job_flow_id=CLUSTER_ID,
        step_id=f"{{{{ ti.xcom_pull(task_ids='{add_task_id}')[0] }}}}",
        deferrable=AWS_DEFERRABLE,
        poke_interval=STEP_POKE_SECONDS,  # also the trigger's waiter_delay
        # The deferred wait ends after max_attempts * poke_interval (the provider ignores
        # `timeout` once deferred, and its default of 60 attempts would give up after 30 min).
        max_attempts=STEP_TIMEOUT // timedelta(seconds=STEP_POKE_SECONDS),
        timeout=int(STEP_TIMEOUT.total_seconds()),
        retries=0,  # a FAILED/CANCELLED step is final; retrying would only poll it again
    )


with DAG(
    dag_id=DAG_ID,
    description="DAG_2: S3 CSV -> HDFS (s3-dist-cp) -> Spark sort by spending score -> Parquet on S3",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    # Only DAG_1 starts it; paused, its triggered runs would wait in the queue forever.
    is_paused_upon_creation=False,
    default_args=default_args,
    tags=["champion", "emr", "dag_2"],
    params={
        "cluster_id": Param(
            None,
            type=["null", "string"],
            description="EMR cluster id (j-...), set by DAG_1 in the run's conf",
        ),
    },
) as dag:
    cluster_id = validate_cluster_id()

    add_copy_step = EmrAddStepsOperator(
        task_id="add_copy_step",
        aws_conn_id=AWS_CONN_ID,
        job_flow_id=CLUSTER_ID,
        steps=COPY_STEPS,
        retries=0,  # a retry could queue the step twice
    )
    watch_copy_step = step_sensor("watch_copy_step", "add_copy_step")

    add_sort_step = EmrAddStepsOperator(
        task_id="add_sort_step",
        aws_conn_id=AWS_CONN_ID,
        job_flow_id=CLUSTER_ID,
        steps=SORT_STEPS,
        retries=0,
    )
    watch_sort_step = step_sensor("watch_sort_step", "add_sort_step")

    chain(cluster_id, add_copy_step, watch_copy_step, add_sort_step, watch_sort_step)
