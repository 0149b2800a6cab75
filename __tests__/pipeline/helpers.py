"""Helpers shared by the pipeline tests and the DAG runner subprocess."""

from __future__ import annotations

import os
from datetime import timedelta


def load_dags() -> dict:
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
