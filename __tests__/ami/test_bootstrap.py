"""The bootstrap beyond the pure renderer, on real tools: node.env checks, the CLI's
one-line failures, the systemd units (systemd-analyze verify), real Airflow reading the
rendered config through its _cmd options, the SSM/Secrets Manager source against a moto
server through the AWS CLI, and the Packer variables agreeing with the lock."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest
from airflow_node import BootstrapError
from airflow_node.bootstrap import write_files
from airflow_node.render import NOT_IN_AIRFLOW3, render
from airflow_node.settings import load_node, read_ssm
from airflow_node.units import UNITS, all_unit_files, render_systemd
from ami_support import (
    BOOTSTRAP_LIB,
    ROOT,
    VALID_PARAMS,
    VALID_SECRETS,
    free_port,
    packer_default,
    run_airflow_probe,
    run_bootstrap,
)
from kombu.utils.functional import fxrange

VENV_BIN = Path(sys.executable).parent


def _node_env(tmp_path: Path, **env: str) -> Path:
    path = tmp_path / "node.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return path


BASE_ENV = {
    "AIRFLOW_ROLE": "worker",
    "AIRFLOW_PARAMETER_PREFIX": "/airflow/dev",
    "AIRFLOW_SECRET_PREFIX": "airflow/dev",
    "AWS_REGION": "us-east-1",
    "AIRFLOW_SETTINGS_REVISION": "abc",
}


@pytest.mark.parametrize("key", BASE_ENV)
def test_node_env_missing_user_data_key(tmp_path, contract, key):
    env = {k: v for k, v in BASE_ENV.items() if k != key}
    with pytest.raises(BootstrapError, match=f"lacks {key} "):
        load_node(_node_env(tmp_path, **env), contract)


def test_user_data_keys_come_from_the_contract(contract):
    assert set(BASE_ENV) == set(contract.user_data_keys)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"AIRFLOW_ROLE": "webserver"},
            "AIRFLOW_ROLE='webserver' is not a role; allowed: api-server, scheduler, worker, standalone",
        ),
        ({"AWS_REGION": "useast1"}, "AWS_REGION='useast1' is not an AWS region name"),
        (
            {"AIRFLOW_PARAMETER_PREFIX": "airflow/dev"},
            "AIRFLOW_PARAMETER_PREFIX='airflow/dev' is invalid: must start with /",
        ),
        ({"AIRFLOW_ROLES": "worker"}, "unknown key(s) AIRFLOW_ROLES; allowed: AIRFLOW_ROLE,"),
        (
            {"AIRFLOW_SETTINGS_SOURCE": "vault"},
            "AIRFLOW_SETTINGS_SOURCE='vault' is invalid: allowed ssm or envfile",
        ),
        ({"AIRFLOW_TLS": "maybe"}, "AIRFLOW_TLS='maybe' is invalid: allowed true or false"),
        (
            {"AIRFLOW_SETTINGS_SOURCE": "envfile"},
            "AIRFLOW_SETTINGS_FILE is required with AIRFLOW_SETTINGS_SOURCE=envfile",
        ),
    ],
)
def test_node_env_invalid_values(tmp_path, contract, override, message):
    with pytest.raises(BootstrapError) as err:
        load_node(_node_env(tmp_path, **{**BASE_ENV, **override}), contract)
    assert message in str(err.value)


def test_cli_fails_with_one_message_naming_missing_settings(tmp_path):
    settings = tmp_path / "settings.env"
    settings.write_text("".join(f"{k}={v}\n" for k, v in VALID_PARAMS.items() if k != "db/endpoint"))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for k, v in VALID_SECRETS.items():
        if k != "jwt-secret":
            (secrets / k).write_text(v)
    node_env = _node_env(
        tmp_path,
        **{**BASE_ENV, "AIRFLOW_ROLE": "scheduler"},
        AIRFLOW_SETTINGS_SOURCE="envfile",
        AIRFLOW_SETTINGS_FILE=str(settings),
        AIRFLOW_SECRETS_DIR=str(secrets),
        AIRFLOW_NODE_ROOT=str(tmp_path / "root"),
    )
    done = run_bootstrap("--node-env", str(node_env))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "parameter db/endpoint (/airflow/dev/db/endpoint) is missing" in done.stderr
    assert "secret jwt-secret (airflow/dev/jwt-secret) is missing" in done.stderr
    assert re.search(r"FAILED after \d+\.\d+s", done.stderr)
    assert not (tmp_path / "root" / "etc").exists(), "nothing may be written before settings validate"


def test_cli_unknown_settings_key_and_missing_node_env(tmp_path):
    done = run_bootstrap("--node-env", str(tmp_path / "absent.env"))
    assert done.returncode == 1
    assert f"node env file {tmp_path / 'absent.env'} is unreadable" in done.stderr
    assert "Traceback" not in done.stderr


# --- systemd units -----------------------------------------------------------------


def test_worker_unit_warm_shutdown():
    text = render_systemd("airflow-celery-worker.service", worker_stop_timeout=1234)
    assert "KillSignal=SIGTERM" in text
    assert "KillMode=mixed" in text
    assert "TimeoutStopSec=1234" in text
    assert "ExecStart=/opt/airflow/venv/bin/airflow celery worker" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    # the baked units, with the node-only paths pointed at local equivalents
    aws = shutil.which("aws") or "/bin/true"
    for name, text in all_unit_files(3600, "drain").items():
        text = text.replace("/opt/airflow/venv", str(VENV_BIN.parent))
        text = text.replace("/opt/airflow/bin/airflow-bootstrap", str(BOOTSTRAP_LIB / "airflow-bootstrap"))
        drain = str(BOOTSTRAP_LIB / "airflow-worker-drain")
        text = text.replace("/opt/airflow/bin/airflow-worker-drain", drain)
        text = text.replace("/usr/bin/aws", aws)
        (tmp_path / name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    assert len(units) == len(UNITS) + 1
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in done.stderr.splitlines() if str(tmp_path) in ln or "airflow-" in ln]
    assert done.returncode == 0 and not problems, done.stderr


# --- real Airflow reads what the bootstrap wrote -----------------------------------


def test_airflow_reads_rendered_config_through_cmd_files(tmp_path, contract, make_node):
    node = make_node("scheduler")
    out = render(contract, node, dict(VALID_PARAMS), dict(VALID_SECRETS))
    write_files(node, out)
    secret_dir = tmp_path / "root/etc/airflow/secrets"
    assert {p.name for p in secret_dir.iterdir()} == set(out.secret_files)
    for p in secret_dir.iterdir():
        assert p.stat().st_mode & 0o777 == 0o640, p
    # TLS on: importing Airflow builds the async engine, whose connect args load the bundle
    _make_ca(Path(out.environment["AIRFLOW_DB_CA_BUNDLE"]), "Test RDS Root CA")
    probe = """
