"""The seam between infra and bootstrap, by value: what modules/settings.ts writes to SSM is
what the node's renderer accepts.

Names are tested on both sides against config/settings-contract.json; this test checks
the VALUES. It synthesizes the real cluster stack (tsc + `node dist/main.js`) for the
default dev config (CeleryExecutor, MySQL) and an alternative (LocalExecutor, PostgreSQL,
HTTPS, other name prefix and tunables), takes every settings parameter from cdk.tf.json,
replaces Terraform references by realistic stand-ins chosen by resource type and
attribute, and feeds the values through the bootstrap's real envfile source and renderer
for each role the synth has a launch template for, with node.env taken from that
template's user-data (TLS on, as on EC2).
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import secrets as secrets_mod
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow_node import BootstrapError
from airflow_node import contract as contract_mod
from airflow_node.bootstrap import write_files
from airflow_node.render import render, to_ini
from airflow_node.settings import load_node, read_settings
from airflow_node.units import UNITS, component_log_file
from ami_support import CONTRACT_FILE, ROOT, packer_default, run_airflow_probe

# The alternative deployment (LocalExecutor, PostgreSQL, HTTPS, non-default tunables), shared
# with the infra stage's checkov run (scripts/test-infra.sh).
FIXTURE_CONFIG_DIR = ROOT / "__tests__" / "infra" / "fixtures" / "config"
# env -> config directory (None: the repository's config/<env>.json)
SYNTHS = {"dev": None, "alt": FIXTURE_CONFIG_DIR}
ACCOUNT = "123456789012"
# Parameters under these sub-prefixes are Airflow Variables/Connections read by tasks
# through the secrets backend, and the CloudWatch agent's configuration, which the agent
# reads: not settings the bootstrap reads.
AGENT_PARAMETER = contract_mod.load(CONTRACT_FILE).agent_parameter
NOT_SETTINGS = ("variables/", "connections/", AGENT_PARAMETER)
_REF = re.compile(r"\$\{([^}]*)\}")
_SIMPLE_REF = re.compile(r"^(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_\-]+)\.([a-z0-9_]+)$")


# (resource type, attribute) pairs Resolver.standin knows
_STANDIN_KINDS = {
    ("aws_db_instance", "address"),
    ("aws_db_instance", "port"),
    ("aws_elasticache_replication_group", "primary_endpoint_address"),
    ("aws_elasticache_replication_group", "port"),
    ("aws_efs_file_system", "id"),
    ("aws_efs_access_point", "id"),
    ("aws_lb", "dns_name"),
    ("aws_s3_bucket", "bucket"),
}


class UnknownReference(Exception):
    """A `${...}` in a parameter value this test has no stand-in for."""


# --- synthesis ---------------------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def synths(tmp_path_factory) -> dict[str, dict]:
    """env -> cluster stack cdk.tf.json, synthesized from the current TypeScript."""
    npx = shutil.which("npx")
    if npx is None or not (ROOT / "node_modules" / "cdktf").is_dir():
        pytest.fail("node/npx and node_modules are needed to synthesize (run scripts/setup-node.sh)")
    _run([npx, "tsc", "-p", "tsconfig.json"])  # incremental: ~2 s when dist/ is current
    out: dict[str, dict] = {}
    for env, config_dir in SYNTHS.items():
        work = tmp_path_factory.mktemp(f"synth-{env}")
        extra = {"CDKTF_OUTDIR": str(work / "out"), "AIRFLOW_ENV": env}
        if config_dir is not None:
            extra["AIRFLOW_CONFIG_DIR"] = str(config_dir)
        _run(["node", "dist/main.js"], extra)
        stacks = [
            p for p in (work / "out" / "stacks").glob("*/cdk.tf.json") if "aws_ssm_parameter" in p.read_text()
        ]
        assert len(stacks) == 1, f"{env}: expected one stack with SSM parameters, got {stacks}"
        out[env] = json.loads(stacks[0].read_text())
    return out


# --- stand-ins for Terraform references ----------------------------------------------------


@dataclass
class Resolver:
    """Replaces `${type.name.attr}` in a synthesized value by a realistic stand-in.

    Chosen by resource type and attribute (looking at the referenced resource's own
    synthesized arguments where that decides the shape, e.g. an ALB's `internal`), so a
    value built around a reference keeps its literal parts. A reference kind without a
    stand-in raises UnknownReference naming it: new wiring must get one deliberately.
    """

    tf: dict
    region: str
    engine: str

    def resource(self, rtype: str, name: str, data: bool) -> dict:
        block = self.tf.get("data" if data else "resource", {}).get(rtype, {})
        if name not in block:
            raise UnknownReference(f"{'data.' if data else ''}{rtype}.{name} is not in the synthesized stack")
        return block[name]

    def standin(self, ref: str) -> str:
        m = _SIMPLE_REF.match(ref.strip())
        if not m:
            raise UnknownReference(f"${{{ref}}}: not a plain attribute reference")
        data, rtype, name, attr = bool(m.group(1)), m.group(2), m.group(3), m.group(4)
        if (data, rtype, attr) == (True, "aws_caller_identity", "account_id"):
            return ACCOUNT
        if data or (rtype, attr) not in _STANDIN_KINDS:
            kind = f"{'data source ' if data else ''}{rtype}.{attr}"
            raise UnknownReference(f"${{{ref}}}: no stand-in for {kind}")
        res = self.resource(rtype, name, data)
        if (rtype, attr) == ("aws_db_instance", "address"):
            return f"{res.get('identifier', 'airflow-db')}.c9akciq32.{self.region}.rds.amazonaws.com"
        if (rtype, attr) == ("aws_db_instance", "port"):
            return {"mysql": "3306", "postgres": "5432"}[self.engine]
        if (rtype, attr) == ("aws_elasticache_replication_group", "primary_endpoint_address"):
            rg = self.value(str(res.get("replication_group_id", "airflow-broker")))
            return f"master.{rg}.abc123.use1.cache.amazonaws.com"
        if (rtype, attr) == ("aws_elasticache_replication_group", "port"):
            return "6379"
        if (rtype, attr) == ("aws_efs_file_system", "id"):
            return "fs-0123456789abcdef0"
        if (rtype, attr) == ("aws_efs_access_point", "id"):
            return "fsap-0fedcba9876543210"
        if (rtype, attr) == ("aws_lb", "dns_name"):
            lb = self.value(str(res.get("name", name)))
            internal = "internal-" if res.get("internal") else ""
            return f"{internal}{lb}-1234567890.{self.region}.elb.amazonaws.com"
        if (rtype, attr) == ("aws_s3_bucket", "bucket"):
            if "bucket" not in res:
                raise UnknownReference(f"${{{ref}}}: bucket without a synthesized name")
            return self.value(str(res["bucket"]))
        raise AssertionError(f"{rtype}.{attr} is in _STANDIN_KINDS without a stand-in")

    def value(self, text: str) -> str:
        return _REF.sub(lambda m: self.standin(m.group(1)), text)


# --- what the synth says ------------------------------------------------------------------


@dataclass
class Cluster:
    env: str
    parameter_prefix: str
    params: dict[str, str]  # contract key -> resolved value
    raw: dict[str, str]  # contract key -> value as synthesized
    secret_keys: set[str]
    node_envs: dict[str, dict[str, str]]  # role -> user-data node.env keys


def _user_data_env(user_data: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The contract's user-data keys from a launch template's user-data.

    It is a Terraform expression whose literal heredoc holds KEY=value lines (newlines
    escaped), except AIRFLOW_SETTINGS_REVISION, a sha256 computed at apply time.
    """
    found = {}
    for key in keys:
        if key == "AIRFLOW_SETTINGS_REVISION":
            assert f"{key}=" in user_data, f"user-data lacks {key}"
            found[key] = "seam-revision"
            continue
        m = re.search(rf"(?:^|\\n|\n){key}=([^\\\"\n]+)", user_data)
        assert m, f"user-data lacks {key}"
        found[key] = m.group(1)
    return found


def cluster_of(env: str, tf: dict, contract) -> Cluster:
    prefix = tf["output"]["parameter_prefix"]["value"]
    node_envs = {}
    for lt in tf["resource"]["aws_launch_template"].values():
        ne = _user_data_env(lt["user_data"], contract.user_data_keys)
        node_envs[ne["AIRFLOW_ROLE"]] = ne
    assert node_envs, f"{env}: no launch templates"
    any_env = next(iter(node_envs.values()))
    assert {ne["AIRFLOW_PARAMETER_PREFIX"] for ne in node_envs.values()} == {prefix}
    raw = {}
    for p in tf["resource"]["aws_ssm_parameter"].values():
        name = p["name"]
        if not name.startswith(prefix + "/"):
            continue
        key = name[len(prefix) + 1 :]
        if key.startswith(NOT_SETTINGS):
            continue
        assert key not in raw, f"{env}: two parameters named {name}"
        raw[key] = p.get("insecure_value", p.get("value"))
        assert isinstance(raw[key], str), f"{env}: parameter {name} has no literal value: {p}"
    secret_prefix = any_env["AIRFLOW_SECRET_PREFIX"].rstrip("/") + "/"
    secret_keys = {
        s["name"][len(secret_prefix) :]
        for s in tf["resource"]["aws_secretsmanager_secret"].values()
        if s["name"].startswith(secret_prefix)
    }
    resolver = Resolver(tf, any_env["AWS_REGION"], raw.get("db/engine", "mysql"))
    try:
        params = {k: resolver.value(v) for k, v in raw.items()}
    except UnknownReference as exc:
        pytest.fail(f"{env}: {exc}; give it a realistic stand-in in {Path(__file__).name}")
    return Cluster(env, prefix, params, raw, secret_keys, node_envs)


@pytest.fixture(scope="session")
def clusters(synths, contract) -> dict[str, Cluster]:
    return {env: cluster_of(env, tf, contract) for env, tf in synths.items()}


def _secret_values(keys: set[str]) -> dict[str, str]:
    # shaped like modules/settings.ts generates them: fernet = url-safe base64 of 32 bytes,
    # the rest alphanumerics (random_password, special = false)
    alnum = string.ascii_letters + string.digits
    out = {k: "".join(secrets_mod.choice(alnum) for _ in range(40)) for k in keys}
    if "fernet-key" in out:
        out["fernet-key"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return out


def render_node(tmp_path: Path, contract, cluster: Cluster, role: str, params: dict[str, str]):
    """The bootstrap's own path: node.env (user-data keys + envfile source) -> read -> render."""
    settings = tmp_path / "settings.env"
    settings.write_text("".join(f"{k}={v}\n" for k, v in params.items()))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    secret_values = _secret_values(cluster.secret_keys)
    for k, v in secret_values.items():
        (secrets_dir / k).write_text(v + "\n")
    node_env = {
        **cluster.node_envs[role],
        "AIRFLOW_SETTINGS_SOURCE": "envfile",
        "AIRFLOW_SETTINGS_FILE": str(settings),
        "AIRFLOW_SECRETS_DIR": str(secrets_dir),
        "AIRFLOW_NODE_ROOT": str(tmp_path / "root"),
        "AIRFLOW_TLS": "true",  # as on EC2 (the default): rediss://, verified DB TLS
    }
    path = tmp_path / f"node-{role}.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in node_env.items()))
    node = load_node(path, contract)
    read_params, read_secrets = read_settings(node, contract)
    return node, render(contract, node, read_params, read_secrets), secret_values


def render_ok(tmp_path: Path, contract, cluster: Cluster, role: str):
    """render_node with the synthesized values; a refusal fails naming the seam."""
    try:
        return render_node(tmp_path, contract, cluster, role, cluster.params)
    except BootstrapError as exc:
        pytest.fail(f"{cluster.env}/{role}: the bootstrap refuses what the infra writes:\n{exc}")


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", SYNTHS)
def test_synth_parameter_keys_are_the_contract(contract, clusters, env):
    found = set(clusters[env].params)
    assert sorted(set(contract.parameters) - found) == [], f"{env}: contract keys the infra does not write"
    assert sorted(found - set(contract.parameters)) == [], (
        f"{env}: keys the infra writes outside the contract"
    )


@pytest.mark.parametrize("env", SYNTHS)
def test_synth_secrets_are_the_contract(contract, clusters, env):
    cluster = clusters[env]
    celery = cluster.params["executor"] == "CeleryExecutor"
    want = set(contract.secrets) - (set() if celery else {"redis-auth-token", "flower-password"})
    assert cluster.secret_keys == want


def test_synths_cover_both_branches(clusters):
    dev, alt = clusters["dev"].params, clusters["alt"].params
    assert (dev["executor"], dev["db/engine"]) == ("CeleryExecutor", "mysql")
    assert (alt["executor"], alt["db/engine"]) == ("LocalExecutor", "postgres")
    assert set(clusters["dev"].node_envs) == {"api-server", "scheduler", "worker"}
    assert set(clusters["alt"].node_envs) == {"standalone"}
    # the infra's marker for "does not apply", never an empty string
    assert alt["broker/endpoint"] == alt["broker/port"] == "none"
    # neither config sets emailBackend: the default (test_smtp_backend_... covers "smtp")
    assert dev["email/backend"] == alt["email/backend"] == "ses"


def test_smtp_backend_renders_the_smtp_host_the_infra_writes(contract, clusters, tmp_path):
    # with emailBackend "smtp" the infra writes the same parameters but email/backend
    cluster = clusters["dev"]
    params = {**cluster.params, "email/backend": "smtp"}
    try:
        _, out, _ = render_node(tmp_path, contract, cluster, "worker", params)
    except BootstrapError as exc:
        pytest.fail(f"dev/worker with email/backend=smtp: the bootstrap refuses it:\n{exc}")
    assert out.config["email"]["email_backend"] == "airflow.utils.email.send_email_smtp"
    assert out.config["smtp"]["smtp_host"] == cluster.params["smtp/host"]
    assert out.config["smtp"]["smtp_mail_from"] == cluster.params["smtp/from-email"]


def _cases():
    return [
        (env, role)
        for env, roles in (("dev", ("api-server", "scheduler", "worker")), ("alt", ("standalone",)))
        for role in roles
    ]


@pytest.mark.parametrize(("env", "role"), _cases())
def test_bootstrap_renders_what_the_infra_writes(contract, clusters, tmp_path, env, role):
    cluster = clusters[env]
    v = cluster.params
    _, out, secret_values = render_ok(tmp_path, contract, cluster, role)

    # the ini Airflow reads round-trips to the same values
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(to_ini(out.config))
    cfg = {s: dict(ini[s]) for s in ini.sections()}

    assert cfg["core"]["executor"] == v["executor"]
    assert cfg["core"]["execution_api_server_url"] == v["api/execution-api-url"].rstrip("/") + "/"
    assert cfg["logging"]["remote_base_log_folder"] == v["logs/remote-base-log-folder"]
    assert cfg["logging"]["remote_base_log_folder"].startswith("s3://")
    assert cfg["api"]["base_url"] == v["api/base-url"]
    assert cfg["email"]["from_email"] == v["smtp/from-email"]
    if v["email/backend"] == "smtp":
        assert cfg["smtp"]["smtp_host"] == v["smtp/host"]
    else:
        assert cfg["email"]["email_conn_id"] == "aws_default"
        assert "smtp" not in cfg
    sched = cfg["scheduler"]
    for key in (
        "max-dagruns-to-create-per-loop",
        "max-dagruns-per-loop-to-schedule",
        "use-row-level-locking",
        "pool-metrics-interval",
        "orphaned-tasks-check-interval",
    ):
        assert sched[key.replace("-", "_")] == v[f"scheduler/{key}"], key
    assert sched["use_row_level_locking"] in ("True", "False")
    assert cfg["core"]["parallelism"] == v["core/parallelism"]
    assert out.fstab.startswith(f"{v['efs/file-system-id']}:/ ")
    assert f"accesspoint={v['efs/access-point-id']}" in out.fstab
    assert out.environment["AIRFLOW_DAGS_URI"] == v["artifacts/dags-uri"]

    # the metadata DB URL (a root-only file, referenced by _cmd) matches engine and endpoint,
    # on the roles that hold the DB password; a worker gets none (contract roleSecrets)
    if "db-password" in contract.role_secrets[role]:
        assert cfg["database"]["sql_alchemy_conn_cmd"].endswith("/etc/airflow/secrets/sql_alchemy_conn")
        conn = out.secret_files["sql_alchemy_conn"]
        scheme = {"mysql": "mysql+mysqldb://", "postgres": "postgresql+psycopg2://"}[v["db/engine"]]
        assert conn.startswith(f"{scheme}{v['db/username']}:{secret_values['db-password']}@")
        assert f"@{v['db/endpoint']}:{v['db/port']}/{v['db/name']}?" in conn
        tls = {"mysql": "ssl_mode=VERIFY_IDENTITY", "postgres": "sslmode=verify-full"}[v["db/engine"]]
        assert tls in conn
        assert "sql_alchemy_connect_args_async" in cfg["database"]
    else:
        assert cfg["database"] == {"sql_alchemy_conn": "sqlite://"}
        assert "sql_alchemy_conn" not in out.secret_files
    # no secret value leaks into airflow.cfg
    text = to_ini(out.config)
    assert not any(s in text for s in secret_values.values())

    if v["executor"] == "CeleryExecutor":
        assert cfg["celery"]["worker_concurrency"] == v["celery/worker-concurrency"]
        assert out.secret_files["broker_url"] == (
            f"rediss://:{secret_values['redis-auth-token']}@{v['broker/endpoint']}:{v['broker/port']}"
            "/0?ssl_cert_reqs=required"
        )
        assert out.secret_files["result_backend"] == (
            "airflow_node.celery_results:RetryingRedisBackend+"
            + out.secret_files["broker_url"].replace(f":{v['broker/port']}/0?", f":{v['broker/port']}/1?")
        )
    else:
        # LocalExecutor: "none" broker settings and no AUTH token secret are fine
        assert "celery" not in cfg and "broker_url" not in out.secret_files


def test_alt_tunables_reach_airflow_cfg(contract, clusters, tmp_path):
    # non-default config values travel the whole way (not just defaults on both sides)
    _, out, _ = render_ok(tmp_path, contract, clusters["alt"], "standalone")
    assert out.config["scheduler"]["orphaned_tasks_check_interval"] == "420"
    assert out.config["scheduler"]["max_dagruns_to_create_per_loop"] == "7"
    assert out.config["scheduler"]["pool_metrics_interval"] == "11"
    assert out.config["core"]["parallelism"] == "48"
    assert out.config["api"]["base_url"].startswith("https://")


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("scheduler/use-row-level-locking", "yes"),
        ("core/parallelism", "32.0"),
        ("db/engine", "postgresql"),
        ("api/execution-api-url", "http://internal-alb.elb.amazonaws.com/"),
        ("logs/remote-base-log-folder", "airflow-logs"),
        ("db/endpoint", "none"),
    ],
)
def test_a_broken_value_is_refused_naming_it(contract, clusters, tmp_path, key, bad):
    cluster = clusters["dev"]
    broken = {**cluster.params, key: bad}
    with pytest.raises(BootstrapError) as err:
        render_node(tmp_path, contract, cluster, "scheduler", broken)
    assert f"parameter {key}" in str(err.value)
    assert "Traceback" not in str(err.value)


