"""Fixtures for the AMI bootstrap tests: the repository's settings contract and nodes
rooted in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packer" / "files" / "bootstrap"))

from airflow_node import contract as contract_mod  # noqa: E402
from airflow_node.settings import load_node  # noqa: E402
from ami_support import CONTRACT_FILE, free_port  # noqa: E402
from imds_stub import serving  # noqa: E402


@pytest.fixture(scope="session")
def contract():
    return contract_mod.load(CONTRACT_FILE)


@pytest.fixture
def make_node(tmp_path, contract):
    """make_node(role=..., **extra node.env keys) -> Node rooted in tmp_path."""

    def make(role: str = "scheduler", **extra: str):
        env = {
            "AIRFLOW_ROLE": role,
            "AIRFLOW_PARAMETER_PREFIX": "/airflow/dev",
            "AIRFLOW_SECRET_PREFIX": "airflow/dev",
            "AWS_REGION": "us-east-1",
            "AIRFLOW_SETTINGS_REVISION": "rev-1",
            "AIRFLOW_NODE_ROOT": str(tmp_path / "root"),
            **extra,
        }
        path = tmp_path / "node.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        return load_node(path, contract)

    return make


# --- a moto server on loopback, for the AWS CLI ---------------------------------------

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def moto_url(tmp_path):
    if shutil.which("aws") is None:
        pytest.skip("AWS CLI not installed")
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)  # noqa: S310 - loopback only
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the loopback IMDSv2 stub (imds_stub.py) ------------------------------------------


@pytest.fixture
def imds(tmp_path):
    """(state dir, URL) of a running IMDS stub; tests write instance metadata into state."""
    state = tmp_path / "imds"
    with serving(state) as url:
        yield state, url
