"""Least privilege and rotation on the local cluster (the session's one cluster, conftest.py):
each node holds only its role's secrets, DAG code on a worker reaches neither the metadata DB
nor JWT signing, and both rotations revoke: the fernet key's (multi-key secret, re-encrypted
at a scheduler node's boot) and the Redis AUTH token's (ROTATE, replace every node, SET).

Runs after test_e2e_cluster.py (file order): the rotations change the cluster's secrets and
replace every node, and they leave it whole, on the new values.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import e2e_cluster as ec  # noqa: E402
from cluster_ops import NODE_SH, sql, trigger, unit_log, wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(3600)

# what each role's bootstrap writes to /etc/airflow/secrets (the renderer's file names)
DB_FILES = {"sql_alchemy_conn", "sql_alchemy_conn_async", "fernet_key", "jwt_secret"}
CELERY_FILES = {"broker_url", "result_backend", "api_secret_key"}
EXPECTED_FILES = {
    "worker": CELERY_FILES,
    "scheduler": CELERY_FILES | DB_FILES,
    "api-server": CELERY_FILES | DB_FILES | {"flower_basic_auth"},
}
# never on a worker, in any form
NOT_ON_A_WORKER = ("db-password", "fernet-key", "jwt-secret", "admin-password", "flower-password")
# unit log lines that say a replaced node is back (the api-server: its health endpoint)
READY = {
    "worker": {"airflow-celery-worker.service": " ready."},
    "scheduler": {"airflow-scheduler.service": "Starting the scheduler"},
    "api-server": {},
}


def roles(cluster: ec.Cluster) -> dict[str, str]:
    """node name -> role, from each node.env scripts/e2e.sh wrote."""
    out = {}
    for name in cluster.env["E2E_NODES"].split():
        env = (cluster.work / "nodes" / name / "node.env").read_text()
        out[name] = next(ln.split("=", 1)[1] for ln in env.splitlines() if ln.startswith("AIRFLOW_ROLE="))
    return out


def secret_value(cluster: ec.Cluster, key: str) -> str:
    sm = cluster.client("secretsmanager")
    return sm.get_secret_value(SecretId=f"{cluster.secret_prefix}/{key}")["SecretString"]


def put_secret(cluster: ec.Cluster, key: str, value: str) -> None:
    # a new version, as the infra's aws_secretsmanager_secret_version writes it
    cluster.client("secretsmanager").put_secret_value(
        SecretId=f"{cluster.secret_prefix}/{key}", SecretString=value
    )


def airflow_on(cluster: ec.Cluster, name: str, *argv: str, **extra_env: str) -> subprocess.CompletedProcess:
    """An operator's airflow CLI call on NAME, with the node's rendered environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    for line in (cluster.work / "nodes" / name / "etc/airflow/airflow.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip('"')
    env.update(
        SSL_CERT_FILE=str(cluster.work / "tls/ca.pem"),
        AWS_ENDPOINT_URL=cluster.moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **extra_env,
    )
    return subprocess.run(
        ["airflow", *argv], env=env, capture_output=True, text=True, timeout=300, cwd=env["AIRFLOW_HOME"]
    )


def replace_nodes(cluster: ec.Cluster, names: list[str]) -> dict[str, str]:
    """Replace NAMES at once (an instance refresh); wait until each role's units are ready
    anew. Returns each node's bootstrap output."""
    node_roles = roles(cluster)
    offsets = {
        (name, unit): unit_log(cluster, name, unit).stat().st_size
        for name in names
        for unit in READY[node_roles[name]]
    }
    procs = {
        name: subprocess.Popen(
            ["bash", str(NODE_SH), "replace", str(cluster.work), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    }
    outputs = {name: proc.communicate(timeout=900)[0] for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"replacing {name} failed:\n{outputs[name][-3000:]}"
    for (name, unit), offset in offsets.items():
        needle = READY[node_roles[name]][unit]
        path = unit_log(cluster, name, unit)

        def ready(p=path, o=offset, n=needle):
            with p.open("rb") as fh:
                fh.seek(o)
                return n.encode() in fh.read()

        wait_until(f"{name} {unit} logs {needle!r}", ready, timeout_seconds=300)
    wait_until("api-server health", lambda: _healthy(cluster), timeout_seconds=300)
    return outputs


def _healthy(cluster: ec.Cluster) -> bool:
    import requests

    try:
        health = requests.get(f"{cluster.api_url}/api/v2/monitor/health", timeout=10).json()
    except (requests.RequestException, ValueError):
        return False
    return all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler"))


def run_dag(cluster: ec.Cluster, dag_id: str, conf: dict | None = None) -> tuple[str, str]:
    run_id = trigger(cluster, dag_id, conf)
    return run_id, cluster.wait_for_run(dag_id, run_id, 600)


# --- each node holds only its role's secrets -------------------------------------------


def test_each_node_holds_only_its_roles_secret_files(cluster):
    # GIVEN the five nodes, each bootstrapped from Secrets Manager by its role
    for name, role in roles(cluster).items():
        files = {p.name for p in (cluster.work / "nodes" / name / "etc/airflow/secrets").iterdir()}
        # THEN its secret directory holds its role's files and no other
        assert files == EXPECTED_FILES[role], f"{name} ({role})"


def test_no_worker_file_holds_another_roles_secret(cluster):
    # GIVEN the values the other roles hold (as the operator reads them from Secrets Manager)
    values = {key: secret_value(cluster, key) for key in NOT_ON_A_WORKER}
    for name, role in roles(cluster).items():
        if role != "worker":
            continue
        # WHEN every file the worker's bootstrap wrote is read
        # (mnt/efs is the shared file system's stand-in, not the node's)
        top = [p for p in (cluster.work / "nodes" / name).iterdir() if p.name != "mnt"]
        paths = [q for p in top for q in ([p] if p.is_file() else p.rglob("*"))]
        texts = {str(p): p.read_text(errors="replace") for p in paths if p.is_file() and not p.is_symlink()}
        assert any(t.endswith("airflow.cfg") for t in texts), f"{name}: no airflow.cfg found"
        # THEN none holds one of those secrets, raw or URL-quoted
        for key, value in values.items():
            for path, text in texts.items():
                assert value not in text and quote(value, safe="") not in text, f"{path} holds {key}"
        cfg = (cluster.work / "nodes" / name / "etc/airflow/airflow.cfg").read_text()
        assert "sql_alchemy_conn = sqlite://\n" in cfg


def test_task_on_a_worker_reaches_no_database_and_mints_no_accepted_token(cluster):
    # GIVEN DAG code running on a worker that tries the metadata DB and JWT signing
    run_id, state = run_dag(cluster, "e2e_worker_reach")
    assert state == "success"
    token = cluster.token()
    entry = cluster.api(
        "GET", f"dags/e2e_worker_reach/dagRuns/{run_id}/taskInstances/reach/xcomEntries/return_value", token
    )
    found = entry["value"] if isinstance(entry["value"], dict) else json.loads(entry["value"])
    found = found.get("__data__", found)  # serde's envelope, where it wraps a dict
    assert found["hostname"].startswith("e2e-worker-"), found
    # THEN the node's airflow.cfg names no database: an empty in-memory SQLite
    assert found["database_section"] == {"sql_alchemy_conn": "sqlite://"}, found
    assert found["metadata_db"] != "read the dag table", found
    # AND no fernet key, and the secret files are the worker's own (every *_cmd reads one)
    assert found["fernet_key_set"] is False
    assert set(found["secret_files"]) == EXPECTED_FILES["worker"]
    assert found["cmd_failures"] == [], found
    assert "core.fernet_key_cmd" not in found["cmd_options"]
    assert "api_auth.jwt_secret_cmd" not in found["cmd_options"]
    # AND it has no key to sign with; a token it signs anyway is refused by the Execution API
    assert "api_auth/jwt_secret must be set" in found["signing_key"], found
    assert found["minted_token_status"] in (401, 403), found


# --- rotations that revoke ---------------------------------------------------------------


def test_fernet_rotation_reencrypts_stored_values_under_the_new_key(cluster):
    from cryptography.fernet import Fernet

    # GIVEN a variable and a connection password stored under the current (old) key
    old = secret_value(cluster, "fernet-key")
    new = Fernet.generate_key().decode()
    put = airflow_on(cluster, "scheduler-1", "variables", "set", "e2e_fernet_probe", "var-value-0")
    assert put.returncode == 0, put.stderr[-2000:]
    put = airflow_on(
        cluster, "scheduler-1", "connections", "add", "e2e_fernet_conn", "--conn-type", "http",
        "--conn-host", "example.test", "--conn-password", "conn-value-0",
    )  # fmt: skip
    assert put.returncode == 0, put.stderr[-2000:]

    def ciphertexts() -> tuple[str, str]:
        var = sql(cluster, "SELECT val FROM variable WHERE key = 'e2e_fernet_probe'")[0][0]
        conn = sql(cluster, "SELECT password FROM connection WHERE conn_id = 'e2e_fernet_conn'")[0][0]
        return var, conn

    before = ciphertexts()
    # WHEN the secret becomes "new,old" and a scheduler node is replaced (the migrating role)
    put_secret(cluster, "fernet-key", f"{new},{old}")
    boot = replace_nodes(cluster, ["scheduler-1"])["scheduler-1"]
    # THEN its bootstrap re-encrypted the stored values with the new key
    assert "fernet key rotation: stored values re-encrypted with the first key" in boot
    after = ciphertexts()
    assert after[0] != before[0] and after[1] != before[1]

    def read(key: str) -> tuple[str, str]:
        var = airflow_on(
            cluster, "scheduler-1", "variables", "get", "e2e_fernet_probe", AIRFLOW__CORE__FERNET_KEY=key
        )
        conn = airflow_on(
            cluster, "scheduler-1", "connections", "get", "e2e_fernet_conn", "-o", "json",
            AIRFLOW__CORE__FERNET_KEY=key,
        )  # fmt: skip
        return var.stdout, conn.stdout

    # AND the new key alone reads them, the old key alone no longer does
    var, conn = read(new)
    assert "var-value-0" in var and "conn-value-0" in conn
    var, conn = read(old)
    assert "var-value-0" not in var and "conn-value-0" not in conn


def test_redis_auth_rotation_then_set_revokes_the_old_token(cluster):
    import redis

    port = int(cluster.env["E2E_REDIS_PORT"])

    def ping(token: str) -> str:
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            password=token,
            ssl=True,
            ssl_ca_certs=str(cluster.work / "tls/ca.pem"),
            socket_timeout=10,
        )
        try:
            return "PONG" if client.ping() else "no answer"
        except redis.AuthenticationError:
            return "WRONGPASS"
        finally:
            client.close()

    def acl(token: str, *rules: str) -> None:
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            password=token,
            ssl=True,
            ssl_ca_certs=str(cluster.work / "tls/ca.pem"),
        )
        try:
            client.execute_command("ACL", "SETUSER", "default", *rules)
        finally:
            client.close()

    old = (cluster.harness / "redis-auth-token").read_text()
    new = secrets.token_urlsafe(24)
    assert (ping(old), ping(new)) == ("PONG", "WRONGPASS")
    # GIVEN a new token version in Secrets Manager and ElastiCache's ROTATE (both tokens valid)
    put_secret(cluster, "redis-auth-token", new)
    acl(old, "on", f">{new}")
    assert (ping(old), ping(new)) == ("PONG", "PONG")
    # WHEN every node is replaced (the instance refresh the new settings revision starts)
    names = cluster.env["E2E_NODES"].split()
    started = time.monotonic()
    replace_nodes(cluster, names)
    print(f"rotation: {len(names)} nodes replaced in {time.monotonic() - started:.0f}s")
    # AND then SET: only the new token stays valid
    acl(new, "resetpass", f">{new}")
    _keep_redis_config(cluster, new)
    # THEN a fresh AUTH with the old token is refused and the new one works
    assert (ping(old), ping(new)) == ("WRONGPASS", "PONG")
    for name in names:
        broker = (cluster.work / "nodes" / name / "etc/airflow/secrets/broker_url").read_text()
        assert quote(new, safe="") in broker and quote(old, safe="") not in broker, name
    # AND a task still goes scheduler -> broker -> worker -> Execution API
    run_id, state = run_dag(cluster, "e2e_hold", {"hold_seconds": 0})
    assert state == "success", run_id


def _keep_redis_config(cluster: ec.Cluster, token: str) -> None:
    """The local Redis reads its password from redis.conf at start (ElastiCache keeps the SET
    itself): write the new one there and in the harness copy, root-only as before."""
    conf = cluster.work / "redis" / "redis.conf"
    lines = [
        f"requirepass {token}" if ln.startswith("requirepass ") else ln
        for ln in conf.read_text().splitlines()
    ]
    conf.write_text("\n".join(lines) + "\n")
    (cluster.harness / "redis-auth-token").write_text(token)
