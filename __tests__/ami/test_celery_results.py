"""The Celery result backend the renderer selects, on a real Redis: Airflow's scheduler reads
task states with one mget per loop, and that read must wait for a restarting Redis instead of
raising out of the scheduler loop."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
from airflow_node.render import RESULT_BACKEND_CLASS
from ami_support import free_port
from celery import Celery


def _redis(port: int, tmp_path):
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )


def _backend(port: int, policy: dict):
    app = Celery(
        "t",
        result_backend=f"{RESULT_BACKEND_CLASS}+redis://127.0.0.1:{port}/1",
        result_backend_transport_options={"retry_policy": policy},
    )
    return app.backend


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_state_read_waits_for_a_restarting_redis(tmp_path):
    port = free_port()
    server = _redis(port, tmp_path)
    try:
        backend = _backend(
            port, {"max_retries": 30, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
        )
        assert type(backend).__name__ == "RetryingRedisBackend"
        backend.set(backend.get_key_for_task("t1"), b"stored")
        # WHEN Redis goes away and comes back 3 s later, during a state read
        server.terminate()
        server.wait(timeout=10)
        threading.Timer(3, lambda: globals().__setitem__("_restarted", _redis(port, tmp_path))).start()
        started = time.monotonic()
        values = backend.mget([backend.get_key_for_task("t1")])
        # THEN the read waited for it (the data is gone with --save "", the call did not raise)
        assert time.monotonic() - started >= 2
        assert values == [None]
    finally:
        server.kill()
        restarted = globals().pop("_restarted", None)
        if restarted is not None:
            restarted.kill()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_state_read_gives_up_after_its_retry_policy():
    # GIVEN no Redis at all, THEN the read fails once the policy's retries are spent (it is
    # a wait, not a hang)
    backend = _backend(
        free_port(), {"max_retries": 2, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
    )
    with pytest.raises(Exception, match="(?i)connect"):
        backend.mget([backend.get_key_for_task("t1")])
