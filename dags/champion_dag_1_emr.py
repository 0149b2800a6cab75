"""
DAG_1 of the champion pipeline: own the EMR cluster's whole life for one run of DAG_2.

create_emr_cluster -> wait_for_cluster_ready -> trigger_dag_2 (cluster id in its conf)
-> wait_for_dag_2 -> cluster_was_created -> terminate_emr_cluster (always, if there is a
cluster) -> summarize_outcome (always)
-> alert_email_configured -> email_outcome (always, unless no alert address is configured; through
SES or SMTP, as the node's ``[email] email_backend`` says)
-> fail_run_if_pipeline_failed (always; fails this run when anything upstream failed or the
email could not be sent, so the run's final state is honest although cleanup succeeded).

Settings are Airflow Variables, served in the cluster by the Parameter Store secrets backend
(SSM ``<prefix>/variables/<key>``, see config/settings-contract.json); they are only read inside
templates at run time, never while the file is parsed. Cluster shape is set per run with params.

How the sensor finds the triggered run: ExternalTaskSensor matches the other DAG's runs by
logical date only. So the trigger pins DAG_2's logical date to this run's ``dag_run.run_after``
and the sensor's ``execution_date_fn`` returns the same value. run_after is unique per run and,
unlike start_date, survives clearing: after a user clears tasks of a finished run, the sensor
still looks for the DAG_2 run this DAG_1 run triggered, and a cleared trigger re-runs that same
DAG_2 run (``reset_dag_run``) instead of failing as "already exists".

DAG_2 is triggered, never scheduled, so it is created unpaused (its ``is_paused_upon_creation``);
if someone pauses it later, the trigger fails at once (``fail_when_dag_is_paused``) instead of
leaving a queued run that this DAG would wait hours for.

Task outputs travel as XComArgs, never as hand-written ``xcom_pull`` templates: the sensor and
the trigger take ``create_emr_cluster.output`` (the cluster id it returns; both run only after it
succeeded). terminate_emr_cluster instead takes the id cluster_was_created returns, which that
task reads from the EMR link the create operator records right after RunJobFlow returns: if
create_emr_cluster fails after the cluster exists (a throttled DescribeCluster, say), the cluster
is still terminated. (An XComArg of that link cannot be used: an XCom key that was never pushed
fails the task that asks for it, where "no cluster" must skip the teardown instead.)

Waiting without holding a worker slot: wait_for_dag_2 is deferrable (the triggerer, one on every
scheduler node, polls the metadata DB), and so are DAG_2's EMR step sensors. wait_for_cluster_ready
alone uses reschedule mode (a worker slot only for each short poke, every CLUSTER_POKE_SECONDS):
the Amazon provider's deferrable EmrJobFlowSensor ignores ``target_states`` and hands the wait
to EmrTerminateJobFlowTrigger, which waits for the cluster to TERMINATE, so with a keep-alive
cluster it would never see "ready" (a test in __tests__/pipeline pins that provider behaviour;
when it changes, switch this sensor to deferrable too).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.hooks.ses import SesHook
from airflow.providers.amazon.aws.operators.emr import (
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrJobFlowSensor
from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, Param, TriggerRule, Variable, chain, get_current_context, task
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException

DAG_ID = "champion_dag_1_emr"
DAG_2_ID = "champion_dag_2_sort"  # must equal dags/champion_dag_2_sort.py DAG_ID (tested)

# emr-7.x with Hadoop and Spark; override per run with the release_label param.
DEFAULT_RELEASE_LABEL = "emr-7.12.0"
AWS_CONN_ID = "aws_default"
SMTP_CONN_ID = "smtp_default"
# `[email] email_backend` as the bootstrap renders it from the `email/backend` setting
# (packer/files/bootstrap/airflow_node/render.py): "ses" -> the Amazon provider's SES backend.
SES_EMAIL_BACKEND = "airflow.providers.amazon.aws.utils.emailer.send_email"
# Not deferrable on purpose (see the module docstring): the provider's deferred EmrJobFlowSensor
# waits for termination, not for target_states.
CLUSTER_READY_DEFERRABLE = False
CLUSTER_POKE_SECONDS = 30

CREATE_TASK_ID = "create_emr_cluster"
# EmrCreateJobFlowOperator pushes this XCom (its console link) as soon as RunJobFlow returns.
CLUSTER_LINK_XCOM_KEY = "emr_cluster"
# Tasks whose failure means the pipeline failed (cleanup and reporting tasks judge themselves).
PIPELINE_TASK_IDS = [
    CREATE_TASK_ID,
    "wait_for_cluster_ready",
    "trigger_dag_2",
    "wait_for_dag_2",
    "terminate_emr_cluster",
]

JOB_FLOW_OVERRIDES = {
    "Name": "champion-{{ dag_run.run_id | replace(':', '') | replace('+', '') }}",
    "ReleaseLabel": "{{ params.release_label }}",
    "Applications": [{"Name": "Hadoop"}, {"Name": "Spark"}],
    "LogUri": "{{ var.value.emr_log_uri }}",
    # No fallback to EMR_DefaultRole / EMR_EC2_DefaultRole: the nodes may pass only the
    # cluster's own roles, so a missing variable must fail here, naming it.
    "ServiceRole": "{{ var.value.emr_service_role }}",
    "JobFlowRole": "{{ var.value.emr_job_flow_role }}",
    "VisibleToAllUsers": True,
    "Instances": {
        "InstanceGroups": [
            {
                "Name": "Primary",
                "Market": "ON_DEMAND",
                "InstanceRole": "MASTER",
                "InstanceType": "{{ params.primary_instance_type }}",
                "InstanceCount": 1,
            },
            {
                "Name": "Core",
                "Market": "ON_DEMAND",
                "InstanceRole": "CORE",
                "InstanceType": "{{ params.core_instance_type }}",
                "InstanceCount": "{{ params.core_instance_count }}",
            },
        ],
        "Ec2SubnetId": "{{ var.value.emr_subnet_id }}",
        # The cluster's own security groups, created by Terraform (modules/emr-security-groups.ts):
        # left to itself EMR creates default groups in the VPC that block its deletion.
        "EmrManagedMasterSecurityGroup": "{{ var.value.emr_primary_security_group_id }}",
        "EmrManagedSlaveSecurityGroup": "{{ var.value.emr_core_security_group_id }}",
        "ServiceAccessSecurityGroup": "{{ var.value.emr_service_access_security_group_id }}",
        # DAG_2 adds its steps after the cluster is up; without this EMR would shut an
        # idle cluster down between steps. DAG_1 terminates it explicitly.
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    },
    # Safety net if Airflow itself dies before terminate_emr_cluster runs.
    "AutoTerminationPolicy": {"IdleTimeout": "{{ params.idle_timeout_seconds }}"},
    "StepConcurrencyLevel": 1,
    "Tags": [
        # The EMR v2 managed policies only work on clusters that carry this tag.
        {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"},
        # The node roles (modules/iam.ts) create, step, watch and terminate only clusters
        # tagged with their own Airflow cluster's name, and accept only airflow:* tags besides.
        {"Key": "airflow:cluster", "Value": "{{ var.value.emr_cluster_tag }}"},
        {"Key": "airflow:dag_id", "Value": "{{ dag.dag_id }}"},
        {"Key": "airflow:run_id", "Value": "{{ run_id }}"},
    ],
}

default_args = {
    "owner": "data-platform",
    # Idempotent tasks retry; tasks whose retry could double-create or hide a real failure
    # set retries=0 below, each with the reason.
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}


def dag_2_logical_date(logical_date, dag_run, **_):
    """The logical date the trigger gives DAG_2's run (see module docstring)."""
    return dag_run.run_after


