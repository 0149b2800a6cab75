"""The renderer: contract settings + secrets -> airflow.cfg, root-only secret files, unit env.

Pure: no I/O besides reading the optional overlay, so every rule is unit-tested. Airflow 3
option names throughout. Secret values never enter airflow.cfg: each sensitive option is
written as ``<option>_cmd = cat <secret file>`` (Airflow runs ``_cmd`` only for options it
declares sensitive; every one used here is in ``conf.sensitive_config_values`` of 3.3), and
the files are root:airflow 0640.

A node renders only what its role needs, from only its role's secrets (contract
roleSecrets). A worker runs DAG authors' code, so it gets no database credentials
(``sql_alchemy_conn = sqlite://``: an in-memory engine Airflow builds but a Celery worker
never queries; tasks reach the metadata DB through the Execution API), no fernet key and
no JWT secret: the token a task needs arrives inside its Celery message, signed by the
scheduler.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from . import BootstrapError
from .contract import Contract
from .db_tls import ASYNC_CONNECT_ARGS_PATH, CA_BUNDLE_ENV, RDS_CA_BUNDLE
from .settings import Node

ETC = "/etc/airflow"
HOME = "/var/lib/airflow"
LOGS = "/var/log/airflow"
EFS = "/mnt/efs"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SSM_BACKEND = "airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend"
# [email] email_backend per `email/backend` setting. The SES one is the Amazon provider's
# emailer: SES API calls through the [email] email_conn_id AWS connection (aws_default: the
# instance role), so no IAM user key exists; the SMTP one is Airflow's default.
EMAIL_BACKENDS = {
    "ses": "airflow.providers.amazon.aws.utils.emailer.send_email",
    "smtp": "airflow.utils.email.send_email_smtp",
}
SES_CONN_ID = "aws_default"
# the directory holding this package: /opt/airflow/bootstrap on a node, the checkout locally
BOOTSTRAP_LIB = Path(__file__).resolve().parent.parent
UNSET = "none"  # modules/settings.ts UNSET
# Contract keys whose airflow.cfg option Airflow 3 removed: validated (the infra sets them)
# but not written, so airflow.cfg holds only options Airflow 3.3 knows (a test checks that
# against Airflow's own option list).
NOT_IN_AIRFLOW3 = {
    "core/allow-trigger-in-future": "removed in Airflow 3; a future-dated run waits for its run_after",
}
MIGRATING_ROLES = ("scheduler", "standalone")  # the roles that run `airflow db migrate`
# A role without the DB password: Airflow still builds an engine at import (settings.py
# configure_orm), so it gets an in-memory SQLite one that holds nothing and reaches nothing.
NO_DATABASE = "sqlite://"
# Celery results live in Redis, not the metadata DB: unset, Airflow would make the result
# backend db+<sql_alchemy_conn>, i.e. every worker would need the DB password. Database 0 is
# the broker's.
RESULT_BACKEND_DB = 1
# celery_results.py: Redis reads that retry through a broker failover instead of stopping the
# scheduler; imported from the bootstrap package (PYTHONPATH in the unit environment)
RESULT_BACKEND_CLASS = "airflow_node.celery_results:RetryingRedisBackend"
# how long a state read waits for Redis: Celery's default policy gives up after ~20 s, less
# than an ElastiCache failover may take
RESULT_BACKEND_RETRY_POLICY = {"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 1}
FLOWER_USER = "admin"

# The CeleryExecutor marks a task FAILED when its publish raises (Redis refusing connections
# while ElastiCache fails over), but queues it again on the next scheduler loop when the publish
# times out. So a publish retries for longer than the operation timeout: while the broker is
# down it always ends as a timeout, and the executor keeps retrying it for
# CELERY_PUBLISH_MAX_RETRIES loops (each at least the timeout long). The price is a scheduler
# loop slowed by one timeout per queued task while the broker is down.
CELERY_OPERATION_TIMEOUT_SECONDS = 1.0
CELERY_PUBLISH_RETRY_POLICY = {  # kombu sleeps 0.2 + 0.4 + 0.5 + 0.5 + 0.5 = 2.1 s in all
    "max_retries": 5,
    "interval_start": 0.2,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_PUBLISH_MAX_RETRIES = 30

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-.]*[A-Za-z0-9])?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$\-]*$")


@dataclass
class Rendered:
    config: dict[str, dict[str, str]]
    secret_files: dict[str, str]
    environment: dict[str, str]
    fstab: str
    admin_password: str
    admin_email: str
    migrate: bool
    units: tuple[str, ...]
    rotate_fernet: bool = False
    notes: list[str] = field(default_factory=list)


class _Checker:
    """Collects every problem, so one run names all missing/invalid settings at once."""

    def __init__(self, params: dict[str, str], secrets: dict[str, str], node: Node):
        self.params, self.secrets, self.node = params, secrets, node
        self.errors: list[str] = []

    def _where(self, key: str) -> str:
        return f"{self.node.parameter_prefix.rstrip('/')}/{key}"

    def param(self, key: str, check, allowed: str) -> str:
        value = self.params.get(key)
        # "none" is the infra's marker for a setting that does not apply (SSM rejects "")
        if value is None or value.strip() in ("", UNSET):
            self.errors.append(
                f"parameter {key} ({self._where(key)}) is missing or unset; expected {allowed}"
            )
            return ""
        value = value.strip()
        try:
            ok = check(value)
        except ValueError:
            ok = False
        if ok is False or ok is None:
            self.errors.append(f"parameter {key} = {value!r} is invalid; expected {allowed}")
            return ""
        return value if ok is True else ok

    def secret(self, key: str, check=None, allowed: str = "") -> str:
        value = self.secrets.get(key)
        where = f"{self.node.secret_prefix.rstrip('/')}/{key}"
        if value is None or value == "":
            self.errors.append(f"secret {key} ({where}) is missing or empty")
            return ""
        if check is not None and not check(value):
            # never echo a secret's value
            self.errors.append(f"secret {key} ({where}) is invalid; expected {allowed}")
            return ""
        return value


def _one_of(*allowed: str):
    return lambda v: v in allowed


def _int_range(low: int, high: int):
    def check(v: str):
        return v.isdigit() and low <= int(v) <= high

    return check


def _bool_text(v: str):
    if v.lower() in ("true", "false"):
        return "True" if v.lower() == "true" else "False"
    return False


def _host(v: str):
    return bool(_HOST.match(v)) and len(v) <= 253


def _s3_uri(v: str):
    parts = urlsplit(v)
    return parts.scheme == "s3" and bool(parts.netloc) and " " not in v


def _http_url(v: str):
    parts = urlsplit(v)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in v


def _execution_url(v: str):
    # Airflow's task runner appends API paths to it; it must be the /execution/ mount.
    return _http_url(v) and urlsplit(v).path.rstrip("/").endswith("/execution") and v.rstrip("/") + "/"


def _fernet(v: str):
    try:
        return len(base64.urlsafe_b64decode(v.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def _fernet_keys(v: str):
    # "new,old": MultiFernet encrypts with the first and decrypts with any (key rotation)
    return all(_fernet(k) for k in v.split(","))


def jwt_claims(parameter_prefix: str) -> dict[str, str]:
    """Issuer and audiences of this cluster's tokens, distinct per parameter prefix (one per
    environment): another environment's tokens, and a UI/REST token presented to the
    Execution API (or the reverse), fail validation even under an equal secret."""
    name = "urn:" + parameter_prefix.strip("/").replace("/", ":")
    return {"issuer": name, "api": f"{name}:api", "execution": f"{name}:execution"}


def render(contract: Contract, node: Node, params: dict[str, str], secrets: dict[str, str]) -> Rendered:
    c = _Checker(params, secrets, node)
    p = node.path
    positive = "a positive integer"
    holds = set(contract.role_secrets[node.role])

    executor = c.param(
        "executor", _one_of("CeleryExecutor", "LocalExecutor"), "CeleryExecutor or LocalExecutor"
    )
    celery = executor == "CeleryExecutor"
    if executor == "LocalExecutor" and node.role != "standalone":
        c.errors.append(
            f"role {node.role} needs executor CeleryExecutor (LocalExecutor runs only as standalone)"
        )
    if executor == "CeleryExecutor" and node.role == "standalone":
        c.errors.append("role standalone needs executor LocalExecutor (it runs no Celery worker)")

    database = "db-password" in holds
    engine = db_host = db_port = db_name = db_user = db_password = ""
    if database:
        engine = c.param("db/engine", _one_of("mysql", "postgres"), "mysql or postgres")
        db_host = c.param("db/endpoint", _host, "a host name")
        db_port = c.param("db/port", _int_range(1, 65535), "a port number 1-65535")
        db_name = c.param("db/name", lambda v: bool(_IDENT.match(v)), "a database name ([A-Za-z0-9_$-])")
        db_user = c.param("db/username", lambda v: bool(_IDENT.match(v)), "a user name ([A-Za-z0-9_$-])")
        db_password = c.secret("db-password")

    broker_host = broker_port = redis_token = ""
    if celery:
        broker_host = c.param("broker/endpoint", _host, "the ElastiCache endpoint host name")
        broker_port = c.param("broker/port", _int_range(1, 65535), "a port number 1-65535")
        redis_token = c.secret("redis-auth-token")

    fs_id = c.param("efs/file-system-id", lambda v: bool(re.fullmatch(r"fs-[0-9a-f]{8,40}", v)), "fs-<hex>")
    ap_id = c.param(
        "efs/access-point-id", lambda v: bool(re.fullmatch(r"fsap-[0-9a-f]{8,40}", v)), "fsap-<hex>"
    )
    log_folder = c.param("logs/remote-base-log-folder", _s3_uri, "an s3://bucket/prefix URI")
    dags_uri = c.param("artifacts/dags-uri", _s3_uri, "an s3://bucket/prefix URI")
    base_url = c.param("api/base-url", _http_url, "an http(s):// URL")
    execution_url = c.param(
        "api/execution-api-url", _execution_url, "an http(s):// URL ending in /execution/"
    )
    from_email = c.param(
        "smtp/from-email", lambda v: bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v)), "an email"
    )
    email_backend = c.param("email/backend", _one_of(*EMAIL_BACKENDS), " or ".join(EMAIL_BACKENDS))
    # only the SMTP backend talks to an SMTP host (like broker/* only with Celery)
    smtp_host = c.param("smtp/host", _host, "a host name") if email_backend == "smtp" else ""
    tunables = {
        "scheduler/max-dagruns-to-create-per-loop": c.param(
            "scheduler/max-dagruns-to-create-per-loop", _int_range(1, 10000), positive
        ),
        "scheduler/max-dagruns-per-loop-to-schedule": c.param(
            "scheduler/max-dagruns-per-loop-to-schedule", _int_range(1, 10000), positive
        ),
        "scheduler/use-row-level-locking": c.param(
            "scheduler/use-row-level-locking", _bool_text, "True or False"
        ),
        "scheduler/pool-metrics-interval": c.param(
            "scheduler/pool-metrics-interval", _int_range(1, 86400), positive
        ),
        "scheduler/orphaned-tasks-check-interval": c.param(
            "scheduler/orphaned-tasks-check-interval", _int_range(1, 86400), positive
        ),
        "core/allow-trigger-in-future": c.param("core/allow-trigger-in-future", _bool_text, "True or False"),
        "core/parallelism": c.param("core/parallelism", _int_range(1, 100000), positive),
        "celery/worker-concurrency": c.param("celery/worker-concurrency", _int_range(1, 1000), positive),
    }

    def held(key: str, check=None, allowed: str = "") -> str:
        return c.secret(key, check, allowed) if key in holds else ""

    fernet = held(
        "fernet-key",
        _fernet_keys,
        "url-safe base64 of 32 bytes (Fernet.generate_key()), or a comma list of them (the first encrypts)",
    )
    jwt_secret = held("jwt-secret")
    api_secret = held("api-secret-key")
    admin_password = held("admin-password")
    flower_password = held("flower-password") if celery else ""

    if c.errors:
        raise BootstrapError(
            f"cannot configure role {node.role}: {len(c.errors)} problem(s)\n  - " + "\n  - ".join(c.errors)
        )

    secret_dir = p(f"{ETC}/secrets")
    ca = str(p(RDS_CA_BUNDLE))
    files: dict[str, str] = {}

    def cmd(name: str) -> str:
        return f"cat {secret_dir / name}"

    # --- connection strings (secret-bearing: files only) --------------------------------
    database_cfg = {"sql_alchemy_conn": NO_DATABASE}
    if database:
        cred = f"{quote(db_user, safe='')}:{quote(db_password, safe='')}@{db_host}:{db_port}/{db_name}"
        # TLS verified against the baked RDS CA bundle, host name included (the RDS endpoint is
        # in the server certificate). The async drivers get an SSLContext through
        # [database] sql_alchemy_connect_args_async (db_tls.py): asyncpg/aiomysql take no
        # CA file in the URL, and RDS refuses their plaintext connections.
        if engine == "postgres":
            sync = f"postgresql+psycopg2://{cred}" + (
                f"?sslmode=verify-full&sslrootcert={quote(ca)}" if node.tls else ""
            )
            async_ = f"postgresql+asyncpg://{cred}"
        else:
            sync = f"mysql+mysqldb://{cred}?charset=utf8mb4" + (
                f"&ssl_mode=VERIFY_IDENTITY&ssl_ca={quote(ca)}" if node.tls else ""
            )
            async_ = f"mysql+aiomysql://{cred}?charset=utf8mb4"
        files["sql_alchemy_conn"], files["sql_alchemy_conn_async"] = sync, async_
        database_cfg = {
            "sql_alchemy_conn_cmd": cmd("sql_alchemy_conn"),
            "sql_alchemy_conn_async_cmd": cmd("sql_alchemy_conn_async"),
            **({"sql_alchemy_connect_args_async": ASYNC_CONNECT_ARGS_PATH} if node.tls else {}),
        }
    for name, value in (("fernet_key", fernet), ("jwt_secret", jwt_secret), ("api_secret_key", api_secret)):
        if value:
            files[name] = value
    claims = jwt_claims(node.parameter_prefix)
    api_auth = {"jwt_issuer": claims["issuer"], "jwt_audience": claims["api"]}
    if jwt_secret:
        api_auth["jwt_secret_cmd"] = cmd("jwt_secret")

    cfg: dict[str, dict[str, str]] = {
        "core": {
            "executor": executor,
            "auth_manager": FAB_AUTH_MANAGER,
            "execution_api_server_url": execution_url,
            "dags_folder": str(p(f"{EFS}/dags")),
            "plugins_folder": str(p(f"{EFS}/plugins")),
            "load_examples": "False",
            "parallelism": tunables["core/parallelism"],
            **({"fernet_key_cmd": cmd("fernet_key")} if fernet else {}),
        },
        "database": database_cfg,
        "logging": {
            "base_log_folder": str(p(LOGS)),
            "remote_logging": "True",
            "remote_base_log_folder": log_folder,
            # no keys: the aws_default connection falls back to the instance role
            "remote_log_conn_id": "aws_default",
            "worker_log_server_port": str(contract.ports["worker-log-server"]),
            "trigger_log_server_port": str(contract.ports["triggerer-log-server"]),
        },
        "api": {
            "base_url": base_url,
            # behind the load balancers; the security groups limit who reaches the port
            "host": "0.0.0.0",  # noqa: S104
            "port": str(contract.ports["api-server"]),
            "expose_config": "False",
            **({"secret_key_cmd": cmd("api_secret_key")} if api_secret else {}),
        },
        "api_auth": api_auth,
        "execution_api": {"jwt_audience": claims["execution"]},
        # the session cookie is only an id whose data lives in the DB, so [api] secret_key
        # (which workers hold for the log server) cannot forge a UI session
        "fab": {"session_backend": "database"},
        "scheduler": {
            "enable_health_check": "True",
            "scheduler_health_check_server_host": "0.0.0.0",  # noqa: S104 - ASG/ALB health checks
            "scheduler_health_check_server_port": str(contract.ports["scheduler-health"]),
            "max_dagruns_to_create_per_loop": tunables["scheduler/max-dagruns-to-create-per-loop"],
            "max_dagruns_per_loop_to_schedule": tunables["scheduler/max-dagruns-per-loop-to-schedule"],
            "use_row_level_locking": tunables["scheduler/use-row-level-locking"],
            "pool_metrics_interval": tunables["scheduler/pool-metrics-interval"],
            "orphaned_tasks_check_interval": tunables["scheduler/orphaned-tasks-check-interval"],
        },
        # DAG files arrive on EFS from the dag-sync timer every minute
        "dag_processor": {"refresh_interval": "60"},
        "metrics": metrics_config(contract),
        "secrets": {
            "backend": SSM_BACKEND,
            "backend_kwargs": json.dumps(
                {
                    "connections_prefix": f"{node.parameter_prefix.rstrip('/')}/connections",
                    "variables_prefix": f"{node.parameter_prefix.rstrip('/')}/variables",
                    "config_prefix": None,
                    "region_name": node.region,
                }
            ),
        },
        **email_config(email_backend, from_email, smtp_host),
    }
    if celery:
        scheme, query = ("rediss", "?ssl_cert_reqs=required") if node.tls else ("redis", "")
        redis = f"{scheme}://:{quote(redis_token, safe='')}@{broker_host}:{broker_port}"
        files["broker_url"] = f"{redis}/0{query}"
        files["result_backend"] = f"{RESULT_BACKEND_CLASS}+{redis}/{RESULT_BACKEND_DB}{query}"
        cfg["celery"] = {
            "broker_url_cmd": cmd("broker_url"),
            "result_backend_cmd": cmd("result_backend"),
            "worker_concurrency": tunables["celery/worker-concurrency"],
            "operation_timeout": str(CELERY_OPERATION_TIMEOUT_SECONDS),
            "task_publish_max_retries": str(CELERY_PUBLISH_MAX_RETRIES),
            "extra_celery_config": json.dumps(
                {
                    "task_publish_retry_policy": CELERY_PUBLISH_RETRY_POLICY,
                    "result_backend_transport_options": {"retry_policy": RESULT_BACKEND_RETRY_POLICY},
                }
            ),
            "flower_port": str(contract.ports["flower"]),
        }
        if flower_password:
            files["flower_basic_auth"] = f"{FLOWER_USER}:{flower_password}"
            cfg["celery"]["flower_basic_auth_cmd"] = cmd("flower_basic_auth")

    if node.overlay is not None:
        _merge_overlay(cfg, node.overlay)

    environment = {
        "AIRFLOW_HOME": str(p(HOME)),
        "AIRFLOW_CONFIG": str(p(f"{ETC}/airflow.cfg")),
        "AIRFLOW_ROLE": node.role,
        "AIRFLOW_SETTINGS_REVISION": node.revision,
        "AIRFLOW_DAGS_URI": dags_uri,
        "AIRFLOW_DAGS_DIR": cfg["core"]["dags_folder"],
        "AWS_REGION": node.region,
        "AWS_DEFAULT_REGION": node.region,
        # airflowMetricsNamespace (modules/contract.ts): /<namePrefix>/<env> -> Airflow/<namePrefix>-<env>
        "AIRFLOW_METRICS_NAMESPACE": "Airflow/" + node.parameter_prefix.strip("/").replace("/", "-"),
        "PATH": f"{node.venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
    }
    if node.tls and database:
        # Airflow imports the async connect args from the bootstrap package (db_tls.py)
        environment[CA_BUNDLE_ENV] = ca
    if (node.tls and database) or celery:
        # ... and the Celery result backend (celery_results.py)
        environment["PYTHONPATH"] = str(BOOTSTRAP_LIB)
    return Rendered(
        config=cfg,
        secret_files=files,
        environment=environment,
        fstab=f"{fs_id}:/ {EFS} efs _netdev,noresvport,tls,iam,accesspoint={ap_id} 0 0",
        admin_password=admin_password,
        admin_email=from_email,
        migrate=node.role in MIGRATING_ROLES,
        # more than one key: a rotation is under way, and the migrating role re-encrypts
        # the stored values with the first key (`airflow rotate-fernet-key`)
        rotate_fernet=node.role in MIGRATING_ROLES and "," in fernet,
        units=contract.roles[node.role],
    )


def metrics_config(contract: Contract) -> dict[str, str]:
    """[metrics]: statsd to the node's CloudWatch agent (contract cloudwatchAgent.statsd),
    which publishes one cluster-wide series per name. Legacy names carry dag, task and file
    names (``dag.<dag_id>.<task_id>.queued_duration``): each would be one more custom metric
    (billed per name), so only the templated names are sent, and of those only the
    contract's list (Airflow matches each allow-list entry as a regex, hence anchored)."""
    host, port, prefix = contract.statsd
    return {
        "statsd_on": "True",
        "statsd_host": host,
        "statsd_port": str(port),
        "statsd_prefix": prefix,
        "legacy_names_on": "False",
        "metrics_allow_list": ",".join(f"^{re.escape(name)}$" for name in contract.statsd_metrics),
    }