_AIRFLOW_PROBE = """
import json
from airflow.configuration import conf
celery = conf.get("core", "executor") == "CeleryExecutor"
print(json.dumps({
    "executor": conf.get("core", "executor"),
    "exec_url": conf.get("core", "execution_api_server_url"),
    "log_folder": conf.get("logging", "remote_base_log_folder"),
    "base_url": conf.get("api", "base_url"),
    "conn": conf.get("database", "sql_alchemy_conn"),
    "row_locking": conf.getboolean("scheduler", "use_row_level_locking"),
    "create_per_loop": conf.getint("scheduler", "max_dagruns_to_create_per_loop"),
    "per_loop": conf.getint("scheduler", "max_dagruns_per_loop_to_schedule"),
    "pool_metrics": conf.getfloat("scheduler", "pool_metrics_interval"),
    "orphaned": conf.getfloat("scheduler", "orphaned_tasks_check_interval"),
    "parallelism": conf.getint("core", "parallelism"),
    "concurrency": conf.getint("celery", "worker_concurrency") if celery else None,
    "broker": conf.get("celery", "broker_url") if celery else None,
    "email_backend": conf.get("email", "email_backend"),
    "email_conn_id": conf.get("email", "email_conn_id"),
}))
"""


@pytest.mark.parametrize(("env", "role"), [("dev", "worker"), ("alt", "standalone")])
def test_real_airflow_parses_the_synthesized_values(contract, clusters, tmp_path, env, role):
    # Airflow's own getters, on the files the bootstrap writes: "True"/"False" and the
    # numbers-as-strings the infra stores must be what Airflow 3.3 parses.
    cluster = clusters[env]
    v = cluster.params
    node, out, _ = render_ok(tmp_path, contract, cluster, role)
    write_files(node, out)
    if "AIRFLOW_DB_CA_BUNDLE" in out.environment:  # TLS to the DB: the async engine loads it
        ca = Path(out.environment["AIRFLOW_DB_CA_BUNDLE"])
        ca.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(ca.with_suffix(".key")), "-out", str(ca), "-subj", "/O=Test/CN=Seam CA"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    got = run_airflow_probe(_AIRFLOW_PROBE, out.environment, tmp_path)
    assert got["executor"] == v["executor"]
    assert got["exec_url"] == v["api/execution-api-url"]
    assert got["log_folder"] == v["logs/remote-base-log-folder"]
    assert got["base_url"] == v["api/base-url"]
    # a worker holds no DB password: an empty in-memory database
    assert got["conn"] == out.secret_files.get("sql_alchemy_conn", "sqlite://")
    assert got["row_locking"] is (v["scheduler/use-row-level-locking"] == "True")
    assert got["create_per_loop"] == int(v["scheduler/max-dagruns-to-create-per-loop"])
    assert got["per_loop"] == int(v["scheduler/max-dagruns-per-loop-to-schedule"])
    assert got["pool_metrics"] == float(v["scheduler/pool-metrics-interval"])
    assert got["orphaned"] == float(v["scheduler/orphaned-tasks-check-interval"])
    assert got["parallelism"] == int(v["core/parallelism"])
    if v["executor"] == "CeleryExecutor":
        assert got["concurrency"] == int(v["celery/worker-concurrency"])
        assert got["broker"] == out.secret_files["broker_url"]
    assert (got["email_backend"], got["email_conn_id"]) == (
        "airflow.providers.amazon.aws.utils.emailer.send_email",
        "aws_default",
    )


