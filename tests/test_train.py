"""The training loop on a tiny model: exact resumption after SIGKILL, checkpoints, dvclive (early
stopping, weights, accumulation, schedule and tasks: ``test_train_rules.py``).

The model and data here are the test's own (a small conv net, random tensors): the loop is
written against plain ``nn.Module`` and ``(x, y)`` iterables. CUDA paths (AMP, GradScaler,
non_blocking copies) cannot run here: no GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from pipeline.training.checkpoint import TEMP_SUFFIX, TEST_PAUSE_ENV, CheckpointError, load_checkpoint
from pipeline.training.loop import BEST, LATEST
from pipeline.training.options import ResumeMismatch, TrainConfig
from tests.conftest import sigkill_when
from tests.train_support import CFG, LINEAGE, REPO, never_called, train_tiny


@dataclass(frozen=True)
class _Result:
    """What the tests read of a ``TrainResult`` made in a child process (JSON round trip is exact)."""

    history: tuple[dict[str, float], ...]
    best_epoch: int
    best_value: float
    resumed_from_epoch: int | None
    epochs_completed: int


def _result_path(out_dir: Path) -> Path:
    return out_dir.parent / f"{out_dir.name}-result.json"


def _child_main(out_dir: str, mode: str) -> None:
    """Entry point of the training subprocesses.

    Every run the tests compare bit for bit happens in a fresh interpreter, so no state left in
    the pytest process by other tests (thread settings, RNG, deterministic flags) can make an
    uninterrupted and a resumed run differ.
    """

    def on_epoch(epoch: int) -> None:
        if mode == "block-before-epoch-3" and epoch == 2:
            time.sleep(300)
        if mode == "slow-write-in-epoch-2" and epoch == 1:
            os.environ[TEST_PAUSE_ENV] = "300"

    _, result = train_tiny(Path(out_dir), on_epoch=on_epoch)
    summary = {
        "history": [dict(h) for h in result.history],
        "best_epoch": result.best_epoch,
        "best_value": result.best_value,
        "resumed_from_epoch": result.resumed_from_epoch,
        "epochs_completed": result.epochs_completed,
    }
    _result_path(Path(out_dir)).write_text(json.dumps(summary))


def _train_in_child(out_dir: Path) -> _Result:
    """Train (or resume) to the end in a fresh interpreter; returns its result."""
    code = "import sys; from tests.test_train import _child_main; _child_main(sys.argv[1], sys.argv[2])"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out_dir), "run"], cwd=REPO, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    data = json.loads(_result_path(out_dir).read_text())
    return _Result(**{**data, "history": tuple(data["history"])})


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Result]:
    """An uninterrupted 4-epoch run, in a fresh interpreter like the runs compared with it."""
    out = tmp_path_factory.mktemp("reference") / "run"
    return out, _train_in_child(out)


def _kill_when(out_dir: Path, mode: str, ready: Callable[[], bool]) -> None:
    """Run ``_child_main`` in a subprocess and SIGKILL it as soon as ``ready()``."""
    code = "import sys; from tests.test_train import _child_main; _child_main(sys.argv[1], sys.argv[2])"
    err_path = out_dir.parent / f"{out_dir.name}-stderr.txt"
    with err_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, str(out_dir), mode], cwd=REPO, stderr=err)
        sigkill_when(proc, ready, 90, err_path, "child never reached the kill point")


def _latest_epoch(out_dir: Path) -> int | None:
    try:
        return int(load_checkpoint(out_dir / LATEST)["epoch"])
    except CheckpointError:
        return None


def _assert_same_run(out_dir: Path, result: _Result, reference: tuple[Path, _Result]) -> None:
    ref_dir, ref_result = reference
    got, want = load_checkpoint(out_dir / LATEST), load_checkpoint(ref_dir / LATEST)
    # bitwise (hence within 1e-6): weights, optimizer, scheduler, early stopping, RNG, history
    for key in sorted(set(want) - {"code"}):
        _assert_identical(got[key], want[key], key)
    assert result.history == ref_result.history
    assert result.best_epoch == ref_result.best_epoch and result.best_value == ref_result.best_value
    tsv = (out_dir / "live" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()
    assert tsv == (ref_dir / "live" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()


def _assert_identical(got: object, want: object, where: str) -> None:
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and torch.equal(got, want), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for key in want:
            _assert_identical(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_identical(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_sigkill_after_epoch_2_then_resume_gives_the_uninterrupted_weights_and_metrics(
    tmp_path: Path, reference: tuple[Path, _Result]
) -> None:
    out = tmp_path / "run"
    _kill_when(out, "block-before-epoch-3", lambda: _latest_epoch(out) == 2)
    killed = load_checkpoint(out / LATEST)
    assert killed["epoch"] == 2 and not killed["finished"]
    result = _train_in_child(out)
    assert result.resumed_from_epoch == 2 and result.epochs_completed == 4
    _assert_same_run(out, result, reference)


def test_sigkill_during_a_checkpoint_write_then_resume_loses_nothing(
    tmp_path: Path, reference: tuple[Path, _Result]
) -> None:
    out = tmp_path / "run"

    def writing_epoch_2() -> bool:
        # a temp file with bytes in it while latest.pt holds epoch 1: the paused epoch-2 write
        return _latest_epoch(out) == 1 and any(p.stat().st_size > 0 for p in out.glob(f".*{TEMP_SUFFIX}"))

    _kill_when(out, "slow-write-in-epoch-2", writing_epoch_2)
    assert list(out.glob(f".*{TEMP_SUFFIX}"))
    assert load_checkpoint(out / LATEST)["epoch"] == 1  # the torn write never replaced it
    assert load_checkpoint(out / BEST)["epoch"] == 1
    result = _train_in_child(out)
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))
    assert result.resumed_from_epoch == 1
    _assert_same_run(out, result, reference)


def test_checkpoints_load_with_weights_only_and_carry_config_lineage_and_rng(
    reference: tuple[Path, _Result],
) -> None:
    ref_dir, result = reference
    for name in (LATEST, BEST):
        ckpt = torch.load(ref_dir / name, weights_only=True)
        assert ckpt["config"] == CFG.to_dict() and TrainConfig.from_dict(ckpt["config"]) == CFG
        assert ckpt["lineage"] == LINEAGE
        assert set(ckpt["code"]) >= {"git_commit", "git_dirty", "created_utc", "torch_version"}
        assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
        assert {"model", "optimizer", "scheduler", "scaler", "early_stopping"} <= set(ckpt)
    latest = load_checkpoint(ref_dir / LATEST)
    assert latest["epoch"] == 4 and latest["finished"] and latest["history"] == list(result.history)
    assert load_checkpoint(ref_dir / BEST)["epoch"] == result.best_epoch


def test_dvclive_writes_metrics_json_and_one_tsv_row_per_1_based_epoch(
    reference: tuple[Path, _Result],
) -> None:
    ref_dir, result = reference
    summary = json.loads((ref_dir / "live" / "metrics.json").read_text())
    assert summary["step"] == len(result.history) == 4  # the last epoch, counted from 1
    assert summary["best_epoch"] == result.best_epoch
    assert summary["val_loss"] == result.history[-1]["val_loss"]
    assert summary["best_val_loss"] == result.best_value
    plots = ref_dir / "live" / "plots" / "metrics"
    assert {p.name for p in plots.iterdir()} == {
        "train_loss.tsv",
        "val_loss.tsv",
        "lr.tsv",
        "val_accuracy.tsv",
    }
    rows = (plots / "val_accuracy.tsv").read_text().splitlines()
    assert rows[0] == "step\tval_accuracy"
    assert [r.split("\t") for r in rows[1:]] == [
        [str(i), str(h["val_accuracy"])] for i, h in enumerate(result.history, start=1)
    ]  # step = epoch number, counted from 1 as in the console log


def test_a_finished_run_resumes_to_the_same_result_without_training(
    tmp_path: Path, reference: tuple[Path, _Result]
) -> None:
    ref_dir, ref_result = reference
    out = tmp_path / "copy"
    out.mkdir()
    for name in (LATEST, BEST):
        (out / name).write_bytes((ref_dir / name).read_bytes())

    model, result = train_tiny(out, on_epoch=never_called)
    assert result.history == ref_result.history and result.resumed_from_epoch == 4
    assert (result.best_epoch, result.best_value) == (ref_result.best_epoch, ref_result.best_value)
    want = load_checkpoint(ref_dir / LATEST)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in want.items())
    assert len((out / "live" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()) == 5


def test_resuming_with_another_config_is_refused_and_resume_false_starts_over(
    tmp_path: Path, reference: tuple[Path, _Result]
) -> None:
    ref_dir, _ = reference
    out = tmp_path / "copy"
    out.mkdir()
    (out / LATEST).write_bytes((ref_dir / LATEST).read_bytes())
    (out / BEST).write_bytes((ref_dir / BEST).read_bytes())
    changed = TrainConfig(**{**CFG.__dict__, "lr": 1e-3, "epochs": 1})
    with pytest.raises(ResumeMismatch, match=r"latest\.pt: written by a different run.*config\.lr"):
        train_tiny(out, cfg=changed)
    _, result = train_tiny(out, resume=False, cfg=changed)
    assert result.resumed_from_epoch is None and result.epochs_completed == 1
    assert load_checkpoint(out / BEST)["epoch"] == 1  # the old run's best.pt is gone