def email_config(backend: str, from_email: str, smtp_host: str) -> dict[str, dict[str, str]]:
    """[email], and [smtp] for the SMTP backend, for the `email/backend` setting (the pipeline
    tests run DAG_1 with these)."""
    email = {"email_backend": EMAIL_BACKENDS[backend], "from_email": from_email}
    if backend == "ses":
        # Airflow hands email_conn_id to the backend as its connection; the default,
        # smtp_default, is no AWS connection
        return {"email": {**email, "email_conn_id": SES_CONN_ID}}
    # SES SMTP interface: STARTTLS on 587; credentials come from the smtp_default connection
    # (<prefix>/connections/smtp_default) through the secrets backend. Not written for ses:
    # nothing reads it then, and the infra creates no smtp_default connection, so an [smtp]
    # section would describe a transport the node cannot use.
    smtp = {
        "smtp_host": smtp_host,
        "smtp_port": "587",
        "smtp_starttls": "True",
        "smtp_ssl": "False",
        "smtp_mail_from": from_email,
    }
    return {"email": email, "smtp": smtp}


def _merge_overlay(cfg: dict[str, dict[str, str]], path: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep option names as written
    try:
        with open(path) as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise BootstrapError(f"config overlay {path} is unreadable: {exc.strerror}") from None
    except configparser.Error as exc:
        raise BootstrapError(f"config overlay {path} is not an ini file: {exc}") from None
    for section in parser.sections():
        cfg.setdefault(section, {}).update(parser[section])


def to_ini(cfg: dict[str, dict[str, str]]) -> str:
    """airflow.cfg text. Airflow's parser interpolates %, so a literal % is doubled."""
    lines = ["# Rendered by airflow-bootstrap at boot; edits are overwritten. No secrets here."]
    for section, options in cfg.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{k} = {v.replace('%', '%%')}" for k, v in options.items())
    return "\n".join(lines) + "\n"


def env_text(env: dict[str, str]) -> str:
    """systemd EnvironmentFile syntax (also parsed by the local launcher)."""
    return "".join(f'{k}="{v}"\n' for k, v in env.items())
