"""EMR stand-in for the local e2e cluster (scripts/e2e.sh): a test double, not EMR.

One process hosts moto's ThreadedMotoServer, which serves every AWS API the Airflow nodes call
(S3, EMR, SSM, Secrets Manager, SES) on --host/--port, and a step-runner thread that does what
EMR's step executor would, because moto never moves a cluster or a step by itself.

Faked: the cluster (no nodes, no YARN: it stays STARTING for --cluster-start-seconds, then
WAITING, RUNNING while a step runs), HDFS (a local directory, hdfs:///x -> WORK/hdfs/x) and
``--deploy-mode cluster`` (the driver runs here, master local[2]).
Real: the step's work. ``s3-dist-cp`` copies the matching objects out of moto's S3;
``spark-submit`` runs the job with Spark 3.5.6 on Python 3.9 (EMR 7.12.0's, from
scripts/setup-emr-spark.sh), reading hdfs:/// from the local directory and s3:// from moto
through s3a. Any other step fails, saying so; none succeeds without doing its work.

Steps run one at a time per cluster, in order (StepConcurrencyLevel 1); a failed step applies
its ActionOnFailure; TerminateJobFlows cancels the running step (killing its process group)
and the pending ones. Each step's output goes to WORK/steps/<step id>.log, which a FAILED
step's FailureDetails names.

moto's EMR backend is patched (in this process only) so that RunJobFlow, AddJobFlowSteps and
TerminateJobFlows run under the runner's lock and leave state changes to the runner: moto
itself would report a new cluster WAITING at once and a first step RUNNING before anything ran.

Usage: python emr_stand_in.py --port P --work DIR --spark-venv DIR [--region us-east-1]
Prints ``emr-stand-in ready on HOST:P`` once serving; logs transitions to stderr; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.emr.exceptions import ValidationException
from moto.emr.models import ElasticMapReduceBackend, Step, emr_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

LOG = logging.getLogger("emr-stand-in")
ACTIVE = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
TICK_SECONDS = 0.2
KILL_GRACE_SECONDS = 10
ACCESS_KEY = "testing"  # moto accepts any key; s3a and boto3 need one
ERROR_LINE = re.compile(r"^(error:|\w*(Error|Exception)\b)")
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: see _die_with_stand_in
PR_SET_PDEATHSIG = 1


class StepFailed(Exception):
    """The step cannot run or did not succeed; the message is its FailureDetails message."""


def _die_with_stand_in() -> None:
    # Runs in the step's child before exec: it gets SIGTERM if the stand-in dies without
    # cleaning up (SIGKILL), since its own session puts it beyond a kill of our process group.
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the step's process group, SIGKILL whatever is left after the grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the leader, too
        # SIGKILL is asynchronous: a JVM takes a moment to die, so the stand-in does not
        # return (or exit) while its step is still alive
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
    except ProcessLookupError:
        pass


# moto models report status via properties; EMR's DescribeStep also carries FailureDetails,
# which the Airflow provider's step trigger logs (Step.Status.FailureDetails).
_moto_step_status = Step.status.fget


def _status_with_failure_details(step: Step) -> dict:
    status = _moto_step_status(step)
    if getattr(step, "failure_details", None):
        status["FailureDetails"] = step.failure_details
    return status


class StandIn:
    def __init__(self, args: argparse.Namespace) -> None:
        self.region = args.region
        self.start_seconds = args.cluster_start_seconds
        self.hdfs = (args.work / "hdfs").resolve()
        self.steps_dir = (args.work / "steps").resolve()
        venv = args.spark_venv.resolve()
        self.python = venv / "bin" / "python3.9"
        self.spark_submit = venv / "bin" / "spark-submit"
        self.spark_home = venv / "lib" / "python3.9" / "site-packages" / "pyspark"
        self.jars = sorted(str(p) for p in (venv / "jars").glob("*.jar"))
        self.endpoint = f"http://{args.host}:{args.port}"
        self.s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.ready_at: dict[str, float] = {}  # cluster id -> monotonic time it becomes WAITING
        self.since: dict[str, float] = {}  # cluster or step id -> monotonic time of its last change
        self.procs: dict[str, subprocess.Popen] = {}  # step id -> running spark-submit

    @property
    def backend(self) -> ElasticMapReduceBackend:
        return emr_backends[DEFAULT_ACCOUNT_ID][self.region]

    # ---- state changes (all under self.lock) ----

    def _set(self, obj, state: str, what: str, reason: str | None = None) -> None:
        now = time.monotonic()
        elapsed = now - self.since.get(obj.id, now)
        why = f" ({reason})" if reason else ""
        LOG.info("%s: %s -> %s after %.1fs%s", what, obj.state, state, elapsed, why)
        obj.state = state
        self.since[obj.id] = now

    @staticmethod
    def _step_name(cluster, step) -> str:
        return f"step {step.id} ({step.name}) on {cluster.id}"

    def _end_step(self, cluster, step, state: str, reason: str | None, log_file: Path | None = None):
        self._set(step, state, self._step_name(cluster, step), reason)
        step.end_date_time = utcnow()
        if reason:
            step.last_state_change_reason = reason
        if state == "FAILED":
            step.failure_details = {"Reason": "Step failed", "Message": reason, "LogFile": str(log_file)}

    def _cancel_steps(self, cluster, reason: str) -> None:
        for step in cluster.steps:
            if step.state in ("PENDING", "RUNNING"):
                self._end_step(cluster, step, "CANCELLED", reason)
                proc = self.procs.get(step.id)
                if proc:  # off the request thread: the grace period must not stall the API
                    threading.Thread(target=_kill_group, args=(proc,), daemon=True).start()

    def _terminate(self, cluster, state: str, reason: str) -> None:
        self._cancel_steps(cluster, f"cancelled: cluster {cluster.id} terminated ({reason})")
        self._set(cluster, state, f"cluster {cluster.id}", reason)
        cluster.last_state_change_reason = reason
        cluster.end_datetime = utcnow()

    # ---- moto hooks ----

    def install_hooks(self) -> None:
        cls = ElasticMapReduceBackend
        run_job_flow, add_steps, terminate = cls.run_job_flow, cls.add_job_flow_steps, cls.terminate_job_flows
        stand_in = self

        def hooked_run_job_flow(backend, **kwargs):
            with stand_in.lock:
                cluster = run_job_flow(backend, **kwargs)
                if cluster.state in ACTIVE:
                    cluster.state = "STARTING"
                    cluster.ready_datetime = None
                    for step in cluster.steps:  # steps given to RunJobFlow wait for the cluster
                        step.state, step.start_date_time = "PENDING", None
                    stand_in.ready_at[cluster.id] = time.monotonic() + stand_in.start_seconds
                    stand_in.since[cluster.id] = time.monotonic()
                    LOG.info("cluster %s (%s): STARTING", cluster.id, cluster.name)
                return cluster

        def hooked_add_steps(backend, job_flow_id, steps):
            with stand_in.lock:
                cluster = backend.clusters.get(job_flow_id)
                if cluster is not None and cluster.state not in ACTIVE:
                    # EMR's answer; moto would queue steps on a dead cluster that never run them
                    raise ValidationException(
                        "A job flow that is shutting down, terminated, or finished may not be modified."
                    )
                state = cluster.state if cluster is not None else None
                added = add_steps(backend, job_flow_id, steps)
                cluster.state = state  # moto says RUNNING at once; the runner does when one starts
                for step in added:
                    step.state, step.start_date_time = "PENDING", None
                    stand_in.since[step.id] = time.monotonic()
                    LOG.info("%s: PENDING", stand_in._step_name(cluster, step))
                return added

        def hooked_terminate(backend, job_flow_ids):
            with stand_in.lock:
                before = {i: backend.clusters[i].state for i in job_flow_ids if i in backend.clusters}
                clusters = terminate(backend, job_flow_ids)
                for cluster in clusters:
                    if before.get(cluster.id) in ACTIVE:
                        cluster.state = before[cluster.id]  # for the transition log line
                        stand_in._terminate(cluster, "TERMINATED", "Terminated by user request")
                return clusters

        cls.run_job_flow = hooked_run_job_flow
        cls.add_job_flow_steps = hooked_add_steps
        cls.terminate_job_flows = hooked_terminate
        Step.status = property(_status_with_failure_details)

    # ---- the runner ----

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            with self.lock:
                for cluster in list(self.backend.clusters.values()):
                    self._advance(cluster)

    def _advance(self, cluster) -> None:
        if cluster.state == "STARTING" and time.monotonic() >= self.ready_at.get(cluster.id, 0):
            self._set(cluster, "WAITING", f"cluster {cluster.id}")
            cluster.ready_datetime = utcnow()
        if cluster.state not in ("WAITING", "RUNNING"):
            return
        if any(step.state == "RUNNING" for step in cluster.steps):
            return
        pending = [step for step in cluster.steps if step.state == "PENDING"]
        if pending:
            step = pending[0]
            self._set(step, "RUNNING", self._step_name(cluster, step))
            step.start()
            if cluster.state != "RUNNING":
                self._set(cluster, "RUNNING", f"cluster {cluster.id}")
            threading.Thread(target=self._execute, args=(cluster, step), daemon=True).start()
        elif cluster.state == "RUNNING":
            self._set(cluster, "WAITING", f"cluster {cluster.id}")
            if cluster.steps and not cluster.keep_job_flow_alive_when_no_steps:
                self._terminate(cluster, "TERMINATED", "Steps completed")

    def _execute(self, cluster, step) -> None:
        log_file = self.steps_dir / f"{step.id}.log"
        reason = None
        try:
            with open(log_file, "w") as log:
                try:
                    self._dispatch(step, log)
                except StepFailed as err:
                    reason = str(err)
                except Exception as err:  # a stand-in bug must fail the step, never pass it
                    reason = f"EMR stand-in error: {err!r}"
                if reason:
                    print(f"emr-stand-in: step failed: {reason}", file=log)
        except OSError as err:
            reason = f"EMR stand-in cannot write the step log: {err}"
        with self.lock:
            if step.state != "RUNNING":  # cancelled meanwhile
                return
            if reason:
                self._end_step(cluster, step, "FAILED", f"{reason} (log: {log_file})", log_file)
                self._on_failure(cluster, step)
            else:
                self._end_step(cluster, step, "COMPLETED", None)

    def _on_failure(self, cluster, step) -> None:
        action = step.action_on_failure
        if action == "CANCEL_AND_WAIT":
            self._cancel_steps(cluster, f"cancelled: step {step.id} failed (ActionOnFailure CANCEL_AND_WAIT)")
        elif action in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
            self._terminate(cluster, "TERMINATED_WITH_ERRORS", f"Step {step.id} failed ({action})")

    def _dispatch(self, step, log) -> None:
        if step.jar != "command-runner.jar":
            raise StepFailed(f"the EMR stand-in runs only command-runner.jar steps, not Jar {step.jar!r}")
        args = list(step.args)
        command = args[0] if args else None
        if command == "s3-dist-cp":
            self._s3_dist_cp(step, args[1:], log)
        elif command == "spark-submit":
            self._spark_submit(step, args[1:], log)
        else:
            raise StepFailed(
                f"command-runner.jar command {command!r} is not supported by the EMR stand-in "
                "(only s3-dist-cp and spark-submit)"
            )

    # ---- path mapping ----

    def _hdfs_path(self, uri: str) -> Path:
        if not uri.startswith("hdfs:///"):
            raise StepFailed(f"only hdfs:/// paths (the default namenode) are supported, got {uri!r}")
        path = (self.hdfs / uri.removeprefix("hdfs:///")).resolve()
        if path != self.hdfs and self.hdfs not in path.parents:
            raise StepFailed(f"{uri!r} leaves the HDFS root")
        return path

    @staticmethod
    def _split_s3(uri: str) -> tuple[str, str]:
        match = re.fullmatch(r"s3a?://([^/]+)/?(.*)", uri)
        if not match:
            raise StepFailed(f"expected an s3://bucket/key URI, got {uri!r}")
        return match.group(1), match.group(2)

    def _local_arg(self, arg: str) -> str:
        if arg.startswith("hdfs://"):
            return self._hdfs_path(arg).as_uri()
        if arg.startswith("s3://"):
            return "s3a://" + arg.removeprefix("s3://")
        return arg

    # ---- the two step kinds ----

    def _s3_dist_cp(self, step, args: list[str], log) -> None:
        opts: dict[str, str] = {}
        rest = iter(args)
        for arg in rest:
            key, eq, value = arg.removeprefix("--").partition("=")
            if not arg.startswith("--") or key not in ("src", "dest", "srcPattern"):
                raise StepFailed(
                    f"s3-dist-cp argument {arg!r} is not supported by the EMR stand-in "
                    "(only --src, --dest, --srcPattern)"
                )
            opts[key] = value if eq else next(rest, "")
        if not opts.get("src") or not opts.get("dest"):
            raise StepFailed("s3-dist-cp needs --src and --dest")
        bucket, prefix = self._split_s3(opts["src"])
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # --src names a directory
        dest = self._hdfs_path(opts["dest"])
        try:
            # S3DistCp filters with Matcher.matches(): the whole s3:// URI, not a substring.
            pattern = re.compile(opts.get("srcPattern", ".*"))
        except re.error as err:
            raise StepFailed(f"s3-dist-cp: --srcPattern {opts['srcPattern']!r}: {err}") from None
        try:
            keys = [
                obj["Key"]
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for obj in page.get("Contents", [])
                if not obj["Key"].endswith("/") and pattern.fullmatch(f"s3://{bucket}/{obj['Key']}")
            ]
            if not keys:
                raise StepFailed(
                    f"s3-dist-cp: no object under s3://{bucket}/{prefix} matches --srcPattern "
                    f"{pattern.pattern!r} (matched against the whole s3:// URI, as Java's Matcher.matches())"
                )
            for key in keys:
                if step.state != "RUNNING":
                    return  # cancelled
                target = self._hdfs_path(f"{opts['dest'].rstrip('/')}/{key.removeprefix(prefix)}")
                if dest != target and dest not in target.parents:
                    raise StepFailed(f"s3-dist-cp: {key!r} would land outside {opts['dest']}")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, key, str(target))
                print(f"copied s3://{bucket}/{key} -> {target} ({target.stat().st_size} bytes)", file=log)
        except (ClientError, BotoCoreError) as err:
            raise StepFailed(f"s3-dist-cp: S3 error: {err}") from None

    def _spark_submit(self, step, args: list[str], log) -> None:
        user_conf: list[str] = []
        i = 0
        while i < len(args) and args[i].startswith("--"):
            if args[i] == "--deploy-mode" and i + 1 < len(args):
                pass  # cluster or client: either way the driver runs here (local mode)
            elif args[i] == "--conf" and i + 1 < len(args):
                user_conf += ["--conf", args[i + 1]]
            else:
                raise StepFailed(
                    f"spark-submit option {args[i]!r} is not supported by the EMR stand-in "
                    "(only --deploy-mode and --conf)"
                )
            i += 2
        if i >= len(args) or not args[i].startswith("s3://") or not args[i].endswith(".py"):
            raise StepFailed("spark-submit: the EMR stand-in runs only a PySpark job given as s3://...py")
        bucket, key = self._split_s3(args[i])
        step_dir = self.steps_dir / step.id
        step_dir.mkdir(parents=True, exist_ok=True)
        job = step_dir / Path(key).name
        try:
            self.s3.download_file(bucket, key, str(job))
        except (ClientError, BotoCoreError) as err:
            raise StepFailed(f"spark-submit: cannot download the job {args[i]}: {err}") from None
        command = [
            str(self.spark_submit),
            "--master",
            "local[2]",
            *user_conf,
            *self._spark_conf(step_dir),
            str(job),
            *(self._local_arg(a) for a in args[i + 1 :]),
        ]
        # Nothing of the caller's Python or Spark (the test venv has PySpark 4) may leak in.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith(("SPARK", "PYSPARK"))
        }
        env.update(
            SPARK_HOME=str(self.spark_home),  # the venv's Spark 3.5.6, whatever else is installed
            PYSPARK_PYTHON=str(self.python),
            PYSPARK_DRIVER_PYTHON=str(self.python),
            PATH=f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}",
        )
        with self.lock:
            if step.state != "RUNNING":
                return  # cancelled
            if self.stopping.is_set():
                raise StepFailed("the EMR stand-in is stopping")
            proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=step_dir,  # spark-warehouse/ and friends land here, not in the caller's cwd
                env=env,
                start_new_session=True,  # its own process group, killed as one
                preexec_fn=_die_with_stand_in,  # only prctl; libc was loaded before any fork
            )
            self.procs[step.id] = proc
        print(f"emr-stand-in: pid {proc.pid} PYSPARK_PYTHON={self.python} {' '.join(command)}", file=log)
        log.flush()
        code = proc.wait()
        with self.lock:
            self.procs.pop(step.id, None)
        if code != 0:
            raise StepFailed(f"spark-submit exited with code {code}{self._last_error(log.name)}")

    def _spark_conf(self, step_dir: Path) -> list[str]:
        conf = {
            "spark.ui.enabled": "false",
            "spark.driver.memory": "1g",
            # EMR sizes this from the cluster; two local cores do not need 200 shuffle tasks.
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.warehouse.dir": str(step_dir / "spark-warehouse"),
            # On the class path rather than spark.jars: local mode would copy the ~280 MB SDK
            # bundle into every job's temp dir.
            "spark.driver.extraClassPath": ":".join(self.jars),
            "spark.hadoop.fs.s3a.endpoint": self.endpoint,
            "spark.hadoop.fs.s3a.endpoint.region": self.region,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            "spark.hadoop.fs.s3a.access.key": ACCESS_KEY,
            "spark.hadoop.fs.s3a.secret.key": ACCESS_KEY,
            "spark.hadoop.fs.s3a.aws.credentials.provider": (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            ),
        }
        return [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]

    @staticmethod
    def _last_error(log_path: str) -> str:
        """The job's last error line, so the step's FailureDetails says why, not only 'exit 1'."""
        lines = Path(log_path).read_text(errors="replace").splitlines()[-200:]
        errors = [line.strip() for line in lines if ERROR_LINE.match(line.strip())]
        return f": {errors[-1][:400]}" if errors else ""

    def shutdown(self) -> None:
        self.stopping.set()
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            _kill_group(proc)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True, help="holds hdfs/ and steps/")
    parser.add_argument("--spark-venv", type=Path, required=True, help="from scripts/setup-emr-spark.sh")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--cluster-start-seconds", type=float, default=2.0)
    return parser.parse_args(argv)


def check_spark_venv(venv: Path) -> str:
    """Describe the venv's Spark and Python, or exit with one line saying what is missing."""
    for needed in ("bin/python3.9", "bin/spark-submit", ".complete"):
        if not (venv / needed).exists():
            sys.exit(f"error: {venv} has no {needed}; pass the directory scripts/setup-emr-spark.sh prints")
    jars = sorted(p.name for p in (venv / "jars").glob("*.jar"))
    if len(jars) != 2 or not any(j.startswith("hadoop-aws-") for j in jars):
        sys.exit(f"error: {venv}/jars must hold hadoop-aws and aws-java-sdk-bundle, has {jars}")
    probe = "import platform, pyspark; print('pyspark', pyspark.__version__, 'on', platform.python_version())"
    result = subprocess.run(
        [str(venv / "bin/python3.9"), "-c", probe], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        sys.exit(f"error: {venv}/bin/python3.9 cannot import pyspark: {result.stderr.strip()[-300:]}")
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s emr-stand-in %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    spark = check_spark_venv(args.spark_venv.resolve())
    for sub in ("hdfs", "steps"):
        (args.work / sub).mkdir(parents=True, exist_ok=True)
    # ThreadedMotoServer.start() waits forever when its thread cannot bind: check first.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((args.host, args.port))
        except OSError as err:
            sys.exit(f"error: cannot listen on {args.host}:{args.port}: {err.strerror}")

    stand_in = StandIn(args)
    stand_in.install_hooks()
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    runner = threading.Thread(target=stand_in.run, name="emr-step-runner", daemon=True)
    runner.start()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    LOG.info("serving AWS APIs on %s, %s, HDFS stand-in %s", stand_in.endpoint, spark, stand_in.hdfs)
    print(f"emr-stand-in ready on {args.host}:{args.port}", flush=True)
    while not stop.wait(1):
        pass
    LOG.info("stopping")
    stand_in.shutdown()
    runner.join(timeout=5)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
