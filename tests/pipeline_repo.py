"""A shrunken copy of this repository with `dvc repro` run once, shared by the pipeline-level tests.

Built from the files git would put in a fresh clone (tracked plus untracked-but-not-ignored, so
work in progress is tested too), with params shrunk so the whole graph runs in a few minutes. Real
DVC, real Prefect (a temporary local server per `ecgpipe ingest`), real training.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SMALL: dict[str, Any] = {
    "demo": {"n_ptbxl": 48, "n_cinc2017": 48, "n_ucr": 90},
    "evaluate": {"bootstrap": 20, "n_strips": 2},
    "export": {"calibration_records": 16, "latency_warmup": 1, "latency_repeats": 5},
}
MODEL_SMALL: dict[str, dict[str, Any]] = {
    "resnet": {"epochs": 1, "model": {"widths": [8, 16], "kernel_size": 7, "dropout": 0.0}},
    "autoencoder": {"epochs": 2},
    "crnn": {"epochs": 1, "model": {"conv_channels": [8, 16], "rnn_hidden": 16}},
}


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This interpreter's tools first on PATH; no inherited Prefect API (each test picks its own)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(extra or {})}
    if not extra or "PREFECT_API_URL" not in extra:
        env.pop("PREFECT_API_URL", None)
    return env


def run(
    args: list[str], cwd: Path, timeout: int = 900, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd``; a non-zero exit fails with the tail of its output."""
    proc = subprocess.run(
        args, cwd=cwd, env=tool_env(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def shrink(params_path: Path) -> None:
    params = yaml.safe_load(params_path.read_text())
    for section, values in SMALL.items():
        params[section].update(values)
    for name, values in MODEL_SMALL.items():
        m = params["train"]["models"][name]
        m.update({k: v for k, v in values.items() if k != "model"})
        m["model"].update(values.get("model", {}))
        m["warmup_epochs"] = 0
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def clone_files(root: Path) -> None:
    """Copy what a fresh clone would hold after ``make install`` (no outputs, no dvc.lock) into ``root``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for rel in listed.splitlines():
        src = REPO / rel
        if rel == "dvc.lock" or rel.startswith("provenance/") or not src.is_file():
            continue
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    # and what `make install` builds in place: the compiled extensions (git-ignored), which a process
    # started in the copy (a Prefect deployment's flow run imports `pipeline` from its working folder)
    # needs as much as the checkout does
    for built in (REPO / "pipeline").rglob("*.so"):
        dst = root / built.relative_to(REPO)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, dst)


def build(root: Path) -> Path:
    """A shrunken clone at ``root``, committed to a fresh git repo, with `dvc repro` run once."""
    clone_files(root)
    shrink(root / "params.yaml")
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    run(["dvc", "repro"], root)
    return root


def copy_of(built: Path, dest: Path) -> Path:
    """An independent copy of a built repo (git, DVC cache, outputs) for a test that changes it."""
    shutil.copytree(built, dest, symlinks=True)
    return dest