def created_cluster_id(ti) -> str | None:
    """The cluster create_emr_cluster made, even if that task failed afterwards."""
    link = ti.xcom_pull(task_ids=CREATE_TASK_ID, key=CLUSTER_LINK_XCOM_KEY) or {}
    return link.get("job_flow_id")


# multiple_outputs as Airflow would infer it from `-> dict` (one XCom per key besides the whole
# dict), stated so that editing the annotation cannot change the XCom layout.
@task(multiple_outputs=True, trigger_rule=TriggerRule.ALL_DONE, retries=0)
def summarize_outcome() -> dict:
    """Collect this run's and DAG_2's task states into the email's subject and body."""
    context = get_current_context()
    ti, dag_run = context["ti"], context["dag_run"]
    own = ti.get_task_states(dag_id=DAG_ID, task_ids=PIPELINE_TASK_IDS, run_ids=[dag_run.run_id])
    own_states = own.get(dag_run.run_id, {})
    # Name the tasks that failed themselves; those that never ran because of them only show in
    # the per-task list below.
    failed = [t for t in PIPELINE_TASK_IDS if own_states.get(t) == "failed"]
    blocked = [t for t in PIPELINE_TASK_IDS if own_states.get(t) == "upstream_failed"]

    # Pulled here, not passed as trigger_dag_2.output["trigger_run_id"]: when DAG_2 was never
    # triggered that XCom does not exist, and an XComArg of it would fail this task.
    dag_2_run_id = ti.xcom_pull(task_ids="trigger_dag_2", key="trigger_run_id")
    dag_2_failed: list[str] = []
    if dag_2_run_id:
        dag_2 = ti.get_task_states(dag_id=DAG_2_ID, run_ids=[dag_2_run_id]).get(dag_2_run_id, {})
        dag_2_failed = sorted(t for t, s in dag_2.items() if s == "failed")

    status = "FAILED" if failed or blocked else "SUCCESS"
    lines = [
        f"DAG {DAG_ID} run {dag_run.run_id}: {status}",
        f"EMR cluster: {created_cluster_id(ti) or 'not created'}",
        f"DAG {DAG_2_ID} run: {dag_2_run_id or 'not triggered'}",
    ]
    lines += [f"  {t}: {own_states.get(t) or 'none'}" for t in PIPELINE_TASK_IDS]
    if failed:
        lines.append(f"Failed tasks in {DAG_ID}: {', '.join(failed)}")
    if dag_2_failed:
        lines.append(f"Failed tasks in {DAG_2_ID}: {', '.join(dag_2_failed)}")
    return {
        "status": status,
        "failed_tasks": failed,
        "dag_2_failed_tasks": dag_2_failed,
        "subject": f"[Airflow] {DAG_ID} {status}: {dag_run.run_id}",
        # [email] from_email is the cluster's smtp/from-email setting (SES needs it; SMTP falls
        # back to the smtp_default connection's from_email extra when it is None). Read here
        # because Airflow 3 templates have no `conf`.
        "from_email": conf.get("email", "from_email", fallback=None) or None,
        "body": "<pre>" + "\n".join(lines) + "</pre>",
    }


