"""Moto's S3 server as the catalog and review benchmarks run it: in a child process they
start, seeded by that child, stopped by a ``quit`` line on its stdin."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "backups"


class Crash(Exception):
    """A child (the server or a measured run) failed: the run's figures mean nothing."""


def fake_aws_env(env: dict[str, str]) -> dict[str, str]:
    """Fake credentials for the test server; never the user's real ones."""
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "PGDECK_CONFIG",
        "KUBECONFIG",
    ):
        env.pop(var, None)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def s3_backend() -> Any:
    """Moto's in-process S3 backend with the bucket created (in the server child, which
    seeds it directly: through HTTP, seeding would take longer than the measurement)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").disabled = True
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    backend.create_bucket(BUCKET, REGION)
    return backend


def start_http() -> tuple[Any, str]:
    """Moto's server on a free loopback port, and its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def stop_child(server: subprocess.Popen[str]) -> None:
    """Ask the server child to quit; kill it if it does not within 10 s."""
    if server.poll() is not None:
        return
    try:
        assert server.stdin is not None
        server.stdin.write("quit\n")
        server.stdin.flush()
        server.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_proxy(
    upstream: str, env: dict[str, str], delay_ms: float = 0.0
) -> tuple[subprocess.Popen[str], str]:
    """The counting proxy (``_s3proxy.py``) in its own child process, in front of
    ``upstream``: the measured runs reach S3 through it. Stopped by ``stop_proxy``."""
    proxy = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_s3proxy.py")), "--upstream", upstream]
        + ["--delay-ms", str(delay_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proxy.stdout is not None
    line = proxy.stdout.readline()
    if not line:
        raise Crash("the counting proxy exited before printing its URL")
    return proxy, json.loads(line)["url"]


def stop_proxy(proxy: subprocess.Popen[str]) -> None:
    if proxy.poll() is not None:
        return
    try:
        assert proxy.stdin is not None
        proxy.stdin.close()
        proxy.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        proxy.kill()
        proxy.wait()
