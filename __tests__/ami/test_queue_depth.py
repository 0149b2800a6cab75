"""The worker autoscaling signal (airflow_node.queue_depth): the KEDA count over Airflow's own
task_instance table on a real SQLite engine, published to a moto CloudWatch and read back
with GetMetricData, as the worker group's policies read it."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import pytest
from airflow_node import BootstrapError
from airflow_node.queue_depth import count_tasks, datums, oldest_queued_seconds, publish, workers_needed


@pytest.fixture
def engine(tmp_path):
    """Airflow's metadata schema (its own models), on SQLite."""
    from airflow.models import import_all_models
    from airflow.models.base import Base
    from sqlalchemy import create_engine

    import_all_models()
    engine = create_engine(f"sqlite:///{tmp_path / 'airflow.db'}")
    Base.metadata.create_all(engine)
    return engine


def _insert(engine, rows: list[tuple[str, str]], queued_at: list[dt.datetime | None] | None = None) -> None:
    """(state, queue) rows as task instances of one DAG run, queued at `queued_at[i]`."""
    from airflow.models.taskinstance import TaskInstance

    table = TaskInstance.__table__
    with engine.begin() as conn:
        for i, (state, queue) in enumerate(rows):
            conn.execute(
                table.insert().values(
                    id=uuid.uuid4(),
                    dag_id="burst",
                    task_id=f"t{i}",
                    run_id="manual",
                    map_index=-1,
                    try_number=1,
                    max_tries=0,
                    state=state,
                    queue=queue,
                    pool="default_pool",
                    pool_slots=1,
                    priority_weight=1,
                    span_status="not_started",
                    dag_version_id=uuid.uuid4(),
                    queued_dttm=queued_at[i] if queued_at else None,
                )
            )


def test_count_is_running_plus_queued_per_queue_and_nothing_else(engine):
    # GIVEN 17 running + queued on default, 3 on gpu, and tasks in every other state
    _insert(
        engine,
        [("running", "default")] * 9
        + [("queued", "default")] * 8
        + [("queued", "gpu")] * 3
        + [(s, "default") for s in ("success", "failed", "scheduled", "deferred", "up_for_retry", "skipped")],
    )
    with engine.connect() as conn:
        # THEN the count is the KEDA query's, per queue
        assert count_tasks(conn) == {"default": 17, "gpu": 3}
        # AND with 16 slots per worker: ceil(17/16) = 2, ceil(3/16) = 1
        assert workers_needed(count_tasks(conn), 16, ["default"]) == {"default": 2, "gpu": 1}


def test_oldest_queued_age_per_queue_counts_queued_tasks_only(engine):
    now = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    minutes = dt.timedelta(minutes=1)
    # GIVEN queued tasks 12 and 3 minutes old on two queues, and an older task already running
    _insert(
        engine,
        [("queued", "default"), ("queued", "default"), ("queued", "gpu"), ("running", "default")],
        [now - 3 * minutes, now - 12 * minutes, now - 3 * minutes, now - 60 * minutes],
    )
    # THEN each queue reports its oldest queued task; an idle queue asked for reports 0
    with engine.connect() as conn:
        ages = oldest_queued_seconds(conn, now, ["default", "idle"])
    assert ages == {"default": 720, "gpu": 180, "idle": 0}


@pytest.mark.parametrize(("tasks", "concurrency"), [(0, 16), (1, 16), (16, 16), (17, 16), (33, 4), (5, 1)])
def test_workers_needed_is_the_ceiling(tasks, concurrency):
    assert workers_needed({"default": tasks}, concurrency) == {"default": math.ceil(tasks / concurrency)}


def test_an_idle_default_queue_reports_zero_not_nothing(engine):
    # target tracking does not scale in on missing data
    with engine.connect() as conn:
        assert workers_needed(count_tasks(conn), 16, ["default"]) == {"default": 0}


def test_bad_concurrency_is_refused_in_one_line():
    with pytest.raises(BootstrapError, match=r"worker_concurrency is 0; allowed: an integer of 1 or more"):
        workers_needed({"default": 3}, 0)


def test_published_value_reads_back_per_queue_from_cloudwatch(moto_url, contract):
    import boto3

    cw = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - moto's dummy credentials
    )
    namespace = "Airflow/airflow-dev"
    # GIVEN two schedulers publishing the same minute's value
    data = datums(contract.scaling_metric, contract.scaling_dimension, {"default": 2, "gpu": 1})
    for _ in range(2):
        publish(cw, namespace, data)
    now = dt.datetime.now(dt.UTC)

    def read(queue: str, stat: str) -> list[float]:
        answer = cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": contract.scaling_metric,
                            "Dimensions": [{"Name": contract.scaling_dimension, "Value": queue}],
                        },
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
        )
        return answer["MetricDataResults"][0]["Values"]

    # THEN Maximum and Average agree: duplicate publishers do not skew the signal (moto may
    # bin the two datapoints apart; CloudWatch merges them into the minute)
    assert set(read("default", "Maximum")) == {2.0}
    assert set(read("default", "Average")) == {2.0}
    assert set(read("gpu", "Maximum")) == {1.0}
