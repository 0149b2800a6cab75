"""DAGs the e2e cluster carries besides the pipeline (uploaded with dags/ only by the e2e seed):

- e2e_hold: one task that holds a worker slot for ``hold_seconds``, so a test can SIGKILL the
  worker running it and watch Airflow retry it elsewhere.
- e2e_fanout: FANOUT independent no-op tasks, for the cluster benchmark's throughput and
  queued -> running latency.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task

FANOUT = 200

with DAG(
    dag_id="e2e_hold",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["e2e"],
    default_args={"owner": "e2e", "retries": 2, "retry_delay": timedelta(seconds=5)},
    params={"hold_seconds": Param(60, type="integer", minimum=0)},
):

    @task
    def hold() -> str:
        context = get_current_context()
        time.sleep(context["params"]["hold_seconds"])
        return context["ti"].hostname

    hold()

with DAG(
    dag_id="e2e_fanout",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_tasks=FANOUT,
    tags=["e2e"],
    default_args={"owner": "e2e", "retries": 0},
):
    for i in range(FANOUT):

        @task(task_id=f"noop_{i:03d}")
        def noop() -> None:
            return None

        noop()