def test_the_ami_carries_the_stacks_project_tag(synths):
    # cost reports group by Project: the image must not land in a bucket of its own
    def project(env: str) -> str:
        return synths[env]["provider"]["aws"][0]["default_tags"][0]["tags"]["Project"]

    assert packer_default("project") == project("dev"), (
        "packer/variables.pkr.hcl project must default to the stack's Project tag (config's namePrefix)"
    )
    # it follows namePrefix, hence packer/README.md's -var project=<namePrefix>
    assert project("alt") == json.loads((FIXTURE_CONFIG_DIR / "alt.json").read_text())["namePrefix"]


def test_unknown_reference_kind_fails_naming_it(synths):
    resolver = Resolver(synths["dev"], "us-east-1", "mysql")
    assert resolver.value("s3://${aws_s3_bucket." + _bucket_id(synths["dev"]) + ".bucket}/x").startswith(
        "s3://airflow-dev-logs-123456789012-us-east-1/"
    )
    with pytest.raises(UnknownReference, match=r"aws_instance\.private_ip"):
        resolver.value("http://${aws_instance.web.private_ip}/")
    with pytest.raises(UnknownReference, match="not a plain attribute reference"):
        resolver.value("${lower(var.x)}")


def _bucket_id(tf: dict) -> str:
    return next(
        k
        for k, v in tf["resource"]["aws_s3_bucket"].items()
        if str(v.get("bucket")).startswith("airflow-dev-logs-")
    )


