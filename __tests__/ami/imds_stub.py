"""A loopback stand-in for the two AWS endpoints moto cannot play for the worker drain:

- IMDSv2: PUT /latest/api/token, then GET /latest/meta-data/... only with that token
  (401 without it, as on an instance with http_tokens=required). The lifecycle state is
  read from a file on every request, so a test flips it while the stub runs.
- Auto Scaling CompleteLifecycleAction (moto 5.2.5 does not implement it): the AWS CLI's
  Query-protocol POST is recorded as one JSON line (form fields + time) and answered with
  the API's XML response.

    python imds_stub.py STATE_DIR   # writes STATE_DIR/port once listening on 127.0.0.1
STATE_DIR holds: lifecycle-state, instance-id, optional asg-tag (absent -> tag 404, like
an instance without metadata tags), optional spot-instance-action and rebalance (the Spot
interruption notice and rebalance recommendation bodies; absent -> 404, as without one),
optional fail-complete (-> a ValidationError answer); requests.jsonl is written.
Tests start it with serving(), write the instance's files with write_instance(), read what it
received with recorded(), and put the instance in a moto group with moto_autoscaling_group().
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

TOKEN = "stub-imds-token"  # noqa: S105 - a test token, not a credential
STATE: Path


@contextlib.contextmanager
def serving(state: Path, timeout_seconds: float = 30):
    """This stub in a child process on STATE (created if absent); yields its base URL."""
    state.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(state)])
    try:
        deadline = time.monotonic() + timeout_seconds
        while not (state / "port").is_file():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"IMDS stub on {state} not listening after {timeout_seconds}s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{(state / 'port').read_text()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def recorded(state: Path) -> list[dict]:
    """Every request the stub received on STATE, in order: {"imds": path} or {"api": form}."""
    path = state / "requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def write_instance(
    state: Path, instance_id: str, group: str | None = None, lifecycle_state: str | None = None
) -> None:
    """The instance the stub serves from `state`: its id, group tag (None: no metadata tag)
    and lifecycle state (None: left as it is)."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "instance-id").write_text(instance_id)
    if group is not None:
        (state / "asg-tag").write_text(group)
    if lifecycle_state is not None:
        (state / "lifecycle-state").write_text(lifecycle_state)


def moto_autoscaling_group(moto_url: str, name: str, region: str = "us-east-1"):
    """A moto Auto Scaling group `name` of exactly one instance (zone <region>a); returns the
    autoscaling client. moto's dummy credentials."""
    import boto3

    kw = {"region_name": region, "endpoint_url": moto_url, "aws_access_key_id": "test"}
    kw["aws_secret_access_key"] = "test"
    ec2 = boto3.client("ec2", **kw)
    autoscaling = boto3.client("autoscaling", **kw)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": image})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        AvailabilityZones=[f"{region}a"],
    )
    return autoscaling


def _read(name: str) -> str | None:
    path = STATE / name
    return path.read_text().strip() if path.is_file() else None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: str, ctype: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, entry: dict) -> None:
        with open(STATE / "requests.jsonl", "a") as fh:
            fh.write(json.dumps({**entry, "time": time.time()}) + "\n")

    def do_PUT(self):
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._send(400, "bad token request")
        self._record({"imds": "token"})
        return self._send(200, TOKEN)

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self._send(401, "")
        self._record({"imds": self.path})
        values = {
            "/latest/meta-data/autoscaling/target-lifecycle-state": _read("lifecycle-state"),
            "/latest/meta-data/instance-id": _read("instance-id"),
            "/latest/meta-data/tags/instance/aws:autoscaling:groupName": _read("asg-tag"),
            "/latest/meta-data/placement/region": "us-east-1",
            "/latest/meta-data/spot/instance-action": _read("spot-instance-action"),
            "/latest/meta-data/events/recommendations/rebalance": _read("rebalance"),
        }
        value = values.get(self.path)
        return self._send(200, value) if value else self._send(404, "Not Found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        self._record({"api": form})
        ns = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
        if form.get("Action") != "CompleteLifecycleAction" or _read("fail-complete"):
            return self._send(
                400,
                f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
                "<Message>No active Lifecycle Action found with instance ID i-x</Message></Error>"
                "<RequestId>stub</RequestId></ErrorResponse>",
                "text/xml",
            )
        return self._send(
            200,
            f'<CompleteLifecycleActionResponse xmlns="{ns}"><CompleteLifecycleActionResult/>'
            "<ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>",
            "text/xml",
        )


def main() -> None:
    global STATE
    STATE = Path(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    (STATE / "port.tmp").write_text(str(server.server_address[1]))
    (STATE / "port.tmp").rename(STATE / "port")
    server.serve_forever()


if __name__ == "__main__":
    main()
