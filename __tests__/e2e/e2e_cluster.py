"""The AWS side and the user side of the local e2e cluster (scripts/e2e.sh).

- ``seed``: what `cdktf deploy` leaves in the account, put into the moto server: the buckets,
  every contract SSM parameter and Secrets Manager secret (generated secrets, as the infra
  generates them; each node's bootstrap fetches its role's only, contract roleSecrets),
  the DAGs' Variables and the SMTP connection under the Parameter Store
  backend's prefixes, and dags/ + spark-jobs/ uploaded as the deploy uploads them (the Spark job
  under a content-hashed key). The few secrets the harness itself needs to start PostgreSQL,
  Redis and the mail server go to root-only files in the work dir.
- ``fanout``: the benchmark's load: trigger e2e_fanout (200 no-op tasks), wait, and print one
  JSON line of figures taken from the REST API (run duration, tasks/second, queued -> running
  latency p50/p95 from each task instance's queued_when and start_date).
- ``run``: what a user does: upload the CSV, log in over the REST API (JWT) with the admin
  password read from Secrets Manager, unpause and trigger DAG_1, wait (progress on stderr), then
  report one JSON line. DAG_2 is never touched: the scheduler must start it from DAG_1's trigger.

Settings (ports, paths) come from the work dir's cluster.env, written by scripts/e2e.sh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import secrets
import sys
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "config/settings-contract.json").read_text())
DAG_1 = "champion_dag_1_emr"
DAG_2 = "champion_dag_2_sort"
INPUT_KEY = "champion/data/Mall_Customers.csv"
OUTPUT_PREFIX = "champion/output/"
SMTP_CONN_ID = "smtp_default"
SMTP_LOGIN = "ses-smtp-user"
TERMINAL = {"success", "failed"}
FANOUT_DAG = "e2e_fanout"


def log(message: str) -> None:
    print(f"e2e: {message}", file=sys.stderr, flush=True)


class Cluster:
    """The values scripts/e2e.sh wrote to WORK/cluster.env."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {}
        for line in (work / "cluster.env").read_text().splitlines():
            key, _, value = line.partition("=")
            self.env[key] = value.strip('"')  # shell-quoted where it holds spaces
        self.region = self.env["E2E_REGION"]
        self.moto_url = self.env["E2E_MOTO_URL"]
        self.api_url = f"http://127.0.0.1:{self.env['E2E_API_PORT']}"
        self.parameter_prefix = self.env["E2E_PARAMETER_PREFIX"]
        self.secret_prefix = self.env["E2E_SECRET_PREFIX"]
        self.data_bucket = self.env["E2E_DATA_BUCKET"]
        self.artifacts_bucket = self.env["E2E_ARTIFACTS_BUCKET"]
        self.logs_bucket = self.env["E2E_LOGS_BUCKET"]
        self.mail_dir = work / "mail"
        self.harness = work / "harness"

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    # --- the user's side -------------------------------------------------------------

    def admin_password(self) -> str:
        # where a user finds it: Secrets Manager, <namePrefix>/<env>/admin-password
        sm = self.client("secretsmanager")
        return sm.get_secret_value(SecretId=f"{self.secret_prefix}/admin-password")["SecretString"]

    def token(self) -> str:
        import requests

        r = requests.post(
            f"{self.api_url}/auth/token",
            json={"username": "admin", "password": self.admin_password()},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def api(self, method: str, path: str, token: str, **kwargs):
        import requests

        r = requests.request(
            method,
            f"{self.api_url}/api/v2/{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            **kwargs,
        )
        r.raise_for_status()
        return r.json()

    def upload_input(self, csv: Path) -> None:
        self.client("s3").upload_file(str(csv), self.data_bucket, INPUT_KEY)

    def trigger_dag_1(self, token: str) -> str:
        self.api("PATCH", f"dags/{DAG_1}", token, json={"is_paused": False})
        run = self.api("POST", f"dags/{DAG_1}/dagRuns", token, json={"logical_date": None})
        return run["dag_run_id"]

    def task_states(self, dag_id: str, run_id: str, token: str) -> dict[str, str]:
        tis = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", token)
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}

    def run_state(self, dag_id: str, run_id: str, token: str) -> str:
        return self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}", token)["state"]

    def dag_2_run_id(self, dag_1_run: str, token: str) -> str | None:
        import requests

        try:
            entry = self.api(
                "GET",
                f"dags/{DAG_1}/dagRuns/{dag_1_run}/taskInstances/trigger_dag_2/xcomEntries/trigger_run_id",
                token,
            )
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return None
            raise
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) and value.startswith('"') else value

    def wait_for_run(self, dag_id: str, run_id: str, timeout_seconds: float, on_tick=None) -> str:
        """Poll the run until it ends; one progress line whenever a task changes state."""
        token, token_at = self.token(), time.monotonic()
        seen: dict[str, str] = {}
        deadline = time.monotonic() + timeout_seconds
        while True:
            if time.monotonic() - token_at > 600:  # tokens live 24 h by default; renew anyway
                token, token_at = self.token(), time.monotonic()
            state = self.run_state(dag_id, run_id, token)
            for dag, run in [(dag_id, run_id), *self._children(dag_id, run_id, token)]:
                for task, task_state in self.task_states(dag, run, token).items():
                    key = f"{dag}.{task}"
                    if task_state and seen.get(key) != task_state:
                        seen[key] = task_state
                        log(f"{key}: {task_state}")
            if on_tick is not None:
                on_tick(seen)
            if state in TERMINAL:
                return state
            if time.monotonic() > deadline:
                log(f"{dag_id} run {run_id} still {state} after {timeout_seconds:.0f}s")
                return state
            time.sleep(3)

    def _children(self, dag_id: str, run_id: str, token: str):
        if dag_id != DAG_1:
            return []
        child = self.dag_2_run_id(run_id, token)
        return [(DAG_2, child)] if child else []

    def emr_cluster_state(self, dag_1_run: str) -> str | None:
        emr = self.client("emr")
        for summary in emr.list_clusters()["Clusters"]:
            cluster = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
            tags = {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}
            if tags.get("airflow:run_id") == dag_1_run:
                return cluster["Status"]["State"]
        return None

    def email_about(self, run_id: str, wait_seconds: float = 30):
        deadline = time.monotonic() + wait_seconds
        while True:
            for path in sorted(self.mail_dir.glob("*.eml"), reverse=True):
                message = message_from_bytes(path.read_bytes(), policy=default_policy)
                if run_id in str(message["Subject"]):
                    return message
            if time.monotonic() > deadline:
                return None
            time.sleep(1)

    def download_output(self, dag_2_run: str, out_dir: Path) -> list[Path]:
        """Copy the run's Parquet prefix into out_dir; the part files, in name order."""
        s3 = self.client("s3")
        prefix = f"{OUTPUT_PREFIX}{run_folder(dag_2_run)}/"
        out_dir.mkdir(parents=True, exist_ok=True)
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.data_bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for key in keys:
            target = out_dir / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(self.data_bucket, key, str(target))
        return sorted(p for p in out_dir.glob("part-*.parquet"))