import json
from airflow.configuration import conf
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
print(json.dumps({
    "conn": conf.get("database", "sql_alchemy_conn"),
    "broker": conf.get("celery", "broker_url"),
    "backend": conf.get("celery", "result_backend"),
    "fernet": conf.get("core", "fernet_key"),
    "jwt": conf.get("api_auth", "jwt_secret", fallback=""),
    "fab_session": conf.get("fab", "session_backend"),
    "exec_audience": conf.get("execution_api", "jwt_audience"),
    "secret_key": conf.get("api", "secret_key"),
    "executor": conf.get("core", "executor"),
    "exec_url": conf.get("core", "execution_api_server_url"),
    "backend_kwargs": conf.get("secrets", "backend_kwargs"),
    "row_locking": conf.getboolean("scheduler", "use_row_level_locking"),
    "concurrency": conf.getint("celery", "worker_concurrency"),
    "operation_timeout": conf.getfloat("celery", "operation_timeout"),
    "publish_max_retries": conf.getint("celery", "task_publish_max_retries"),
    "publish_retry_policy": DEFAULT_CELERY_CONFIG["task_publish_retry_policy"],
}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(out.environment)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["conn"] == out.secret_files["sql_alchemy_conn"]
    assert got["broker"] == out.secret_files["broker_url"]
    assert got["backend"] == out.secret_files["result_backend"]
    assert got["fernet"] == VALID_SECRETS["fernet-key"]
    assert got["jwt"] == VALID_SECRETS["jwt-secret"]
    assert got["fab_session"] == "database"
    assert got["exec_audience"] == "urn:airflow:dev:execution"
    assert got["secret_key"] == VALID_SECRETS["api-secret-key"]
    assert got["executor"] == "CeleryExecutor"
    assert got["exec_url"] == VALID_PARAMS["api/execution-api-url"]
    assert json.loads(got["backend_kwargs"])["variables_prefix"] == "/airflow/dev/variables"
    assert got["row_locking"] is True and got["concurrency"] == 9
    # AND the executor's Celery app retries a publish for longer than the operation timeout, so a
    # publish to a failing-over broker ends as a timeout (queued again), never as FAILED
    policy = got["publish_retry_policy"]
    sleeps = islice(
        (
            min(v, policy["interval_max"])
            for v in fxrange(
                policy["interval_start"],
                policy["interval_max"] + policy["interval_start"],
                policy["interval_step"],
                repeatlast=True,
            )
        ),
        policy["max_retries"],
    )
    assert sum(sleeps) > got["operation_timeout"], (policy, got["operation_timeout"])
    assert got["publish_max_retries"] >= 10


_EMAIL_PROBE = """
import inspect, json
from airflow.configuration import conf
from airflow.sdk.configuration import conf as task_conf
backend = conf.getimport("email", "email_backend")
print(json.dumps({
    "backend": f"{backend.__module__}.{backend.__name__}",
    "backend_params": sorted(inspect.signature(backend).parameters),
    "task_backend": task_conf.get("email", "email_backend"),
    "conn_id": conf.get("email", "email_conn_id"),
    "from_email": task_conf.get("email", "from_email"),
    "smtp_host": conf.get("smtp", "smtp_host"),
}))
"""


@pytest.mark.parametrize(
    ("backend", "want"),
    [
        (
            "ses",
            {
                "backend": "airflow.providers.amazon.aws.utils.emailer.send_email",
                "conn_id": "aws_default",
                "smtp_host": "localhost",  # Airflow's default: no [smtp] section is written
            },
        ),
        (
            "smtp",
            {
                "backend": "airflow.utils.email.send_email_smtp",
                "conn_id": "smtp_default",
                "smtp_host": "email-smtp.us-east-1.amazonaws.com",
            },
        ),
    ],
)
def test_airflow_loads_the_rendered_email_backend(tmp_path, contract, make_node, backend, want):
    # Airflow imports the backend the renderer names, hands it email_conn_id as conn_id, and a
    # task's conf (airflow.sdk, what DAG_1 reads) sees the same [email] settings.
    node = make_node("worker", AIRFLOW_TLS="false")
    out = render(contract, node, {**VALID_PARAMS, "email/backend": backend}, dict(VALID_SECRETS))
    write_files(node, out)
    got = run_airflow_probe(_EMAIL_PROBE, out.environment, tmp_path)
    assert "conn_id" in got.pop("backend_params")
    assert got == {
        **want,
        "task_backend": want["backend"],
        "from_email": VALID_PARAMS["smtp/from-email"],
    }


def test_every_rendered_option_is_known_to_airflow(tmp_path, contract, make_node):
    overlay = (ROOT / "__tests__/ami/rehearsal.sh").read_text()
    rendered: set[tuple[str, str]] = set()
    for role, backend in itertools.product(("scheduler", "api-server", "worker"), ("ses", "smtp")):
        params = {**VALID_PARAMS, "email/backend": backend}
        out = render(contract, make_node(role), params, dict(VALID_SECRETS))
        rendered |= {(sec, opt.removesuffix("_cmd")) for sec, opts in out.config.items() for opt in opts}
    # plus the options the rehearsal's overlay sets
    ini = overlay.split('cat >"$WORK/overlay.ini" <<EOF', 1)[1].split("\nEOF", 1)[0]
    section = None
    for line in ini.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            rendered.add((section, line.split("=")[0].strip()))
    probe = (
        "import json\nfrom airflow.configuration import conf\nconf.load_providers_configuration()\n"
        "d = conf.configuration_description\n"
        "print(json.dumps([[s, o] for s, v in d.items() for o in v.get('options', {})]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    known = {tuple(x) for x in json.loads(done.stdout.strip().splitlines()[-1])}
    assert sorted(rendered - known) == [], "options Airflow 3.3 (with its providers) does not know"
    # and a contract mapping Airflow does not know must be declared as such
    unknown_mappings = {
        k for k, opt in contract.airflow_options.items() if tuple(opt.split(".")) not in known
    }
    assert unknown_mappings == set(NOT_IN_AIRFLOW3)


# --- the ssm source, through the AWS CLI, against a moto server --------------------


def test_ssm_source_reads_contract_keys_through_the_aws_cli(moto_url, monkeypatch, contract, make_node):
    import boto3

    for k, v in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": moto_url,
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=moto_url)
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_url)
    for key, value in VALID_PARAMS.items():  # 24 parameters: several pages of 10
        ssm.put_parameter(Name=f"/airflow/dev/{key}", Value=value, Type="String")
    ssm.put_parameter(Name="/airflow/dev/variables/data_bucket", Value="b", Type="String")
    ssm.put_parameter(Name="/airflow/other/executor", Value="LocalExecutor", Type="String")
    for key, value in VALID_SECRETS.items():
        if key != "redis-auth-token":
            sm.create_secret(Name=f"airflow/dev/{key}", SecretString=value)

    params, secrets = read_ssm(make_node("worker"), contract)
    assert params == VALID_PARAMS  # variables/ and other prefixes ignored
    # only the worker's own secrets are fetched, though the others are there to read
    assert secrets == {"api-secret-key": VALID_SECRETS["api-secret-key"]}
    _, secrets = read_ssm(make_node("scheduler"), contract)
    assert set(secrets) == set(contract.role_secrets["scheduler"]) - {"redis-auth-token"}
    # the missing secret surfaces from the renderer, by name
    with pytest.raises(
        BootstrapError, match=r"secret redis-auth-token \(airflow/dev/redis-auth-token\) is missing"
    ):
        render(contract, make_node("worker"), params, secrets)


# --- Packer variables agree with the lock ------------------------------------------


def test_packer_airflow_version_default_matches_the_lock():
    default = packer_default("airflow_version")
    pin = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.lock").read_text(), re.M).group(1)
    assert default == pin, "packer/variables.pkr.hcl airflow_version must match requirements.lock"


# --- database failures are reported in one line, without the password ---------------


def _envfile_node(tmp_path: Path, role: str, **params: str) -> Path:
    settings = tmp_path / "settings.env"
    settings.write_text("".join(f"{k}={v}\n" for k, v in {**VALID_PARAMS, **params}.items()))
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for k, v in VALID_SECRETS.items():
        (secrets / k).write_text(v)
    return _node_env(
        tmp_path,
        **{**BASE_ENV, "AIRFLOW_ROLE": role},
        AIRFLOW_SETTINGS_SOURCE="envfile",
        AIRFLOW_SETTINGS_FILE=str(settings),
        AIRFLOW_SECRETS_DIR=str(secrets),
        AIRFLOW_NODE_ROOT=str(tmp_path / "root"),
        AIRFLOW_VENV=str(VENV_BIN.parent),
        AIRFLOW_TLS="false",
        AIRFLOW_EFS_MOUNT="false",
        AIRFLOW_SERVICE_MANAGER="local",
        AIRFLOW_MIGRATION_WAIT="1",
    )


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("scheduler", "cannot reach the metadata database for the migration lock: OperationalError"),
        ("api-server", "database not migrated within 1s (is a scheduler node up?)"),
    ],
)
def test_unreachable_database_fails_in_one_line(tmp_path, role, message):
    node_env = _envfile_node(tmp_path, role, **{"db/endpoint": "127.0.0.1", "db/port": str(free_port())})
    done = run_bootstrap("--node-env", str(node_env))
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert VALID_SECRETS["db-password"] not in done.stderr
    assert not list((tmp_path / "root" / "run").glob("airflow/*.pid")), "no unit may start"


