"""A local S3 endpoint for tests and benchmarks: moto's standalone server on 127.0.0.1.

A real HTTP server in its own process (not moto's in-process mock), so that separate programs — `dvc push`
and `dvc pull` in a subprocess, s3fs in this process, a benchmark's workers — all see the same buckets.
Nothing here can reach real AWS: fixed fake credentials, the endpoint pinned to the local server, the
instance-metadata lookup and the user's AWS config files switched off.

    with moto_s3(tmp_path) as server:
        url = server.make_bucket("ecg-remote")          # "s3://ecg-remote"
        fs = server.filesystem()                         # s3fs on the server
        subprocess.run([...], env={**os.environ, **server.env()})
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import s3fs

HOST = "127.0.0.1"
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3
LOG_NAME = "moto_server.log"
# A path that can never exist (/dev/null is no folder): botocore reads a missing config file as empty, but
# /dev/null itself exists, so dvc-s3 hands it to botocore's loader, which refuses a non-regular file.
NO_FILE = str(Path(os.devnull) / "no-aws-config")
# S3 bucket naming rules (virtual-host compatible subset): 3-63 characters, lowercase letters, digits and
# hyphens, starting and ending with a letter or digit. Dots are left out: they break TLS virtual hosting.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server: ``endpoint_url`` (``http://127.0.0.1:<port>``) and its process id."""

    endpoint_url: str
    pid: int

    def env(self) -> dict[str, str]:
        """Environment variables for a child process (``dvc``, boto, s3fs) that talks to this server.

        Fake credentials and region; the endpoint for clients that honour ``AWS_ENDPOINT_URL`` (botocore
        ≥ 1.31) so that a client nobody pointed anywhere still lands here; the user's AWS config and
        credential files and the EC2 metadata service switched off so no real profile or role leaks in
        (an ``AWS_PROFILE`` inherited from the caller then fails loudly with ProfileNotFound instead of
        reaching real AWS); the local host exempt from any HTTP proxy.
        """
        inherited = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
        no_proxy = ",".join(filter(None, [inherited, HOST, "localhost"]))
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_CONFIG_FILE": NO_FILE,
            "AWS_SHARED_CREDENTIALS_FILE": NO_FILE,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs keyword arguments for this server (``fsspec.filesystem("s3", **opts)``, zarr,
        pandas ``storage_options=``)."""
        return {
            "endpoint_url": self.endpoint_url,
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "client_kwargs": {"region_name": REGION},
        }

    def filesystem(self) -> s3fs.S3FileSystem:
        """A fresh s3fs filesystem on this server with no instance or listing cache, so what it lists
        is what the server holds now (another process may have written since)."""
        import s3fs  # s3fs and boto3 take ~1.5 s to import: only the tests that talk to S3 pay it

        return s3fs.S3FileSystem(**self.storage_options(), skip_instance_cache=True, use_listings_cache=False)

    def client(self) -> Any:
        """A boto3 S3 client on this server (boto3 ships no type hints, hence ``Any``)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (a valid S3 bucket name) and return its URL, ``s3://<name>``."""
        if not BUCKET_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a valid S3 bucket name: expected 3-63 characters, lowercase letters, "
                "digits and hyphens, starting and ending with a letter or digit"
            )
        # boto3, not s3fs.mkdir: s3fs sends a LocationConstraint even for us-east-1, which S3 (and moto)
        # reject; us-east-1 is the one region whose CreateBucket takes none.
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def answers(endpoint_url: str) -> bool:
    """Whether an S3 API answers at ``endpoint_url``: a bucket listing, so that some other program that
    took the port between our probe and moto's bind is not mistaken for the server."""
    # No proxy handler: an HTTP(S)_PROXY in the environment must not see requests to the local server.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(endpoint_url, timeout=2.0) as response:
            return b"ListAllMyBucketsResult" in response.read()
    except OSError:  # refused, reset, timed out, or an HTTP error status (HTTPError is an OSError)
        return False


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log written)"


def stop(proc: subprocess.Popen[bytes], port: int) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``), reap it, and check that
    its port no longer accepts connections."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
    if port_open(port):
        raise RuntimeError(f"moto_server (pid {proc.pid}) exited but port {port} still accepts connections")


def wait_until_up(proc: subprocess.Popen[bytes], endpoint_url: str, log: Path) -> bool:
    """Poll until the server answers (True) or exits early (False, e.g. port taken); raise with the log's
    tail if it neither answers nor exits within ``START_TIMEOUT_S``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(endpoint_url):
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"moto_server (pid {proc.pid}) did not answer at {endpoint_url} within "
                f"{START_TIMEOUT_S:.0f} s; log {log}:\n{log_tail(log)}"
            )
        time.sleep(0.1)
    return True


def start(work_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``moto_server`` on a free 127.0.0.1 port, logging to ``work_dir/moto_server.log``; retry on a
    new port if another process took the chosen one between the probe and the bind."""
    log = work_dir / LOG_NAME
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(MOTO_SERVER), "-H", HOST, "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=work_dir,
            )
        try:
            if wait_until_up(proc, f"http://{HOST}:{port}", log):
                return proc, port
        except BaseException:
            stop(proc, port)
            raise
    raise RuntimeError(
        f"moto_server exited before answering on {PORT_ATTEMPTS} ports; log {log}:\n{log_tail(log)}"
    )


@contextmanager
def moto_s3(work_dir: Path) -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 for the duration of the block (log in ``work_dir``); stopped and its
    port checked closed on exit."""
    if not MOTO_SERVER.exists():
        raise RuntimeError(f"{MOTO_SERVER} not found: install moto[server] in this environment")
    work_dir.mkdir(parents=True, exist_ok=True)
    proc, port = start(work_dir)
    try:
        yield S3Server(endpoint_url=f"http://{HOST}:{port}", pid=proc.pid)
    finally:
        stop(proc, port)
