"""Shared pytest fixtures: the real records in ../shared/data and scratch stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