# Literals that cross languages and cannot read config/settings-contract.json where they
# stand (DAG code on EFS, the renderer's module constants): each must spell the contract's
# value. (file, regex capturing the literal, contract path)
RENDER = "packer/files/bootstrap/airflow_node/render.py"
CONTRACT_LITERALS = [
    ("dags/champion_dag_1_emr.py", r'^AWS_CONN_ID = "([^"]+)"$', ("connections", "aws")),
    ("dags/champion_dag_1_emr.py", r'^SMTP_CONN_ID = "([^"]+)"$', ("connections", "smtp")),
    ("dags/champion_dag_1_emr.py", r'"Key": "(for-use-with-[^"]+)"', ("emrManagedTag", "key")),
    (
        "dags/champion_dag_1_emr.py",
        r'"Key": "([^"]+)", "Value": "\{\{ var\.value\.emr_cluster_tag \}\}"',
        ("emrClusterTag", "key"),
    ),
    ("dags/champion_dag_2_sort.py", r'^AWS_CONN_ID = "([^"]+)"$', ("connections", "aws")),
    (RENDER, r'^SES_CONN_ID = "([^"]+)"$', ("connections", "aws")),
    (RENDER, r'"remote_log_conn_id": "([^"]+)"', ("connections", "aws")),
    (RENDER, r'"smtp_port": "(\d+)"', ("ports", "smtp-submission")),
    ("__tests__/e2e/e2e_cluster.py", r'^SMTP_CONN_ID = "([^"]+)"$', ("connections", "smtp")),
]


