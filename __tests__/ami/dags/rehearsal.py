"""Rehearsal DAG: one task that records which node (AIRFLOW_ROLE) ran it, so the
rehearsal can show it ran on the Celery worker, through broker, Execution API and JWT."""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="rehearsal", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def rehearsal():
    @task
    def where_am_i(run_id: str | None = None) -> str:
        role = os.environ.get("AIRFLOW_ROLE", "unknown")
        marker = Path(os.environ["AIRFLOW_DAGS_DIR"]).parent / "rehearsal-ran-on"
        marker.write_text(f"{role} {run_id}\n")
        return role

    where_am_i()


rehearsal()
