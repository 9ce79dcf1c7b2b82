"""Security (a): a checkpoint whose pickle would run code is refused by ``load_checkpoint`` and by
every CLI command that loads a model, and the code never runs (its marker file is never written).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pipeline.cli.main import main
from pipeline.training.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint
from tests.security_support import BIN, REPO

# --------------------------------------------------------------------------- (a) checkpoints


class _RunsCode:
    """Pickles as ``os.system(<command>)``: unpickling it without ``weights_only`` runs a shell."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, (self.command,)


def _evil_checkpoint(path: Path, marker: Path, style: str) -> Path:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "model": {},
        "card": _RunsCode(f"echo pwned > '{marker}'"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if style == "torch":
        torch.save(payload, path)
    else:  # a plain (legacy) pickle file, as someone might hand over from outside the pipeline
        path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


@pytest.mark.parametrize("style", ["torch", "pickle"])
def test_the_payload_really_runs_code_when_loaded_unsafely(tmp_path: Path, style: str) -> None:
    # Control: without this, a refusal below could be a payload that simply does nothing.
    marker = tmp_path / "marker"
    path = _evil_checkpoint(tmp_path / "evil.pt", marker, style)
    # the unsafe load the pipeline must never do; a plain pickle then fails torch's magic-number check
    with contextlib.suppress(RuntimeError):
        torch.load(path, weights_only=False)
    assert marker.read_text().strip() == "pwned"


@pytest.mark.parametrize("style", ["torch", "pickle"])
def test_load_checkpoint_refuses_a_code_running_pickle_and_never_runs_it(tmp_path: Path, style: str) -> None:
    marker = tmp_path / "marker"
    path = _evil_checkpoint(tmp_path / "evil.pt", marker, style)
    with pytest.raises(
        CheckpointError, match=r"evil\.pt: refused, not loadable with torch\.load\(weights_only"
    ):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with the shipped params.yaml (paths resolve inside it)."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy2(REPO / "params.yaml", folder / "params.yaml")
    return folder


@pytest.mark.parametrize("command", ["evaluate", "export", "cexport", "parity"])
@pytest.mark.parametrize("model", ["resnet", "crnn"])
def test_every_cli_command_loading_a_trained_model_refuses_a_code_running_checkpoint(
    project: Path, command: str, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = project / "marker"
    evil = _evil_checkpoint(project / "models" / model / "best.pt", marker, "torch")
    try:
        rc: int | None = main([command, model, "--params", str(project / "params.yaml")])
    except CheckpointError as exc:
        rc, message = None, str(exc)
    else:
        message = capsys.readouterr().err
    assert rc != 0
    assert str(evil) in message and "weights_only" in message
    assert not marker.exists()


def test_predict_refuses_a_code_running_checkpoint_given_as_an_argument(project: Path) -> None:
    marker = project / "marker"
    evil = _evil_checkpoint(project / "evil.pt", marker, "pickle")
    inputs = project / "in"
    inputs.mkdir()
    (inputs / "rec.hea").write_text("rec 1 500 2\nrec.dat 16 1000/mV 16 0 0 0 0 I\n")
    (inputs / "rec.dat").write_bytes(b"\x01\x00\x02\x00")
    proc = subprocess.run(
        [str(BIN / "ecgpipe"), "predict", "--model", str(evil), str(inputs), "--out", str(project / "out")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(evil) in proc.stderr and "weights_only" in proc.stderr
    assert not marker.exists() and not (project / "out").exists()
