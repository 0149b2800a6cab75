"""Database TLS for real: a PostgreSQL 15 that refuses non-TLS connections (like RDS with
rds.force_ssl=1), a server certificate for "localhost" from a test CA, and Airflow's own
sync (psycopg2) and async (asyncpg) engines built from the rendered config. Both must
connect over TLS when the bundle holds the CA, and both must refuse a server their bundle
does not vouch for (wrong CA) or whose name is not in its certificate (verify-full)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from airflow_node.bootstrap import write_files
from airflow_node.render import render
from ami_support import VALID_PARAMS, VALID_SECRETS, free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or os.geteuid() != 0, reason="needs PostgreSQL 15 and root"
)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    crt, key = d / f"{name}.crt", d / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
             "-out", str(crt), "-subj", f"/O=Test/CN={name}")  # fmt: skip
    return crt, key


@pytest.fixture(scope="module")
def tls_postgres():
    work = Path(tempfile.mkdtemp(prefix="ami-db-tls-"))
    work.chmod(0o755)  # the postgres user traverses it
    ca_crt, ca_key = _ca(work, "Test RDS Root CA")
    other_ca, _ = _ca(work, "Some Other CA")
    srv_key, srv_csr, srv_crt = work / "server.key", work / "server.csr", work / "server.crt"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(srv_key), "-out", str(srv_csr),
             "-subj", "/CN=localhost")  # fmt: skip
    ext = work / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(srv_csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(srv_crt), "-extfile", str(ext))  # fmt: skip
    data, sock = work / "pg", work / "sock"
    data.mkdir()
    sock.mkdir()
    for p in (data, sock, srv_key, srv_crt):
        shutil.chown(p, "postgres")
    srv_key.chmod(0o600)
    port = free_port()

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust")
    # TLS only over TCP, as RDS with rds.force_ssl=1
    (data / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 reject\n"
    )
    opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock} -c fsync=off "
            f"-c ssl=on -c ssl_cert_file={srv_crt} -c ssl_key_file={srv_key}")  # fmt: skip
    pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-o", opts, "start")
    try:
        pg("psql", "-q", "-h", str(sock), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
           "-c", "CREATE ROLE airflow_admin LOGIN PASSWORD 'p@ss:w/rd%?#'")  # fmt: skip
        assert VALID_SECRETS["db-password"] == "p@ss:w/rd%?#"
        pg("psql", "-q", "-h", str(sock), "-p", str(port), "-U", "postgres", "-c",
           "CREATE DATABASE airflow OWNER airflow_admin")  # fmt: skip
        yield {"port": port, "ca": ca_crt, "other_ca": other_ca}
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                        "immediate", "-w", "stop"], capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


PROBE = """
import asyncio, json
from sqlalchemy import text
from airflow import settings
Q = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
out = {}
try:
    with settings.engine.connect() as c:
        out["sync"] = c.execute(Q).scalar()
except Exception as exc:
    out["sync"] = f"{type(exc).__name__}: {exc}"
async def main():
    async with settings.async_engine.connect() as c:
        return (await c.execute(Q)).scalar()
try:
    out["async"] = asyncio.run(main())
except Exception as exc:
    out["async"] = f"{type(exc).__name__}: {exc}"
print("PROBE " + json.dumps(out), flush=True)
"""


def _probe(tmp_path, contract, make_node, tls_postgres, host: str, bundle: Path) -> dict:
    node = make_node("api-server")
    params = {**VALID_PARAMS, "db/endpoint": host, "db/port": str(tls_postgres["port"])}
    out = render(contract, node, params, dict(VALID_SECRETS))
    write_files(node, out)
    ca = Path(out.environment["AIRFLOW_DB_CA_BUNDLE"])
    ca.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle, ca)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "PG")) and k != "PYTHONPATH"}
    env.update(out.environment)
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # (Airflow's exit-time engine disposal may log after it)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE "))


def test_sync_and_async_engines_connect_over_verified_tls(tmp_path, contract, make_node, tls_postgres):
    got = _probe(tmp_path, contract, make_node, tls_postgres, "localhost", tls_postgres["ca"])
    assert got == {"sync": True, "async": True}


def test_server_from_another_ca_is_refused(tmp_path, contract, make_node, tls_postgres):
    got = _probe(tmp_path, contract, make_node, tls_postgres, "localhost", tls_postgres["other_ca"])
    assert "certificate verify failed" in got["sync"], got
    assert "CERTIFICATE_VERIFY_FAILED" in got["async"] or "certificate verify failed" in got["async"], got


def test_host_name_not_in_the_certificate_is_refused(tmp_path, contract, make_node, tls_postgres):
    # 127.0.0.1 is the same server, but the certificate names only "localhost"
    got = _probe(tmp_path, contract, make_node, tls_postgres, "127.0.0.1", tls_postgres["ca"])
    assert 'does not match host name "127.0.0.1"' in got["sync"], got
    assert "IP address mismatch, certificate is not valid for '127.0.0.1'" in got["async"], got
