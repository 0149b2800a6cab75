"""DagBag integrity and structure of the champion DAGs (parsed the way the dag-processor does)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pipeline_support import DAGS_DIR, load_dags

DAG_1 = "champion_dag_1_emr"
DAG_2 = "champion_dag_2_sort"


@pytest.fixture(scope="module")
def dagbag():
    return load_dags()


def test_every_dag_file_imports_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= {DAG_1, DAG_2}
    files = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert files == {p.name for p in DAGS_DIR.glob("*.py")}, "every file under dags/ defines a DAG"


def test_every_dag_follows_the_house_rules(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False, f"{dag_id} must not catch up"
        assert "retries" in dag.default_args, f"{dag_id} must set retries in default_args"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} has no real owner"
            assert isinstance(task.retries, int) and task.retries >= 0


def test_dag_1_order_and_trigger_rules(dagbag):
    dag = dagbag.dags[DAG_1]
    order = [
        "create_emr_cluster",
        "wait_for_cluster_ready",
        "trigger_dag_2",
        "wait_for_dag_2",
        "cluster_was_created",
        "terminate_emr_cluster",
        "summarize_outcome",
        "alert_email_configured",
        "email_outcome",
        "fail_run_if_pipeline_failed",
    ]
    assert {t.task_id for t in dag.tasks} == set(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, f"{upstream} -> {downstream}"
    # the last task is the only leaf, so it alone decides the run's state
    assert [t.task_id for t in dag.leaves] == ["fail_run_if_pipeline_failed"]
    for task_id in order[4:]:
        assert dag.get_task(task_id).trigger_rule == "all_done", f"{task_id} must always run"
    for task_id in order[:4]:
        assert dag.get_task(task_id).trigger_rule == "all_success"


def test_dag_1_operators_match_the_design(dagbag):
    dag = dagbag.dags[DAG_1]
    create = dag.get_task("create_emr_cluster")
    overrides = create.job_flow_overrides
    assert {a["Name"] for a in overrides["Applications"]} == {"Hadoop", "Spark"}
    assert overrides["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    assert "IdleTimeout" in overrides["AutoTerminationPolicy"]
    assert dag.params["release_label"].startswith("emr-7.")
    assert dag.params["core_instance_count"] >= 1

    trigger = dag.get_task("trigger_dag_2")
    assert trigger.trigger_dag_id == DAG_2
    assert trigger.wait_for_completion is False
    assert "cluster_id" in trigger.conf

    sensor = dag.get_task("wait_for_dag_2")
    assert sensor.external_dag_id == DAG_2
    assert sensor.external_task_ids is None  # waits for the whole DAG run
    assert sensor.failed_states == ["failed"]
    assert sensor.deferrable is True, "waits for DAG_2 in the triggerer, never a blocking poke"
    ready = dag.get_task("wait_for_cluster_ready")
    # Reschedule, not deferrable: see test_deferred_emr_job_flow_sensor_waits_for_termination.
    assert ready.deferrable is False and ready.mode == "reschedule", "never a blocking poke"


def test_dag_2_order_and_sensors(dagbag):
    dag = dagbag.dags[DAG_2]
    assert dag.schedule is None or dag.timetable.summary in ("None", "Never")
    # only DAG_1 starts it: created paused, the runs DAG_1 triggers would stay queued
    assert dag.is_paused_upon_creation is False
    assert dagbag.dags[DAG_1].get_task("trigger_dag_2").fail_when_dag_is_paused is True
    order = ["validate_cluster_id", "add_copy_step", "watch_copy_step", "add_sort_step", "watch_sort_step"]
    assert {t.task_id for t in dag.tasks} == set(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, f"{upstream} -> {downstream}"
    for sensor_id in ("watch_copy_step", "watch_sort_step"):
        sensor = dag.get_task(sensor_id)
        assert type(sensor).__name__ == "EmrStepSensor"
        assert sensor.deferrable is True, f"{sensor_id} must wait in the triggerer"
        # Once deferred, the provider ends the wait after max_attempts * poke_interval, not after
        # `timeout`: the two must agree, or a long Spark step fails early (default: 30 min).
        assert sensor.max_attempts * sensor.poke_interval == sensor.timeout
    copy_args = dag.get_task("add_copy_step").steps[0]["HadoopJarStep"]["Args"]
    assert copy_args[0] == "s3-dist-cp"
    sort_args = dag.get_task("add_sort_step").steps[0]["HadoopJarStep"]["Args"]
    assert sort_args[0] == "spark-submit" and "{{ var.value.spark_job_uri }}" in sort_args


def test_deferred_emr_job_flow_sensor_waits_for_termination():
    """Pins the provider behaviour that keeps wait_for_cluster_ready in reschedule mode.

    The Amazon provider's deferrable EmrJobFlowSensor ignores target_states and defers to
    EmrTerminateJobFlowTrigger (waiter job_flow_terminated): a keep-alive cluster that is
    WAITING would never satisfy it. If this fails, the provider fixed that: make
    wait_for_cluster_ready deferrable and update its integrity assertion.
    """
    from airflow.providers.amazon.aws.sensors.emr import EmrJobFlowSensor
    from airflow.sdk.exceptions import TaskDeferred

    sensor = EmrJobFlowSensor(
        task_id="probe",
        job_flow_id="j-0123456789ABC",
        target_states=["WAITING", "RUNNING"],
        deferrable=True,
    )
    sensor.poke = lambda context: False  # the cluster is still STARTING: the sensor defers
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    assert type(deferred.value.trigger).__name__ == "EmrTerminateJobFlowTrigger"
    assert deferred.value.trigger.waiter_name == "job_flow_terminated"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                names.add(str(arg.value))
    return names


def test_no_boto3_or_botocore_under_dags():
    files = sorted(DAGS_DIR.rglob("*.py"))
    assert files
    for path in files:
        roots = {name.split(".")[0] for name in _imported_modules(path)}
        assert not roots & {"boto3", "botocore", "aiobotocore"}, f"{path} talks to AWS directly"


def test_ast_check_would_catch_boto3(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import os\nfrom boto3.session import Session\n")
    assert "boto3.session" in _imported_modules(sample)


def _parse_time_nodes(tree: ast.AST):
    """Nodes that run when the file is parsed: everything outside function bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.append(child)