@pytest.mark.parametrize(("path", "pattern", "key"), CONTRACT_LITERALS, ids=lambda v: str(v))
def test_cross_language_literals_spell_the_contract(path, pattern, key):
    raw = json.loads((ROOT / "config" / "settings-contract.json").read_text())
    expected = str(raw[key[0]][key[1]])
    found = re.findall(pattern, (ROOT / path).read_text(), re.M)
    assert found, f"{path}: no literal matching {pattern} (moved? update CONTRACT_LITERALS)"
    assert set(found) == {expected}, f"{path}: {found} differ from settings-contract.json {'.'.join(key)}"


def test_the_packer_template_reads_names_and_ids_from_the_contract():
    # Packer reads the contract itself: no copy of the AMI name or the uid/gid to drift
    hcl = (ROOT / "packer" / "airflow-golden.pkr.hcl").read_text()
    assert 'jsondecode(file("${abspath(path.root)}/../config/settings-contract.json"))' in hcl
    assert re.search(r'ami_name\s+= "\$\{local\.ami_prefix\}-', hcl)
    assert "AIRFLOW_UID=${local.contract.airflowUser.uid}" in hcl
    assert not re.search(r"\b50000\b|airflow-golden-", hcl)
    user_script = (ROOT / "packer" / "scripts" / "20-airflow-user.sh").read_text()
    assert not re.search(r"\b50000\b", user_script)


