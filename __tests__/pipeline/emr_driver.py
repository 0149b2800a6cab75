"""Drives EMR steps in the moto server's backend, the way EMR itself would move them.

moto never moves a step on its own: the first step of a cluster is created RUNNING, later ones
PENDING, and they stay so forever; EMR steps are not among the models moto's state manager
(/moto-api/state-manager) can advance. So this thread works on the in-process backend
(moto.emr.models.emr_backends) that the ThreadedMotoServer serves: it holds each RUNNING step
for ``hold_seconds`` (long enough for the sensors to see RUNNING and defer), then finishes it
COMPLETED, or FAILED if its name is in ``fail_steps``, and starts the next PENDING step, like
EMR with StepConcurrencyLevel 1.

moto registers a cluster in ``backend.clusters`` at the top of ``Cluster.__init__``, before its
state and steps exist, and the server answers requests on other threads. So the driver wraps
RunJobFlow, AddJobFlowSteps and TerminateJobFlows in its own lock: it only ever sees whole
clusters. An error on a tick is kept in ``errors`` (the ``emr`` fixture fails the test on it)
instead of ending the thread, which would leave every sensor waiting for its timeout.
"""

from __future__ import annotations

import threading
import traceback
from datetime import UTC, datetime

from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import ElasticMapReduceBackend, emr_backends

ACTIVE_CLUSTER_STATES = {"STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"}


class EmrStepDriver(threading.Thread):
    def __init__(self, region: str, hold_seconds: float = 2.0, tick: float = 0.25) -> None:
        super().__init__(name="emr-step-driver", daemon=True)
        self.region = region
        self.hold_seconds = hold_seconds
        self.tick = tick
        self.fail_steps: set[str] = set()
        self.finished: list[tuple[str, str]] = []  # (step name, final state), in order
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._lock = threading.RLock()
        self._wrap_backend_calls()

    def _wrap_backend_calls(self) -> None:
        lock = self._lock

        def locked(method):
            def call(backend, *args, **kwargs):
                with lock:
                    return method(backend, *args, **kwargs)

            call.emr_driver_original = method
            return call

        for name in ("run_job_flow", "add_job_flow_steps", "terminate_job_flows"):
            method = getattr(ElasticMapReduceBackend, name)
            setattr(ElasticMapReduceBackend, name, locked(getattr(method, "emr_driver_original", method)))

    @property
    def backend(self):
        return emr_backends[DEFAULT_ACCOUNT_ID][self.region]

    def reset(self) -> None:
        with self._lock:
            self.fail_steps = set()
            self.finished = []
            self.errors = []

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stop_event.wait(self.tick):
            with self._lock:
                for cluster in list(self.backend.clusters.values()):
                    try:
                        if cluster.state in ACTIVE_CLUSTER_STATES:
                            self._advance(cluster)
                    except Exception:  # noqa: BLE001 - kept for the test to report; the thread goes on
                        self.errors.append(f"cluster {cluster.id}: {traceback.format_exc()}")

    def _advance(self, cluster) -> None:
        now = datetime.now(UTC)
        running = [s for s in cluster.steps if s.state == "RUNNING"]
        for step in running:
            if step.start_date_time is None:
                step.start()
                continue
            started = step.start_date_time
            if started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            if (now - started).total_seconds() < self.hold_seconds:
                continue
            step.state = "FAILED" if step.name in self.fail_steps else "COMPLETED"
            step.end_date_time = now
            if step.state == "FAILED":
                step.last_state_change_reason = f"step {step.name} failed (test driver)"
            self.finished.append((step.name, step.state))
        if not any(s.state == "RUNNING" for s in cluster.steps):
            pending = [s for s in cluster.steps if s.state == "PENDING"]
            if pending:
                pending[0].state = "RUNNING"
                pending[0].start()
            elif cluster.state == "RUNNING":
                cluster.state = "WAITING"