def _parse_time_variable_reads(source: str) -> list[int]:
    return [
        node.lineno
        for node in _parse_time_nodes(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr == "get"
        and isinstance(node.value, ast.Name)
        and node.value.id == "Variable"
    ]


def test_dag_files_read_no_variables_at_parse_time():
    for path in sorted(DAGS_DIR.rglob("*.py")):
        lines = _parse_time_variable_reads(path.read_text())
        assert lines == [], f"{path}:{lines} read Variables at parse time: use a template or a task"


def test_parse_time_check_tells_module_level_from_task_code():
    source = "x = Variable.get('a')\n\ndef task():\n    return Variable.get('b')\n"
    assert _parse_time_variable_reads(source) == [1]


def test_dag_ids_agree_between_files():
    import importlib.util

    spec = importlib.util.spec_from_file_location("dag_1_module", DAGS_DIR / "champion_dag_1_emr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DAG_2_ID == DAG_2


@pytest.mark.parametrize(
    ("uri", "copied"),
    [
        ("s3://data/champion/data/Mall_Customers.csv", True),
        ("s3://data/champion/data/backup_Mall_Customers.csv", False),
        ("s3://data/champion/data/old/Mall_Customers.csv", False),
        ("s3://data/champion/data/Mall_Customers.csv.bak", False),
        ("s3://data/champion/data/Mall_CustomersXcsv", False),
    ],
)
def test_copy_step_selects_only_the_input_object(dagbag, uri, copied):
    # s3-dist-cp applies --srcPattern to the whole source URI (Java Matcher.matches())
    args = dagbag.dags[DAG_2].get_task("add_copy_step").steps[0]["HadoopJarStep"]["Args"]
    [pattern] = [a.removeprefix("--srcPattern=") for a in args if a.startswith("--srcPattern=")]
    assert bool(re.fullmatch(pattern, uri)) is copied