def run_folder(dag_2_run_id: str) -> str:
    """DAG_2's output folder for a run (dags/champion_dag_2_sort.py RUN_STAMP)."""
    return dag_2_run_id.replace(":", "").replace("+", "")


def read_rows(parts: list[Path]) -> list[dict]:
    """Rows of the part files read one by one in name order, as the README tells readers to."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("e2e-read-output")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        rows = []
        for part in parts:
            df = spark.read.parquet(str(part))
            types = dict(df.dtypes)
            rows += [{**r.asDict(), "__types__": types} for r in df.collect()]
        return rows
    finally:
        spark.stop()


# --- seed ----------------------------------------------------------------------------


def _secret_file(cluster: Cluster, name: str, value: str) -> None:
    cluster.harness.mkdir(mode=0o700, exist_ok=True)
    path = cluster.harness / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)


def seed(cluster: Cluster) -> None:
    from cryptography.fernet import Fernet

    env = cluster.env
    s3, ssm, sm = cluster.client("s3"), cluster.client("ssm"), cluster.client("secretsmanager")
    for bucket in (cluster.data_bucket, cluster.artifacts_bucket, cluster.logs_bucket):
        s3.create_bucket(Bucket=bucket)

    api = cluster.api_url
    parameters = {
        "executor": env["E2E_EXECUTOR"],
        "db/engine": "postgres",
        "db/endpoint": "127.0.0.1",
        "db/port": env["E2E_PG_PORT"],
        "db/name": "airflow",
        "db/username": "airflow",
        "broker/endpoint": "127.0.0.1",
        "broker/port": env["E2E_REDIS_PORT"],
        "efs/file-system-id": "fs-0123456789abcdef0",
        "efs/access-point-id": "fsap-0123456789abcdef0",
        "logs/remote-base-log-folder": f"s3://{cluster.logs_bucket}/airflow",
        "artifacts/dags-uri": f"s3://{cluster.artifacts_bucket}/dags",
        "api/base-url": api,
        "api/execution-api-url": f"{api}/execution/",
        "smtp/from-email": "airflow@example.test",
        # the e2e checks the outcome mail at its local SMTP sink (the SES backend is tested in
        # __tests__/pipeline against moto)
        "email/backend": "smtp",
        "smtp/host": "127.0.0.1",
        "scheduler/max-dagruns-to-create-per-loop": "10",
        "scheduler/max-dagruns-per-loop-to-schedule": "20",
        "scheduler/use-row-level-locking": "True",
        "scheduler/pool-metrics-interval": "5",
        "scheduler/orphaned-tasks-check-interval": "60",
        "core/allow-trigger-in-future": "False",
        "core/parallelism": "32",
        "celery/worker-concurrency": env["E2E_WORKER_CONCURRENCY"],
    }
    contract_keys = {p["key"] for p in CONTRACT["parameters"]}
    if set(parameters) != contract_keys:
        raise SystemExit(
            "e2e seed: parameters differ from the contract: "
            f"missing {sorted(contract_keys - set(parameters))}, "
            f"extra {sorted(set(parameters) - contract_keys)}"
        )
    for key, value in parameters.items():
        ssm.put_parameter(
            Name=f"{cluster.parameter_prefix}/{key}", Value=value, Type="String", Overwrite=True
        )

    generated = {
        "db-password": "db+" + secrets.token_urlsafe(18) + "/@:%",  # URL-special characters on purpose
        "redis-auth-token": secrets.token_urlsafe(24),
        "fernet-key": Fernet.generate_key().decode(),
        "jwt-secret": secrets.token_urlsafe(32),
        "api-secret-key": secrets.token_urlsafe(32),
        "admin-password": secrets.token_urlsafe(18),
        "flower-password": secrets.token_urlsafe(18),
    }
    if set(generated) != {s["key"] for s in CONTRACT["secrets"]}:
        raise SystemExit("e2e seed: generated secrets differ from the contract's secrets")
    for key, value in generated.items():
        sm.create_secret(Name=f"{cluster.secret_prefix}/{key}", SecretString=value)
    for key in ("db-password", "redis-auth-token"):
        _secret_file(cluster, key, generated[key])
    smtp_password = secrets.token_urlsafe(18)
    _secret_file(cluster, "smtp-password", smtp_password)

    # dags/ and spark-jobs/ as the deploy uploads them (modules/artifacts.ts)
    for path in sorted((ROOT / "dags").glob("*.py")) + sorted((ROOT / "__tests__/e2e/dags").glob("*.py")):
        s3.upload_file(str(path), cluster.artifacts_bucket, f"dags/{path.name}")
    job = ROOT / "spark-jobs/sort_customers.py"
    job_key = f"spark-jobs/{hashlib.sha256(job.read_bytes()).hexdigest()[:16]}/{job.name}"
    s3.upload_file(str(job), cluster.artifacts_bucket, job_key)

    variables = {
        "data_bucket": cluster.data_bucket,
        "artifacts_bucket": cluster.artifacts_bucket,
        "spark_job_uri": f"s3://{cluster.artifacts_bucket}/{job_key}",
        "emr_service_role": "airflow-e2e-emr-service",
        "emr_cluster_tag": "airflow-e2e",
        "emr_job_flow_role": "airflow-e2e-emr-ec2",
        "emr_log_uri": f"s3://{cluster.logs_bucket}/emr/",
        "emr_subnet_id": "subnet-0123456789abcdef0",
        # moto checks these only when it knows the subnet; it knows none here
        "emr_primary_security_group_id": "sg-0e2e0000000000001",
        "emr_core_security_group_id": "sg-0e2e0000000000002",
        "emr_service_access_security_group_id": "sg-0e2e0000000000003",
        "alert_email": "data-team@example.test",
    }
    wanted = {v["key"] for v in CONTRACT["variables"]["keys"]}
    if set(variables) != wanted:
        raise SystemExit(
            f"e2e seed: variables differ from the contract: missing {sorted(wanted - set(variables))}, "
            f"extra {sorted(set(variables) - wanted)}"
        )
    for key, value in variables.items():
        ssm.put_parameter(
            Name=f"{cluster.parameter_prefix}/variables/{key}", Value=value, Type="String", Overwrite=True
        )
    # SES SMTP: STARTTLS and AUTH, as the infra's smtp_default connection describes it
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": int(env["E2E_SMTP_PORT"]),
        "login": SMTP_LOGIN,
        "password": smtp_password,
        "extra": {"disable_ssl": True, "disable_tls": False, "timeout": 20, "retry_limit": 2},
    }
    ssm.put_parameter(
        Name=f"{cluster.parameter_prefix}/connections/{SMTP_CONN_ID}",
        Value=json.dumps(connection),
        Type="SecureString",
        Overwrite=True,
    )
    log(
        f"seeded moto: {len(parameters)} parameters, {len(generated)} secrets, {len(variables)} variables, "
        f"connection {SMTP_CONN_ID}, dags and {job_key}"
    )


# --- run -----------------------------------------------------------------------------


def run_pipeline(cluster: Cluster, csv: Path, out_dir: Path, timeout_seconds: float, on_tick=None) -> dict:
    """Upload csv, trigger DAG_1 as a user would, wait; the run's outcome as a dict (the JSON
    line) plus the output rows under "output_rows". on_tick(seen) is called on every poll with
    {"dag.task": state}, for a test to inject a fault at a chosen point."""
    cluster.upload_input(csv)
    log(f"uploaded {csv} to s3://{cluster.data_bucket}/{INPUT_KEY}")
    token = cluster.token()
    for dag_id in (DAG_1, DAG_2):
        wait_parsed(cluster, dag_id, token)
    paused = cluster.api("GET", f"dags/{DAG_2}", token)["is_paused"]
    log(f"{DAG_2} is_paused={paused} (nobody unpauses it)")
    started = time.monotonic()
    run_id = cluster.trigger_dag_1(token)
    log(f"triggered {DAG_1} run {run_id} over the REST API")
    dag_1_state = cluster.wait_for_run(DAG_1, run_id, timeout_seconds, on_tick)
    seconds = round(time.monotonic() - started, 1)
    token = cluster.token()
    dag_2_run = cluster.dag_2_run_id(run_id, token)
    dag_2_state = cluster.run_state(DAG_2, dag_2_run, token) if dag_2_run else None
    message = cluster.email_about(run_id)
    parts = cluster.download_output(dag_2_run, out_dir) if dag_2_run else []
    rows = read_rows(parts) if parts else []
    return {
        "dag_1_state": dag_1_state,
        "dag_2_state": dag_2_state,
        "emr_cluster_state": cluster.emr_cluster_state(run_id),
        "email_subject": str(message["Subject"]) if message else None,
        "rows": len(rows),
        "seconds": seconds,
        "parquet_parts": len(parts),
        "dag_1_run_id": run_id,
        "dag_2_run_id": dag_2_run,
        "output_dir": str(out_dir),
        "output_rows": rows,
        "email": message,
    }


def run(cluster: Cluster, csv: Path, out_dir: Path, timeout_seconds: float) -> int:
    result = run_pipeline(cluster, csv, out_dir, timeout_seconds)
    line = {k: v for k, v in result.items() if k not in ("output_rows", "email")}
    print(json.dumps(line), flush=True)
    return 0 if result["dag_1_state"] == "success" and result["parquet_parts"] else 1


def task_instances(cluster: Cluster, dag_id: str, run_id: str, token: str) -> list[dict]:
    """Every task instance of a run (the API pages at 100)."""
    out: list[dict] = []
    while True:
        page = cluster.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            token,
            params={"limit": 100, "offset": len(out)},
        )
        out += page["task_instances"]
        if not page["task_instances"] or len(out) >= page["total_entries"]:
            return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(p / 100 * len(ranked)) - 1)]


def fanout(cluster: Cluster, timeout_seconds: float) -> dict:
    from datetime import datetime

    token = cluster.token()
    wait_parsed(cluster, FANOUT_DAG, token)
    run_id = cluster.api("POST", f"dags/{FANOUT_DAG}/dagRuns", token, json={"logical_date": None})[
        "dag_run_id"
    ]
    log(f"triggered {FANOUT_DAG} run {run_id}")
    state = cluster.wait_for_run(FANOUT_DAG, run_id, timeout_seconds)
    token = cluster.token()
    run = cluster.api("GET", f"dags/{FANOUT_DAG}/dagRuns/{run_id}", token)
    tis = task_instances(cluster, FANOUT_DAG, run_id, token)

    def at(value: str) -> float:
        return datetime.fromisoformat(value).timestamp()

    latencies = [
        at(t["start_date"]) - at(t["queued_when"]) for t in tis if t["queued_when"] and t["start_date"]
    ]
    seconds = at(run["end_date"]) - at(run["start_date"]) if run["end_date"] else None
    return {
        "dag_run_state": state,
        "tasks": len(tis),
        "tasks_succeeded": sum(t["state"] == "success" for t in tis),
        "run_seconds": round(seconds, 1) if seconds else None,
        "tasks_per_second": round(len(tis) / seconds, 2) if seconds else None,
        "queued_to_running_p50_seconds": round(percentile(latencies, 50), 2) if latencies else None,
        "queued_to_running_p95_seconds": round(percentile(latencies, 95), 2) if latencies else None,
        "executor": cluster.env["E2E_EXECUTOR"],
    }


def wait_parsed(cluster: Cluster, dag_id: str, token: str, timeout_seconds: float = 180) -> None:
    import requests

    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            cluster.api("GET", f"dags/{dag_id}", token)
            return
        except requests.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit(f"e2e: {dag_id} not parsed after {timeout_seconds:.0f}s") from None
            time.sleep(2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["seed", "run", "fanout"])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--input", type=Path)
    ap.add_argument("--output", type=Path)
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    cluster = Cluster(args.work)
    if args.command == "seed":
        seed(cluster)
        return 0
    if args.command == "fanout":
        result = fanout(cluster, args.timeout)
        print(json.dumps(result), flush=True)
        return 0 if result["dag_run_state"] == "success" else 1
    if args.input is None or args.output is None:
        ap.error("run needs --input and --output")
    return run(cluster, args.input, args.output, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