def test_worker_waits_for_the_execution_api_not_the_database(tmp_path):
    # GIVEN a worker whose Execution API does not answer (and a database that does not either)
    url = f"http://127.0.0.1:{free_port()}/execution/"
    node_env = _envfile_node(
        tmp_path, "worker", **{"api/execution-api-url": url, "db/endpoint": "127.0.0.1", "db/port": "1"}
    )
    done = run_bootstrap("--node-env", str(node_env))
    # THEN it fails on the Execution API's health, in one line, and starts nothing
    assert done.returncode == 1
    assert f"Execution API {url}health not healthy within 1s (is an api-server up?)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "root" / "run").glob("airflow/*.pid")), "no unit may start"
    # AND its secret directory holds the worker's files only
    assert {p.name for p in (tmp_path / "root/etc/airflow/secrets").iterdir()} == {
        "broker_url",
        "result_backend",
        "api_secret_key",
    }


def test_worker_airflow_config_has_no_database_fernet_or_jwt(tmp_path, contract, make_node):
    # GIVEN a worker rendered from every secret there is (as if its IAM role let it read them)
    node = make_node("worker")
    out = render(contract, node, dict(VALID_PARAMS), dict(VALID_SECRETS))
    write_files(node, out)
    probe = """
import json
from airflow.configuration import conf
from airflow.api_fastapi.auth.tokens import get_signing_args
try:
    get_signing_args(make_secret_key_if_needed=False)
    signing = "can sign"
except Exception as exc:
    signing = f"{type(exc).__name__}: {exc}"
print(json.dumps({
    "conn": conf.get("database", "sql_alchemy_conn"),
    "backend": conf.get("celery", "result_backend"),
    "fernet": conf.get("core", "fernet_key"),
    "signing": signing,
}))
"""
    got = run_airflow_probe(probe, out.environment, tmp_path)
    # THEN Airflow on it sees no database, no fernet key, nothing to sign a token with
    assert got["conn"] == "sqlite://"
    assert got["backend"] == out.secret_files["result_backend"] and "+rediss://" in got["backend"]
    assert got["fernet"] == ""
    assert "api_auth/jwt_secret must be set" in got["signing"], got


def test_every_packer_variable_is_typed_described_and_validated():
    hcl = (ROOT / "packer" / "variables.pkr.hcl").read_text()
    blocks = re.findall(r'^variable "([^"]+)" \{(.*?)^\}', hcl, re.S | re.M)
    assert len(blocks) >= 10
    for name, body in blocks:
        assert re.search(r"^\s+type\s*=", body, re.M), f"variable {name} has no type"
        assert re.search(r'^\s+description\s*=\s*"\S', body, re.M), f"variable {name} has no description"
        assert "validation {" in body, f"variable {name} has no validation"
    used = set(re.findall(r"var\.(\w+)", (ROOT / "packer" / "airflow-golden.pkr.hcl").read_text()))
    assert used == {name for name, _ in blocks}, (
        "every variable is used by the template, and only declared ones"
    )


# --- database TLS: Airflow imports the async connect args from the rendered config ----


def _make_ca(path: Path, cn: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.with_suffix(".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
         "-out", str(path), "-subj", f"/O=Test/CN={cn}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


_CONNECT_ARGS_PROBE = """
import json, ssl
from airflow.configuration import conf
from airflow.settings import _get_connect_args
args = _get_connect_args("async")
ctx = args["ssl"]
print(json.dumps({
    "path": conf.get("database", "sql_alchemy_connect_args_async"),
    "keys": sorted(args),
    "is_context": isinstance(ctx, ssl.SSLContext),
    "verify": ctx.verify_mode == ssl.CERT_REQUIRED,
    "hostname": ctx.check_hostname,
    "min_tls": ctx.minimum_version.name,
    "cas": [dict(x[0] for x in c["subject"])["commonName"] for c in ctx.get_ca_certs()],
    "sync_args": _get_connect_args("sync"),
}))
"""


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_airflow_imports_async_tls_connect_args_from_rendered_config(tmp_path, contract, make_node, engine):
    node = make_node("api-server")
    params = {**VALID_PARAMS, "db/engine": engine}
    out = render(contract, node, params, dict(VALID_SECRETS))
    write_files(node, out)
    _make_ca(Path(out.environment["AIRFLOW_DB_CA_BUNDLE"]), "Test RDS Root CA")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "PYTHONPATH"}
    env.update(out.environment)  # PYTHONPATH from airflow.env makes airflow_node importable
    done = subprocess.run(
        [sys.executable, "-c", _CONNECT_ARGS_PROBE], capture_output=True, text=True, env=env, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {
        "path": "airflow_node.db_tls.ASYNC_CONNECT_ARGS",
        "keys": ["ssl"],
        "is_context": True,
        "verify": True,
        "hostname": True,
        "min_tls": "TLSv1_2",
        "cas": ["Test RDS Root CA"],  # only the bundle, not the system store
        "sync_args": {},
    }


def test_missing_ca_bundle_fails_naming_the_path(tmp_path, contract, make_node):
    node = make_node("scheduler")
    out = render(contract, node, dict(VALID_PARAMS), dict(VALID_SECRETS))
    write_files(node, out)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "PYTHONPATH"}
    env.update(out.environment)
    done = subprocess.run(
        [sys.executable, "-c", _CONNECT_ARGS_PROBE], capture_output=True, text=True, env=env, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"database CA bundle {out.environment['AIRFLOW_DB_CA_BUNDLE']} does not exist" in done.stderr


def test_mysql_sync_url_becomes_verify_identity_connect_args(contract, make_node):
    """SQLAlchemy's mysqldb dialect turns the rendered URL into mysqlclient's ssl_mode +
    ssl={"ca": bundle}; the installed client library accepts VERIFY_IDENTITY (an unknown
    mode fails before connecting, with NotSupportedError)."""
    import MySQLdb
    import sqlalchemy as sa

    node = make_node("scheduler")
    params = {**VALID_PARAMS, "db/engine": "mysql", "db/endpoint": "127.0.0.1", "db/port": str(free_port())}
    out = render(contract, node, params, dict(VALID_SECRETS))
    url = sa.engine.make_url(out.secret_files["sql_alchemy_conn"])
    _, kwargs = sa.create_engine(url).dialect.create_connect_args(url)
    assert kwargs["ssl_mode"] == "VERIFY_IDENTITY"
    assert kwargs["ssl"] == {"ca": out.environment["AIRFLOW_DB_CA_BUNDLE"]}
    with pytest.raises(MySQLdb.OperationalError, match="Can't connect"):
        MySQLdb.connect(**{**kwargs, "connect_timeout": 5})
