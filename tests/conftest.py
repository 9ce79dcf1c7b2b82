"""Shared pytest fixtures: the real records in ../shared/data and scratch stores."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.s3_server import S3Server

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ECGPIPE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real public ECG records (``../shared/data``; see its SOURCES.md).

    In CI (``CI`` set) a missing folder is a failure, never a silent skip.
    """
    if not (SHARED_DATA / "SOURCES.md").exists():
        msg = f"real ECG records not found at {SHARED_DATA} (set ECGPIPE_SHARED_DATA)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch ops in this process on one thread (use with ``pytestmark``): on a shared 2-core box, a
    second intra-op thread competing with other processes makes tiny models train tens of times
    slower (OpenMP threads wait on each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sigkill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout_s: float, log: Path, never: str
) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it exits first (showing the tail of ``log``)
    or if ``timeout_s`` passes (saying ``never``). The child never outlives the call."""
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert proc.poll() is None, f"the child exited before the kill point:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, never
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CKERNELS = REPO_ROOT / "ckernels"


def make_ckernels(*targets: str) -> Path:
    """Run ``make -C ckernels <targets>`` (incremental) and return the build folder; a failed build
    fails the calling test with make's own output."""
    proc = subprocess.run(
        ["make", "-C", str(CKERNELS), *targets], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"make -C ckernels {' '.join(targets)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return CKERNELS / "build"


@pytest.fixture(scope="session")
def ckernels_build() -> Path:
    """The C library, runner and C tests, built once per session (``ckernels/build``)."""
    return make_ckernels("all")


@pytest.fixture(scope="session")
def reproduced_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shrunken clone of this repository with `dvc repro` run once (tests/pipeline_repo.py).

    Shared by every pipeline-level test module; a test that changes files works on
    ``pipeline_repo.copy_of(reproduced_repo, ...)``, never on this one.
    """
    from tests.pipeline_repo import build

    return build(tmp_path_factory.mktemp("reproduced") / "repo")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server on 127.0.0.1 for the session (tests/s3_server.py); stopped at the end.

    Buckets are shared across the session: a test makes its own uniquely named one."""
    from tests.s3_server import moto_s3

    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server
