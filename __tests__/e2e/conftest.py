"""The one local cluster every e2e test module shares (scripts/e2e.sh --up): booting it costs
about 3.5 minutes, so it is started once per session and stopped at its end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import e2e_cluster as ec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster():
    # E2E_WORK=<work dir of `e2e.sh --up`> runs the suite on a kept cluster and leaves it up
    if os.environ.get("E2E_WORK"):
        yield ec.Cluster(Path(os.environ["E2E_WORK"]))
        return
    # stderr (progress, and the logs of a failed start) goes straight to the test log
    up = subprocess.run(["bash", "scripts/e2e.sh", "--up"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert up.returncode == 0, "scripts/e2e.sh --up failed (its log is above)"
    work = Path(up.stdout.strip().splitlines()[-1])
    try:
        yield ec.Cluster(work)
    finally:
        subprocess.run(["bash", "scripts/e2e.sh", "--down", str(work)], cwd=ROOT, check=True)
