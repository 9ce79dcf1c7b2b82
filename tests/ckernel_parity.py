"""Shared by the C kernel tests: the library built once per session, and the parity rule
``|c - t| <= 1e-5 + 1e-4 |t|`` element-wise against torch."""

from __future__ import annotations

import functools
import subprocess

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import Tensor

from pipeline.ckernel.abi import DEFAULT_LIB, REPO_ROOT
from pipeline.ckernel.lib import CKernels

F32 = npt.NDArray[np.float32]
ATOL = 1e-5
RTOL = 1e-4


@functools.cache
def built_kernels() -> CKernels:
    """The freshly built kernels (make's output shown when the build fails); built once per session."""
    proc = subprocess.run(
        ["make", "-C", str(REPO_ROOT / "ckernels")], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"make -C ckernels failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return CKernels(DEFAULT_LIB)


def assert_close(c: F32, t: Tensor | F32, what: str) -> None:
    """Parity rule, with the worst element named on failure."""
    ref = t.detach().numpy() if isinstance(t, Tensor) else t
    assert c.shape == ref.shape, f"{what}: shape {c.shape} vs torch {ref.shape}"
    err = np.abs(c.astype(np.float64) - ref)
    bad = ~((err <= ATOL + RTOL * np.abs(ref)) | (c == ref))
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), c.shape)
        pytest.fail(f"{what}: {int(bad.sum())} elements off, worst at {i}: c={c[i]!r} torch={ref[i]!r}")


def randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> F32:
    out: F32 = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def t_(a: F32) -> Tensor:
    return torch.from_numpy(a)


def maybe_bias(rng: np.random.Generator, n: int) -> F32 | None:
    return randn(rng, n) if rng.random() < 0.7 else None
