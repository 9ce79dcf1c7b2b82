"""Training steps/s of the autoencoder: C (``ecgk_ae_train_*``) vs PyTorch CPU, 1 thread, the same model,
weights, batch size and optimizer (benchmarks/ctrain/steps.py). Run from the repository root after
``make -C ckernels``:

    .venv/bin/python benchmarks/ctrain/bench_ctrain.py [--steps 50] [--rounds 5] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    from benchmarks.ctrain.steps import bench, table
    from pipeline.ckernel.abi import DEFAULT_LIB
    from pipeline.config import load_params

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--model", default="autoencoder")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the model's train batch size")
    ap.add_argument("--steps", type=int, default=50, help="training steps per side per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    if not DEFAULT_LIB.is_file():
        raise SystemExit("build the C kernels first: make -C ckernels")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    row = bench(load_params(args.params), args.model, args.batch_size, args.steps, args.rounds)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown")  # fmt: skip
    import torch

    args.out.write_text(json.dumps({"cpu": cpu, "torch": torch.__version__, "row": row}, indent=2) + "\n")
    print(f"CPU: {cpu}; torch {torch.__version__}\n")
    print(table(row))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