@pytest.mark.parametrize("env", SYNTHS)
def test_the_agent_ships_exactly_the_files_the_units_write(contract, synths, clusters, env):
    """The synthesized agent configuration (TypeScript) lists, per log group, the file that the
    rendered systemd units (Python) append to: every service of the env's roles, and
    cloud-init's log for the bootstrap."""
    cluster = clusters[env]
    name = f"{cluster.parameter_prefix}/{AGENT_PARAMETER}"
    found = [p for p in synths[env]["resource"]["aws_ssm_parameter"].values() if p["name"] == name]
    assert len(found) == 1, f"{env}: no parameter {name}"
    agent = json.loads(found[0]["insecure_value"])
    shipped = {f["file_path"] for f in agent["logs"]["logs_collected"]["files"]["collect_list"]}
    services = {
        u.removesuffix(".timer") + ".service" if u.endswith(".timer") else u
        for role in cluster.node_envs
        for u in contract.roles[role]
    }
    assert all(s in UNITS for s in services)
    written = {component_log_file(s, contract.log_dir) for s in services}
    assert shipped == written | {"/var/log/cloud-init-output.log"}
    host, port, prefix = contract.statsd
    assert agent["metrics"]["metrics_collected"]["statsd"]["service_address"] == f"{host}:{port}"
    assert agent["metrics"]["namespace"] == f"Airflow/{cluster.parameter_prefix.strip('/').replace('/', '-')}"
