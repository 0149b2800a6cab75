"""Run one DAG with dag.test() in its own process and print its final state as JSON.

The DAG_1 tests need this: dag.test() runs one DAG run in the calling thread, and DAG_1's
sensor only finishes once DAG_2's run has run, which the test process does meanwhile.
Usage: run_dag.py DAG_ID LOGICAL_DATE_ISO RESULT_JSON_PATH
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_support import load_dags, speed_up  # noqa: E402


def main() -> int:
    dag_id, logical_date, result_path = sys.argv[1], datetime.fromisoformat(sys.argv[2]), Path(sys.argv[3])
    from airflow import settings

    if settings.Session is None:
        settings.configure_orm()
    dag = load_dags().dags[dag_id]
    speed_up(dag)
    # run_after = logical date, as for a run created over the REST API with a logical date;
    # DAG_1 gives DAG_2 its run_after, so the test finds the triggered run by this value.
    dag_run = dag.test(logical_date=logical_date, run_after=logical_date)
    result = {"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state)}
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