@task.short_circuit(trigger_rule=TriggerRule.ALL_DONE, retries=0, ignore_downstream_trigger_rules=False)
def cluster_was_created() -> str | None:
    """The cluster to terminate; None skips terminate_emr_cluster (only): RunJobFlow made none."""
    return created_cluster_id(get_current_context()["ti"])


@task.short_circuit(trigger_rule=TriggerRule.ALL_DONE, retries=0, ignore_downstream_trigger_rules=False)
def alert_email_configured() -> bool:
    """Skip the email (only) when the deployment has no alert address (the variable is "none")."""
    address = (Variable.get("alert_email", default="") or "").strip()
    return address.lower() not in ("", "none")


def email_via_ses() -> bool:
    """True when the node's `[email] email_backend` is the Amazon provider's SES backend.

    Called by the task, never while the file is parsed: the answer is the running node's
    (its airflow.cfg, or AIRFLOW__EMAIL__EMAIL_BACKEND, which `conf` looks up on every call).
    """
    return (conf.get("email", "email_backend", fallback=None) or "").strip() == SES_EMAIL_BACKEND


@task(trigger_rule=TriggerRule.ALL_DONE)
def email_outcome(outcome: dict | None) -> str:
    """Mail the outcome through the cluster's e-mail backend (SES with the instance role, or SMTP).

    Provider hooks only: SesHook authenticates with the aws_default connection (the node's
    instance role in the cluster), SmtpHook with the smtp_default connection.
    """
    if outcome is None:
        raise AirflowFailException("summarize_outcome did not run, so there is no outcome to mail")
    to = Variable.get("alert_email")
    if email_via_ses():
        mail_from = outcome["from_email"]
        if not mail_from:
            raise AirflowFailException("[email] from_email is not set; SES needs a verified sender")
        SesHook(aws_conn_id=AWS_CONN_ID).send_email(
            mail_from=mail_from, to=to, subject=outcome["subject"], html_content=outcome["body"]
        )
        return "ses"
    with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as smtp:
        smtp.send_email_smtp(
            to=to,
            from_email=outcome["from_email"],
            subject=outcome["subject"],
            html_content=outcome["body"],
        )
    return "smtp"


