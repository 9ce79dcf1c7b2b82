"""Write the torch goldens of the C kernel tests (``ckernels/tests/golden/*.txt``).

Usage: ``.venv/bin/python scripts/ckernel_goldens.py [--out DIR]`` (default ``ckernels/tests/golden``).

Every case is drawn from a fixed seed and computed by torch (CPU, one thread, float32, eval semantics), so
a rerun with the same torch gives byte-identical files. Each file's first line records the command that
made it and the torch / numpy versions. ``ckernels/tests/test_kernels.c`` reads the files (format below),
runs the C kernel on the inputs and compares with the torch output.

Format, one case after another::

    case <name> <kernel>
    int <key> <value>                  (integer parameters, any number)
    float <key> <value>
    tensor <name> <ndim> <d0> ... <dn-1>
    <values, float32 printed with 9 significant digits (round-trips exactly), 8 per line>
    end

Inputs are named as in the header (x, w, b, ...); the expected output is ``y`` (``h`` for the RNNs). A
missing bias is simply an absent ``b`` tensor.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from ckernel_golden_cases import (
    Case,
    conv1d_cases,
    conv2d_cases,
    conv_transpose1d_cases,
    elementwise_cases,
    linear_cases,
    pool_cases,
    rnn_cases,
)

F32 = npt.NDArray[np.float32]
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "ckernels" / "tests" / "golden"


# ---------------------------------------------------------------- output


def _fmt(v: float) -> str:
    return format(v, ".9g")


def render(case: Case) -> list[str]:
    """The text lines of one case (see the module docstring)."""
    lines = [f"case {case.name} {case.kernel}"]
    lines += [f"int {k} {v}" for k, v in case.ints.items()]
    lines += [f"float {k} {_fmt(v)}" for k, v in case.floats.items()]
    for name, a in case.tensors.items():
        lines.append(f"tensor {name} {a.ndim} {' '.join(str(d) for d in a.shape)}")
        flat = [_fmt(float(v)) for v in a.ravel()]
        lines += [" ".join(flat[i : i + 8]) for i in range(0, len(flat), 8)]
    lines.append("end")
    return lines


def command_line(argv: list[str]) -> str:
    """The command as typed from the repository root (the interpreter relative to it when inside)."""
    exe = Path(sys.executable)
    shown = os.path.relpath(exe, REPO) if exe.is_relative_to(REPO) else str(exe)
    return shlex.join([shown, "scripts/ckernel_goldens.py", *argv])


def write(path: Path, cases: list[Case], argv: list[str]) -> None:
    header = f"# made by: {command_line(argv)}  (torch {torch.__version__}, numpy {np.__version__})"
    lines = [header]
    for case in cases:
        lines += render(case)
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the golden files")
    args = parser.parse_args(args_list)
    torch.set_num_threads(1)  # one thread: the same summation order on every run
    args.out.mkdir(parents=True, exist_ok=True)
    families: dict[str, Callable[[], list[Case]]] = {
        "conv1d": lambda: conv1d_cases(np.random.default_rng(1)),
        "conv_transpose1d": lambda: conv_transpose1d_cases(np.random.default_rng(2)),
        "conv2d": lambda: conv2d_cases(np.random.default_rng(3)),
        "linear": lambda: linear_cases(np.random.default_rng(4)),
        "elementwise": lambda: elementwise_cases(np.random.default_rng(5)),
        "pool": lambda: pool_cases(np.random.default_rng(6)),
        "rnn": rnn_cases,
    }
    for family, make in families.items():
        cases = make()
        path = args.out / f"{family}.txt"
        write(path, cases, args_list)
        print(f"{path}: {len(cases)} cases, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
