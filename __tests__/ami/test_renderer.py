"""Unit tests of the bootstrap's renderer against the settings contract file: every
setting lands in its airflow.cfg section, secrets only in root-only files, and each
missing or invalid setting fails with its name."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, unquote

import pytest
from airflow_node import BootstrapError
from airflow_node import contract as contract_mod
from airflow_node.db_tls import RDS_CA_BUNDLE
from airflow_node.render import NOT_IN_AIRFLOW3, render, to_ini
from airflow_node.units import UNITS
from ami_support import BOOTSTRAP_LIB, CONTRACT_FILE, FERNET, VALID_PARAMS, VALID_SECRETS

ROLE_SECRETS = contract_mod.load(CONTRACT_FILE).role_secrets
OTHER_FERNET = base64.urlsafe_b64encode(b"n" * 32).decode()

ASYNC_ARGS = "airflow_node.db_tls.ASYNC_CONNECT_ARGS"


def _render(contract, node, params=None, secrets=None):
    return render(contract, node, dict(params or VALID_PARAMS), dict(secrets or VALID_SECRETS))


def test_fixture_covers_exactly_the_contract(contract):
    # a key added to or renamed in the contract must show up here (and in the renderer)
    assert set(VALID_PARAMS) == set(contract.parameters)
    assert set(VALID_SECRETS) == set(contract.secrets)


def test_contract_airflow_mappings_land_in_their_section(contract, make_node):
    out = _render(contract, make_node("scheduler"))
    assert contract.airflow_options, "contract lists no 1:1 airflow options"
    normalized = {"true": "True", "false": "False"}
    for key, option in contract.airflow_options.items():
        section, name = option.split(".")
        if key in NOT_IN_AIRFLOW3:
            assert name not in out.config.get(section, {}), f"{key}: Airflow 3 has no [{section}] {name}"
            continue
        assert section in out.config, f"{key}: section [{section}] not rendered"
        assert name in out.config[section], f"{key}: [{section}] {name} not rendered"
        want = normalized.get(VALID_PARAMS[key], VALID_PARAMS[key])
        assert out.config[section][name] == want, f"{key} -> [{section}] {name}"


def test_every_contract_parameter_is_consumed(contract, make_node):
    out = _render(contract, make_node("scheduler"))
    rendered = json.dumps([out.config, out.environment, out.fstab, out.secret_files])
    for key in contract.parameters:
        value = VALID_PARAMS[key]
        assert value in rendered or value.capitalize() in rendered, f"parameter {key} is not used"


def test_airflow3_option_names_and_fixed_settings(contract, make_node, tmp_path):
    out = _render(contract, make_node("scheduler"))
    cfg = out.config
    assert cfg["core"]["auth_manager"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert cfg["core"]["dags_folder"] == str(tmp_path / "root/mnt/efs/dags")
    assert cfg["database"]["sql_alchemy_conn_cmd"].startswith("cat ")
    assert "sql_alchemy_conn" not in cfg["core"]  # the Airflow 2 location
    assert cfg["logging"] == {
        "base_log_folder": str(tmp_path / "root/var/log/airflow"),
        "remote_logging": "True",
        "remote_base_log_folder": "s3://airflow-logs-123/task-logs",
        "remote_log_conn_id": "aws_default",
        "worker_log_server_port": "8793",
        "trigger_log_server_port": "8794",
    }
    assert cfg["scheduler"]["enable_health_check"] == "True"
    assert cfg["scheduler"]["scheduler_health_check_server_port"] == "8974"
    assert cfg["api"]["port"] == "8080" and cfg["api"]["base_url"] == "https://airflow.example.com"
    assert cfg["api_auth"] == {
        "jwt_issuer": "urn:airflow:dev",
        "jwt_audience": "urn:airflow:dev:api",
        "jwt_secret_cmd": f"cat {tmp_path}/root/etc/airflow/secrets/jwt_secret",
    }
    assert cfg["execution_api"] == {"jwt_audience": "urn:airflow:dev:execution"}
    assert cfg["fab"] == {"session_backend": "database"}
    assert cfg["secrets"]["backend"].endswith("SystemsManagerParameterStoreBackend")
    kwargs = json.loads(cfg["secrets"]["backend_kwargs"])
    assert kwargs["variables_prefix"] == "/airflow/dev/variables"
    assert kwargs["connections_prefix"] == "/airflow/dev/connections"
    assert cfg["email"]["from_email"] == "noreply@example.com"
    assert cfg["smtp"]["smtp_host"] == "email-smtp.us-east-1.amazonaws.com"
    assert cfg["celery"]["flower_port"] == "5555"
    options = "_netdev,noresvport,tls,iam,accesspoint=fsap-0fedcba9876543210"
    assert out.fstab == f"fs-0123456789abcdef0:/ /mnt/efs efs {options} 0 0"
    assert out.environment["AIRFLOW_DAGS_URI"] == "s3://airflow-artifacts-123/dags"


def test_connection_strings_quote_credentials_and_use_tls(contract, make_node):
    out = _render(contract, make_node("scheduler"))
    sync = out.secret_files["sql_alchemy_conn"]
    assert sync.startswith("postgresql+psycopg2://airflow_admin:")
    ca = make_node("scheduler").path(RDS_CA_BUNDLE)
    assert sync.endswith(
        f"@airflow-db.abc123.us-east-1.rds.amazonaws.com:5432/airflow?sslmode=verify-full&sslrootcert={ca}"
    )
    password = re.match(r"postgresql\+psycopg2://[^:]+:([^@]+)@", sync).group(1)
    assert unquote(password) == VALID_SECRETS["db-password"]
    # asyncpg takes no CA file in the URL: TLS comes from the connect args (an SSLContext)
    assert out.secret_files["sql_alchemy_conn_async"].endswith(":5432/airflow")
    assert out.secret_files["sql_alchemy_conn_async"].startswith("postgresql+asyncpg://")
    assert out.config["database"]["sql_alchemy_connect_args_async"] == ASYNC_ARGS
    assert out.environment["AIRFLOW_DB_CA_BUNDLE"] == str(ca)
    assert out.environment["PYTHONPATH"] == str(BOOTSTRAP_LIB)
    broker = out.secret_files["broker_url"]
    assert broker.startswith("rediss://:")
    assert broker.endswith(
        "@master.airflow-redis.abc123.use1.cache.amazonaws.com:6379/0?ssl_cert_reqs=required"
    )
    assert unquote(broker[len("rediss://:") : broker.index("@")]) == VALID_SECRETS["redis-auth-token"]
    # results in Redis database 1, same token and TLS: never db+<the metadata DB>
    backend = "airflow_node.celery_results:RetryingRedisBackend+"
    assert out.secret_files["result_backend"] == backend + broker.replace(":6379/0?", ":6379/1?")


def test_mysql_engine(contract, make_node):
    out = _render(contract, make_node("scheduler"), {**VALID_PARAMS, "db/engine": "mysql", "db/port": "3306"})
    assert out.secret_files["sql_alchemy_conn"].startswith("mysql+mysqldb://airflow_admin:")
    ca = make_node("scheduler").path(RDS_CA_BUNDLE)
    assert out.secret_files["sql_alchemy_conn"].endswith(
        f":3306/airflow?charset=utf8mb4&ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}"
    )
    assert out.secret_files["sql_alchemy_conn_async"].endswith(":3306/airflow?charset=utf8mb4")
    assert out.config["database"]["sql_alchemy_connect_args_async"] == ASYNC_ARGS


def test_local_tls_off_uses_plain_schemes(contract, make_node):
    out = _render(contract, make_node("scheduler", AIRFLOW_TLS="false"))
    assert out.secret_files["broker_url"].startswith("redis://:")
    assert out.secret_files["result_backend"].startswith(
        "airflow_node.celery_results:RetryingRedisBackend+redis://:"
    )
    assert "?" not in out.secret_files["sql_alchemy_conn"]
    assert "sql_alchemy_connect_args_async" not in out.config["database"]
    assert "AIRFLOW_DB_CA_BUNDLE" not in out.environment
    # still on the path: the Celery result backend lives in the bootstrap package
    assert out.environment["PYTHONPATH"] == str(BOOTSTRAP_LIB)


def test_no_secret_value_in_config_or_environment(contract, make_node):
    out = _render(contract, make_node("api-server"))
    text = to_ini(out.config) + json.dumps(out.environment) + out.fstab
    for key, value in VALID_SECRETS.items():
        assert value not in text, f"secret {key} leaked into airflow.cfg/env"
    for section, options in out.config.items():
        for name, value in options.items():
            if name.endswith("_cmd"):
                assert re.fullmatch(r"cat /\S+/etc/airflow/secrets/\w+", value), f"[{section}] {name}"


@pytest.mark.parametrize("key", sorted(VALID_PARAMS))
def test_each_missing_parameter_fails_with_its_name(contract, make_node, key):
    params = {k: v for k, v in VALID_PARAMS.items() if k != key}
    with pytest.raises(BootstrapError) as err:
        _render(contract, make_node("scheduler"), params)
    assert f"parameter {key} (/airflow/dev/{key}) is missing or unset" in str(err.value)


def test_unset_marker_counts_as_missing(contract, make_node):
    # modules/settings.ts stores "none" where a setting does not apply
    with pytest.raises(
        BootstrapError, match=r"parameter broker/endpoint \(/airflow/dev/broker/endpoint\) is missing"
    ):
        _render(contract, make_node("worker"), {**VALID_PARAMS, "broker/endpoint": "none"})


@pytest.mark.parametrize(
    ("role", "key"),
    [(role, key) for role in ("api-server", "scheduler", "worker") for key in ROLE_SECRETS[role]],
)
def test_each_missing_secret_of_the_role_fails_with_its_name(contract, make_node, role, key):
    secrets = {k: v for k, v in VALID_SECRETS.items() if k != key}
    with pytest.raises(BootstrapError) as err:
        _render(contract, make_node(role), secrets=secrets)
    assert f"secret {key} (airflow/dev/{key}) is missing" in str(err.value)


@pytest.mark.parametrize("role", ["api-server", "scheduler", "worker"])
def test_a_role_needs_and_writes_only_its_own_secrets(contract, make_node, role):
    # GIVEN only the role's secrets (what its instance role may read)
    own = {k: v for k, v in VALID_SECRETS.items() if k in ROLE_SECRETS[role]}
    out = _render(contract, make_node(role), secrets=own)
    # THEN no other secret's value is in any file, option or variable it renders
    rendered = json.dumps([out.config, out.secret_files, out.environment, out.admin_password])
    for key, value in VALID_SECRETS.items():
        if key not in own:
            assert quote(value, safe="") not in rendered and value not in rendered, f"{role} holds {key}"
    for section, options in out.config.items():
        for name, value in options.items():
            if name.endswith("_cmd"):
                assert value.rsplit("/", 1)[1] in out.secret_files, f"[{section}] {name} reads a missing file"


def test_worker_holds_no_database_fernet_jwt_or_admin_secret(contract, make_node):
    out = _render(contract, make_node("worker"))
    assert set(out.secret_files) == {"broker_url", "result_backend", "api_secret_key"}
    assert out.config["database"] == {"sql_alchemy_conn": "sqlite://"}
    assert "fernet_key_cmd" not in out.config["core"]
    assert "jwt_secret_cmd" not in out.config["api_auth"]
    assert "flower_basic_auth_cmd" not in out.config["celery"]
    assert out.admin_password == "" and not out.migrate
    # the audiences and issuer are still the cluster's, like every node's
    assert out.config["execution_api"] == {"jwt_audience": "urn:airflow:dev:execution"}
    # and it needs no database setting at all
    params = {k: v for k, v in VALID_PARAMS.items() if not k.startswith("db/")}
    assert _render(contract, make_node("worker"), params).config["database"] == {
        "sql_alchemy_conn": "sqlite://"
    }


def test_flower_gets_its_own_password(contract, make_node):
    out = _render(contract, make_node("api-server"))
    assert out.secret_files["flower_basic_auth"] == "admin:" + VALID_SECRETS["flower-password"]
    assert "admin-password" not in ROLE_SECRETS["api-server"] and out.admin_password == ""
    assert "flower_basic_auth" not in _render(contract, make_node("scheduler")).secret_files


def test_jwt_claims_differ_per_environment(contract, make_node):
    dev = _render(contract, make_node("scheduler")).config
    prod = _render(contract, make_node("scheduler", AIRFLOW_PARAMETER_PREFIX="/airflow/prod")).config
    assert dev["api_auth"]["jwt_issuer"] != prod["api_auth"]["jwt_issuer"]
    assert dev["api_auth"]["jwt_audience"] != prod["api_auth"]["jwt_audience"]
    assert dev["execution_api"]["jwt_audience"] != prod["execution_api"]["jwt_audience"]
    # a UI token is not an Execution API token
    assert dev["api_auth"]["jwt_audience"] != dev["execution_api"]["jwt_audience"]


def test_multi_key_fernet_secret_is_accepted_and_rotated_by_migrating_roles(contract, make_node):
    two = {**VALID_SECRETS, "fernet-key": f"{OTHER_FERNET},{FERNET}"}
    out = _render(contract, make_node("scheduler"), secrets=two)
    assert out.secret_files["fernet_key"] == f"{OTHER_FERNET},{FERNET}" and out.rotate_fernet
    assert not _render(contract, make_node("api-server"), secrets=two).rotate_fernet
    assert not _render(contract, make_node("scheduler")).rotate_fernet
    with pytest.raises(BootstrapError, match="secret fernet-key .* is invalid"):
        _render(contract, make_node("scheduler"), secrets={**VALID_SECRETS, "fernet-key": f"{FERNET},short"})


INVALID = [
    ("executor", "KubernetesExecutor", "CeleryExecutor or LocalExecutor"),
    ("db/engine", "sqlite", "mysql or postgres"),
    ("db/endpoint", "db host", "a host name"),
    ("db/port", "54x", "a port number 1-65535"),
    ("db/port", "70000", "a port number 1-65535"),
    ("db/name", "air;flow", "a database name"),
    ("broker/port", "0", "a port number 1-65535"),
    ("efs/file-system-id", "fsx-123", "fs-<hex>"),
    ("efs/access-point-id", "fs-0123456789abcdef0", "fsap-<hex>"),
    ("logs/remote-base-log-folder", "/var/log/airflow", "an s3://bucket/prefix URI"),
    ("artifacts/dags-uri", "https://bucket/dags", "an s3://bucket/prefix URI"),
    ("api/base-url", "airflow.example.com", "an http(s):// URL"),
    ("api/execution-api-url", "http://internal:8080/api/v2/", "ending in /execution/"),
    ("smtp/from-email", "not-an-email", "an email"),
    ("email/backend", "sendgrid", "ses or smtp"),
    ("scheduler/use-row-level-locking", "yes", "True or False"),
    ("scheduler/pool-metrics-interval", "-5", "a positive integer"),
    ("core/parallelism", "0", "a positive integer"),
    ("celery/worker-concurrency", "many", "a positive integer"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), INVALID)
def test_each_invalid_parameter_fails_with_name_value_and_allowed(contract, make_node, key, value, allowed):
    with pytest.raises(BootstrapError) as err:
        _render(contract, make_node("scheduler"), {**VALID_PARAMS, key: value})
    assert f"parameter {key} = {value!r} is invalid; expected" in str(err.value)
    assert allowed in str(err.value)


def test_all_problems_reported_at_once(contract, make_node):
    params = {**VALID_PARAMS, "db/port": "x", "core/parallelism": "0"}
    del params["smtp/host"]
    with pytest.raises(BootstrapError) as err:
        _render(contract, make_node("scheduler"), params, {**VALID_SECRETS, "jwt-secret": ""})
    msg = str(err.value)
    assert "4 problem(s)" in msg
    for name in ("db/port", "core/parallelism", "smtp/host", "jwt-secret"):
        assert name in msg


SES_EMAILER = "airflow.providers.amazon.aws.utils.emailer.send_email"


def test_ses_email_backend_uses_the_aws_connection_and_no_smtp(contract, make_node):
    out = _render(contract, make_node("worker"), {**VALID_PARAMS, "email/backend": "ses"})
    assert out.config["email"] == {
        "email_backend": SES_EMAILER,
        "from_email": "noreply@example.com",
        "email_conn_id": "aws_default",  # the instance role; Airflow's default is smtp_default
    }
    assert "smtp" not in out.config
    assert "smtp" not in to_ini(out.config)


def test_smtp_email_backend_uses_the_smtp_settings(contract, make_node):
    out = _render(contract, make_node("worker"), {**VALID_PARAMS, "email/backend": "smtp"})
    assert out.config["email"] == {
        "email_backend": "airflow.utils.email.send_email_smtp",
        "from_email": "noreply@example.com",
    }
    assert out.config["smtp"] == {
        "smtp_host": "email-smtp.us-east-1.amazonaws.com",
        "smtp_port": "587",
        "smtp_starttls": "True",
        "smtp_ssl": "False",
        "smtp_mail_from": "noreply@example.com",
    }


def test_smtp_host_is_required_only_by_the_smtp_backend(contract, make_node):
    params = {**VALID_PARAMS, "smtp/host": "none"}
    out = _render(contract, make_node("worker"), {**params, "email/backend": "ses"})
    assert out.config["email"]["email_backend"] == SES_EMAILER
    with pytest.raises(BootstrapError, match=r"parameter smtp/host \(/airflow/dev/smtp/host\) is missing"):
        _render(contract, make_node("worker"), {**params, "email/backend": "smtp"})


@pytest.mark.parametrize("value", ["SES", "sendgrid", "ses,smtp"])
def test_bad_email_backend_is_one_problem_in_one_line(contract, make_node, value):
    with pytest.raises(BootstrapError) as err:
        _render(contract, make_node("worker"), {**VALID_PARAMS, "email/backend": value})
    assert str(err.value) == (
        "cannot configure role worker: 1 problem(s)\n"
        f"  - parameter email/backend = {value!r} is invalid; expected ses or smtp"
    )


def test_invalid_fernet_key_is_named_without_echoing_it(contract, make_node):
    with pytest.raises(BootstrapError) as err:
        _render(contract, make_node("scheduler"), secrets={**VALID_SECRETS, "fernet-key": "short-secret"})
    assert "secret fernet-key (airflow/dev/fernet-key) is invalid" in str(err.value)
    assert "short-secret" not in str(err.value)


def test_local_executor_needs_no_broker_and_runs_standalone(contract, make_node):
    params = {**VALID_PARAMS, "executor": "LocalExecutor", "broker/endpoint": "none", "broker/port": "none"}
    secrets = {k: v for k, v in VALID_SECRETS.items() if k != "redis-auth-token"}
    out = _render(contract, make_node("standalone"), params, secrets)
    assert "celery" not in out.config and "broker_url" not in out.secret_files
    assert out.migrate and out.units == tuple(contract.roles["standalone"])
    with pytest.raises(BootstrapError, match="role worker needs executor CeleryExecutor"):
        _render(contract, make_node("worker"), params, secrets)
    with pytest.raises(BootstrapError, match="role standalone needs executor LocalExecutor"):
        _render(contract, make_node("standalone"))


@pytest.mark.parametrize("role", ["api-server", "scheduler", "worker"])
def test_role_units_and_migration_duty(contract, make_node, role):
    out = _render(contract, make_node(role))
    assert out.units == tuple(contract.roles[role])
    assert out.migrate == (role == "scheduler")


def test_every_contract_unit_has_a_command(contract):
    for role, units in contract.roles.items():
        for unit in units:
            assert unit in UNITS, f"role {role}: unit {unit} has no command mapping"


def test_overlay_merges_over_rendered_config(contract, make_node, tmp_path):
    overlay = tmp_path / "overlay.ini"
    overlay.write_text("[api]\nport = 58080\n[logging]\nremote_logging = False\n")
    out = _render(contract, make_node("api-server", AIRFLOW_CONFIG_OVERLAY=str(overlay)))
    assert out.config["api"]["port"] == "58080"
    assert out.config["logging"]["remote_logging"] == "False"
    assert out.config["api"]["base_url"] == "https://airflow.example.com"