@task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
def fail_run_if_pipeline_failed(outcome: dict | None) -> None:
    """Leaf task: without it the run would end SUCCESS because cleanup and the email succeeded.

    Also fails the run when the outcome email could not be sent, so nobody mistakes silence
    for success.
    """
    if outcome is None:
        raise AirflowFailException("summarize_outcome did not run, so the outcome is unknown")
    if outcome["status"] != "SUCCESS":
        detail = ", ".join(outcome["failed_tasks"]) or "upstream tasks did not run"
        if outcome["dag_2_failed_tasks"]:
            detail += f" ({DAG_2_ID}: {', '.join(outcome['dag_2_failed_tasks'])})"
        raise AirflowFailException(f"pipeline failed: {detail}")
    context = get_current_context()
    run_id = context["dag_run"].run_id
    states = context["ti"].get_task_states(dag_id=DAG_ID, task_ids=["email_outcome"], run_ids=[run_id])
    email_state = states.get(run_id, {}).get("email_outcome")
    if email_state in ("failed", "upstream_failed"):
        raise AirflowFailException("the pipeline succeeded but the outcome email could not be sent")


with DAG(
    dag_id=DAG_ID,
    description="DAG_1: create EMR, run DAG_2 on it, always terminate EMR and email the outcome",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["champion", "emr", "dag_1"],
    # Params like core_instance_count must reach the EMR API as numbers, not "2".
    render_template_as_native_obj=True,
    params={
        "release_label": Param(
            DEFAULT_RELEASE_LABEL, type="string", pattern=r"^emr-7\.\d+\.\d+$", description="EMR 7.x release"
        ),
        "primary_instance_type": Param("m7g.xlarge", type="string", pattern=r"^[a-z0-9-]+\.[a-z0-9]+$"),
        "core_instance_type": Param("m7g.xlarge", type="string", pattern=r"^[a-z0-9-]+\.[a-z0-9]+$"),
        "core_instance_count": Param(2, type="integer", minimum=1, maximum=50),
        "idle_timeout_seconds": Param(
            3600, type="integer", minimum=60, maximum=604800, description="EMR auto-termination idle timeout"
        ),
    },
) as dag:
    create_emr_cluster = EmrCreateJobFlowOperator(
        task_id=CREATE_TASK_ID,
        aws_conn_id=AWS_CONN_ID,
        emr_conn_id=None,
        job_flow_overrides=JOB_FLOW_OVERRIDES,
        wait_for_completion=False,  # the sensor below waits without holding a worker slot
        retries=0,  # a retry could leave a second cluster running
    )

    # A capacity/role/subnet error fails here, clearly, instead of as a cancelled step in DAG_2.
    wait_for_cluster_ready = EmrJobFlowSensor(
        task_id="wait_for_cluster_ready",
        aws_conn_id=AWS_CONN_ID,
        job_flow_id=create_emr_cluster.output,
        target_states=["WAITING", "RUNNING"],
        failed_states=["TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"],
        deferrable=CLUSTER_READY_DEFERRABLE,
        mode="reschedule",
        poke_interval=CLUSTER_POKE_SECONDS,
        timeout=int(timedelta(minutes=45).total_seconds()),
        retries=0,  # a cluster that failed to start stays failed
    )

    trigger_dag_2 = TriggerDagRunOperator(
        task_id="trigger_dag_2",
        trigger_dag_id=DAG_2_ID,
        conf={"cluster_id": create_emr_cluster.output},
        logical_date="{{ dag_run.run_after }}",
        reset_dag_run=True,  # a cleared trigger re-runs its DAG_2 run (see module docstring)
        fail_when_dag_is_paused=True,
        wait_for_completion=False,  # the sensor below waits, deferred
        retries=0,  # DAG_2 missing or paused does not get better by retrying
    )

    wait_for_dag_2 = ExternalTaskSensor(
        task_id="wait_for_dag_2",
        external_dag_id=DAG_2_ID,
        execution_date_fn=dag_2_logical_date,
        allowed_states=["success"],
        failed_states=["failed"],  # DAG_2 failing fails this sensor at once
        deferrable=True,
        poke_interval=60,
        timeout=int(timedelta(hours=6).total_seconds()),
        retries=0,  # DAG_2's failure is final for this run
    )

    created_cluster = cluster_was_created()

    terminate_emr_cluster = EmrTerminateJobFlowOperator(
        task_id="terminate_emr_cluster",
        aws_conn_id=AWS_CONN_ID,
        job_flow_id=created_cluster,
        trigger_rule=TriggerRule.ALL_DONE,
    )

    outcome = summarize_outcome()

    chain(
        create_emr_cluster,
        wait_for_cluster_ready,
        trigger_dag_2,
        wait_for_dag_2,
        created_cluster,
        terminate_emr_cluster,
        outcome,
        alert_email_configured(),
        email_outcome(outcome),
        fail_run_if_pipeline_failed(outcome),
    )
