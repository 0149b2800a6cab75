"""The worker autoscaling signal, published by airflow-queue-depth.timer on scheduler nodes.

Per Celery queue: ``ceil((running + queued task instances) / worker_concurrency)``, the
query the Helm chart's KEDA scaler runs, as the contract's ``workerScaling.metricName``
with a ``workerScaling.queueDimension`` dimension in ``$AIRFLOW_METRICS_NAMESPACE``. It runs
here because the scheduler role holds the metadata DB credentials; workers (DAG code) never
do. Every scheduler node publishes the same value for the same minute, so the Maximum and
the Average the worker group's policies read agree.

With it, per queue, the age of the oldest queued task instance (``workerScaling.
oldestQueuedMetricName``, seconds), which the queued-too-long alarm reads: Airflow 3 sends no
queued-duration metric for tasks that start through the Execution API.

The default queue is always published, 0 included: target tracking does not scale in on
missing data, so an idle cluster must report 0 rather than nothing.

    python -m airflow_node.queue_depth          # once; the timer runs it every 60 s
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from . import BootstrapError
from . import contract as contract_mod

NAMESPACE_ENV = "AIRFLOW_METRICS_NAMESPACE"

# The Helm chart's KEDA query, grouped by queue (chart/templates/workers/worker-kedaautoscaler.yaml
# filters the same states; the division happens in Python so every DB engine rounds alike).
QUERY = "SELECT queue, COUNT(*) FROM task_instance WHERE state = 'running' OR state = 'queued' GROUP BY queue"
# When the oldest task of each queue was queued: the queued-too-long alarm's signal.
OLDEST_QUERY = "SELECT queue, MIN(queued_dttm) FROM task_instance WHERE state = 'queued' GROUP BY queue"


def workers_needed(counts: Mapping[str, int], concurrency: int, queues: Iterable[str] = ()) -> dict[str, int]:
    """Workers each queue needs: ceil(tasks / concurrency); `queues` are reported even at 0."""
    if concurrency < 1:
        raise BootstrapError(
            f"[celery] worker_concurrency is {concurrency}; allowed: an integer of 1 or more"
        )
    needed = dict.fromkeys(queues, 0)
    for queue, count in counts.items():
        needed[queue] = math.ceil(count / concurrency)
    return needed


def count_tasks(conn) -> dict[str, int]:
    """Running + queued task instances per queue, from the metadata DB."""
    from sqlalchemy import text

    return {queue: int(count) for queue, count in conn.execute(text(QUERY))}


def oldest_queued_seconds(conn, now: datetime, queues: Iterable[str] = ()) -> dict[str, int]:
    """Per queue, the age of its oldest queued task instance in whole seconds; `queues` are
    reported even with nothing queued (0), like the queue depth."""
    from sqlalchemy import text

    ages = dict.fromkeys(queues, 0)
    for queue, queued_at in conn.execute(text(OLDEST_QUERY)):
        if queued_at is None:
            continue
        if isinstance(queued_at, str):  # SQLite hands back text
            queued_at = datetime.fromisoformat(queued_at)
        if queued_at.tzinfo is None:  # MySQL DATETIME: Airflow stores UTC
            queued_at = queued_at.replace(tzinfo=UTC)
        ages[queue] = max(0, int((now - queued_at).total_seconds()))
    return ages


def datums(metric: str, dimension: str, values: Mapping[str, int], unit: str = "Count") -> list[dict]:
    """One MetricData entry per queue."""
    return [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": dimension, "Value": queue}],
            "Value": float(value),
            "Unit": unit,
        }
        for queue, value in sorted(values.items())
    ]


def publish(cloudwatch, namespace: str, data: Sequence[Mapping]) -> None:
    """One PutMetricData call per 1000 entries (the API's limit per call)."""
    for start in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=list(data[start : start + 1000]))


def main() -> int:
    namespace = os.environ.get(NAMESPACE_ENV, "")
    if not namespace.startswith("Airflow/"):
        print(f"error: {NAMESPACE_ENV}={namespace!r} is invalid: Airflow/<namePrefix>-<env>", file=sys.stderr)
        return 2
    try:
        contract = contract_mod.load()
        import boto3
        from airflow import settings
        from airflow.configuration import conf
        from botocore.exceptions import BotoCoreError, ClientError
        from sqlalchemy.exc import SQLAlchemyError

        concurrency = conf.getint("celery", "worker_concurrency")
        default_queue = conf.get("operators", "default_queue")
        try:
            with settings.get_engine().connect() as conn:
                counts = count_tasks(conn)
                oldest = oldest_queued_seconds(conn, datetime.now(UTC), [default_queue])
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise BootstrapError(f"metadata DB query failed: {type(cause).__name__}: {cause}") from None
        needed = workers_needed(counts, concurrency, [default_queue])
        try:
            cloudwatch = boto3.client("cloudwatch")
            dimension = contract.scaling_dimension
            data = datums(contract.scaling_metric, dimension, needed)
            data += datums(contract.oldest_queued_metric, dimension, oldest, unit="Seconds")
            publish(cloudwatch, namespace, data)
        except (BotoCoreError, ClientError) as exc:
            raise BootstrapError(f"PutMetricData to {namespace} failed: {exc}") from None
    except BootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    shown = ", ".join(f"{queue}={value}" for queue, value in sorted(needed.items()))
    ages = ", ".join(f"{queue}={value}s" for queue, value in sorted(oldest.items()))
    print(f"published to {namespace}: {contract.scaling_metric} {shown}")
    print(f"published to {namespace}: {contract.oldest_queued_metric} {ages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
