"""DAGs the e2e cluster carries besides the pipeline (uploaded with dags/ only by the e2e seed):

- e2e_hold: one task that holds a worker slot for ``hold_seconds``, so a test can SIGKILL the
  worker running it and watch Airflow retry it elsewhere.
- e2e_fanout: FANOUT independent no-op tasks, for the cluster benchmark's throughput and
  queued -> running latency.
- e2e_worker_reach: one task reporting what DAG code on a worker can reach (the metadata DB,
  secret files, JWT signing), for the least-privilege tests.
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


with DAG(
    dag_id="e2e_worker_reach",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["e2e"],
    default_args={"owner": "e2e", "retries": 0},
):

    @task(multiple_outputs=False)  # one XCom, the findings dict
    def reach() -> dict:
        """What DAG code on a worker can get at: the node's Airflow config, its secret files, the
        metadata DB and JWT signing. Returns findings, never a value that could be a secret."""
        import configparser
        import os
        import subprocess
        from pathlib import Path

        import requests
        from airflow.configuration import conf

        findings: dict = {"hostname": get_current_context()["ti"].hostname}
        findings["fernet_key_set"] = bool(conf.get("core", "fernet_key", fallback=""))
        etc = Path(os.environ["AIRFLOW_CONFIG"]).parent
        findings["secret_files"] = sorted(p.name for p in (etc / "secrets").iterdir())
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(etc / "airflow.cfg")
        # the file, not conf.get: the task runner masks [database] for task code, but the file
        # and what its *_cmd options point at are there to read
        findings["database_section"] = dict(cfg["database"]) if cfg.has_section("database") else {}
        options = [(sec, name, value) for sec in cfg.sections() for name, value in cfg[sec].items()]
        findings["cmd_options"] = sorted(f"{sec}.{name}" for sec, name, _ in options if name.endswith("_cmd"))
        # what each *_cmd yields to this task: a worker's point to files it has, nothing else
        findings["cmd_failures"] = sorted(
            f"{sec}.{name}"
            for sec, name, value in options
            if name.endswith("_cmd") and subprocess.run(value, shell=True, capture_output=True).returncode  # noqa: S602
        )
        from airflow.api_fastapi.auth.tokens import JWTGenerator, get_signing_args

        try:
            get_signing_args(make_secret_key_if_needed=False)
            findings["signing_key"] = "found"
        except Exception as exc:  # noqa: BLE001 - the failure is the finding
            findings["signing_key"] = f"{type(exc).__name__}: {exc}"[:200]
        # a token signed with whatever this node can make (Airflow invents a random key when it
        # has none), presented to the Execution API as a task would
        token = JWTGenerator(
            valid_for=60,
            audience=conf.get("execution_api", "jwt_audience"),
            issuer=conf.get("api_auth", "jwt_issuer", fallback=None) or None,
            **get_signing_args(),
        ).generate({"sub": str(get_current_context()["ti"].id)})
        url = conf.get("core", "execution_api_server_url").rstrip("/") + "/variables/data_bucket"
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        findings["minted_token_status"] = answer.status_code
        try:
            from airflow.settings import engine
            from sqlalchemy import text

            with engine.connect() as db:
                db.execute(text("SELECT count(*) FROM dag")).scalar()
            findings["metadata_db"] = "read the dag table"
        except Exception as exc:  # noqa: BLE001
            findings["metadata_db"] = type(exc).__name__
        return findings

    reach()
