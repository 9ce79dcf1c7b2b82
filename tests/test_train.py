"""The training loop on a tiny model: exact resumption after SIGKILL, early stopping, weights, dvclive.

The model and data here are the test's own (a small conv net, random tensors): the loop is
written against plain ``nn.Module`` and ``(x, y)`` iterables. CUDA paths (AMP, GradScaler,
non_blocking copies) cannot run here: no GPU.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.training.checkpoint import TEMP_SUFFIX, TEST_PAUSE_ENV, CheckpointError, load_checkpoint
from pipeline.training.epoch import class_indices
from pipeline.training.loop import BEST, LATEST, fit
from pipeline.training.optim import (
    EarlyStopper,
    WarmupCosine,
    class_weights_from_labels,
    make_loss,
    pos_weight_from_labels,
)
from pipeline.training.options import EarlyStopping, ResumeMismatch, TrainConfig, TrainResult
from tests.conftest import sigkill_when

REPO = Path(__file__).resolve().parents[1]
N_CLASSES = 3
CFG = TrainConfig(
    task="multilabel",
    epochs=4,
    lr=3e-2,
    accumulation_steps=2,
    warmup_epochs=1.0,
    seed=7,
    device="cpu",
    early_stopping=EarlyStopping(metric="val_loss", mode="min", patience=None),
)
LINEAGE = {"manifest_hash": "0" * 64, "params": {"model": {"kind": "tiny", "width": 8}}}


class Batches:
    """``(x, y)`` batches in an order drawn from ``(seed, epoch)``, like the project's loader.

    With ``augment`` each batch gets noise from the global torch, numpy and ``random`` RNGs, so
    a resumed run only matches an uninterrupted one when all three states are restored.
    ``on_epoch`` is called from ``set_epoch`` (the tests use it to block or slow the run).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        seed: int,
        augment: bool = True,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.augment, self.on_epoch, self.epoch = augment, on_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        if self.on_epoch is not None:
            self.on_epoch(epoch)
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(
            len(self.x), generator=torch.Generator().manual_seed(self.seed * 1009 + self.epoch)
        )
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.x[idx]
            if self.augment:
                shift = 0.01 * float(np.random.standard_normal()) + 0.01 * random.random()
                x = x + 0.05 * torch.randn_like(x) + shift
            yield x, self.y[idx]


def _data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (n, 2, 16)``; label k is on when channel 0 is positive at sample k."""
    x = torch.randn(n, 2, 16, generator=torch.Generator().manual_seed(seed))
    return x, (x[:, 0, :N_CLASSES] > 0).float()


def _model() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(8 * 16, N_CLASSES),
    )


def _accuracy(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(((scores > 0.5) == (y > 0.5)).mean())}


def _train(
    out_dir: Path,
    resume: bool = True,
    on_epoch: Callable[[int], None] | None = None,
    cfg: TrainConfig = CFG,
) -> tuple[nn.Module, TrainResult]:
    x, y = _data(0, 40)
    xv, yv = _data(1, 24)
    model = _model()
    result = fit(
        model,
        Batches(x, y, 8, seed=5, on_epoch=on_epoch),
        Batches(xv, yv, 12, seed=6, augment=False),
        cfg,
        out_dir,
        LINEAGE,
        _accuracy,
        resume,
        class_weights=pos_weight_from_labels(y.numpy()),
        progress=False,
    )
    return model, result


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

    _, result = _train(Path(out_dir), on_epoch=on_epoch)
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


def test_dvclive_writes_metrics_json_and_one_tsv_row_per_epoch(reference: tuple[Path, _Result]) -> None:
    ref_dir, result = reference
    summary = json.loads((ref_dir / "live" / "metrics.json").read_text())
    assert summary["step"] == 3 and summary["best_epoch"] == result.best_epoch
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
        [str(i), str(h["val_accuracy"])] for i, h in enumerate(result.history)
    ]


def test_a_finished_run_resumes_to_the_same_result_without_training(
    tmp_path: Path, reference: tuple[Path, _Result]
) -> None:
    ref_dir, ref_result = reference
    out = tmp_path / "copy"
    out.mkdir()
    for name in (LATEST, BEST):
        (out / name).write_bytes((ref_dir / name).read_bytes())

    model, result = _train(out, on_epoch=_never)
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
        _train(out, cfg=changed)
    _, result = _train(out, resume=False, cfg=changed)
    assert result.resumed_from_epoch is None and result.epochs_completed == 1
    assert load_checkpoint(out / BEST)["epoch"] == 1  # the old run's best.pt is gone


def test_early_stopping_stops_after_patience_epochs_on_a_plateau(tmp_path: Path) -> None:
    cfg = TrainConfig(
        task="multilabel", epochs=10, seed=1, device="cpu",
        early_stopping=EarlyStopping(metric="val_flat", mode="max", patience=2),
    )  # fmt: skip
    x, y = _data(0, 16)
    result = fit(_model(), Batches(x, y, 8, 0), Batches(x, y, 8, 0, augment=False), cfg, tmp_path, {},
                 lambda y, s: {"flat": 0.5}, progress=False)  # fmt: skip
    assert result.epochs_completed == 3 and result.stopped_early
    assert result.best_epoch == 1 and result.best_value == 0.5
    assert load_checkpoint(tmp_path / LATEST)["early_stopping"] == {
        "best": 0.5,
        "best_epoch": 1,
        "bad_epochs": 2,
    }


def test_early_stopper_needs_more_than_min_delta_and_never_takes_nan() -> None:
    stopper = EarlyStopper(EarlyStopping(metric="val_loss", mode="min", patience=3, min_delta=0.1))
    assert stopper.update(float("nan"), 1) is False and stopper.best is None
    assert stopper.update(1.0, 2) is True
    assert stopper.update(0.95, 3) is False  # better, but by less than min_delta
    assert stopper.update(0.85, 4) is True and stopper.bad_epochs == 0
    assert [stopper.update(v, e) for e, v in ((5, 0.8), (6, float("nan")), (7, 0.9))] == [False] * 3
    assert stopper.should_stop and stopper.best_epoch == 4


def test_an_unknown_early_stopping_metric_fails_naming_the_logged_ones(tmp_path: Path) -> None:
    cfg = TrainConfig(
        task="multilabel", epochs=2, device="cpu", early_stopping=EarlyStopping(metric="val_auroc")
    )
    x, y = _data(0, 8)
    with pytest.raises(ValueError, match=r"'val_auroc' is not logged; available: lr, train_loss, val_loss"):
        fit(_model(), Batches(x, y, 8, 0), Batches(x, y, 8, 0), cfg, tmp_path, {}, progress=False)
    assert not (tmp_path / LATEST).exists()


def test_lineage_that_a_checkpoint_could_not_hold_fails_before_training(tmp_path: Path) -> None:
    x, y = _data(0, 8)
    with pytest.raises(TypeError, match=r"^lineage\.manifest: \w*Path cannot be loaded with weights_only"):
        fit(_model(), Batches(x, y, 8, 0, on_epoch=_never), Batches(x, y, 8, 0), CFG, tmp_path,
            {"manifest": Path("m.json")}, progress=False)  # fmt: skip


def _never(epoch: int) -> None:
    raise AssertionError(f"epoch {epoch} started")


def test_pos_weight_is_negatives_over_positives_per_class() -> None:
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=np.uint8)
    assert pos_weight_from_labels(y).tolist() == pytest.approx([1 / 3, 3.0, 4.0])  # absent class: N / 1


def test_class_weights_match_sklearn_balanced_for_indices_and_one_hot() -> None:
    from sklearn.utils.class_weight import compute_class_weight  # slow import: not in the killed child

    idx = np.array([0, 0, 0, 1, 2, 2, 0, 1])
    want = compute_class_weight("balanced", classes=np.arange(3), y=idx)
    assert np.allclose(class_weights_from_labels(idx, 3).numpy(), want)
    assert np.allclose(class_weights_from_labels(np.eye(3)[idx], 3).numpy(), want)
    assert class_weights_from_labels(np.array([0, 0, 1]), 3).tolist()[2] == pytest.approx(1.0)


def test_weighted_losses_apply_the_weights() -> None:
    logits, target = torch.tensor([[0.3, -1.2]]), torch.tensor([[1.0, 0.0]])
    pos_weight = torch.tensor([4.0, 2.0])
    want = -(4.0 * torch.log(torch.sigmoid(logits[0, 0])) + torch.log(1 - torch.sigmoid(logits[0, 1]))) / 2
    assert torch.allclose(make_loss("multilabel", pos_weight)(logits, target), want)
    logits3, target3 = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 2])
    w = torch.tensor([1.0, 1.0, 3.0])
    nll = -torch.log_softmax(logits3, dim=1)[torch.arange(2), target3]
    assert torch.allclose(make_loss("multiclass", w)(logits3, target3), (nll[0] + 3 * nll[1]) / 4)


def test_multiclass_targets_must_be_one_class_per_row() -> None:
    assert class_indices(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])).tolist() == [1, 0]
    assert class_indices(torch.tensor([2, 0])).tolist() == [2, 0]
    for bad in ([[0.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]):
        with pytest.raises(ValueError, match="exactly one 1 per row"):
            class_indices(torch.tensor(bad))


def test_gradient_accumulation_equals_one_big_batch_including_a_short_last_group(tmp_path: Path) -> None:
    x, y = _data(3, 40)  # batches of 8 → groups of 2, 2, 1 batches; batches of 16 → 16, 16, 8

    def weights(batch_size: int, accumulation: int, out: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(32, N_CLASSES))
        cfg = TrainConfig(
            task="multilabel", epochs=2, device="cpu", accumulation_steps=accumulation, grad_clip=None
        )
        batches = Batches(x, y, batch_size, 0, augment=False)
        order_fixed = Batches(x, y, 40, 0, augment=False)
        fit(model, batches, order_fixed, cfg, tmp_path / out, {}, progress=False)
        return model.state_dict()

    # same sample order in both: a batch of 16 is the two batches of 8 it replaces
    small = weights(8, 2, "a")
    big = weights(16, 1, "b")
    assert all(torch.allclose(small[k], big[k], atol=1e-6) for k in small)


def test_warmup_then_cosine_schedule() -> None:
    sched = WarmupCosine(total_steps=10, warmup_steps=2, min_ratio=0.1)
    assert [sched(s) for s in (0, 1)] == [0.5, 1.0]
    assert (
        sched(2) == pytest.approx(1.0) and sched(6) == pytest.approx(0.55) and sched(10) == pytest.approx(0.1)
    )


@pytest.mark.parametrize("task", ["multiclass", "reconstruction"])
def test_multiclass_and_reconstruction_tasks_train(tmp_path: Path, task: str) -> None:
    x, y = _data(4, 48)
    model: nn.Module
    if task == "multiclass":
        labels = torch.eye(N_CLASSES)[y.argmax(dim=1)]  # one-hot float, as the shard loader yields
        model = nn.Sequential(nn.Flatten(), nn.Linear(32, N_CLASSES))
        weights: torch.Tensor | None = class_weights_from_labels(labels.numpy(), N_CLASSES)
    else:
        labels = torch.zeros(48)
        model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv1d(4, 2, 3, padding=1))
        weights = None
    cfg = TrainConfig(task=task, epochs=6, lr=1e-2, device="cpu")  # type: ignore[arg-type]
    seen: list[Mapping[str, np.ndarray]] = []

    def metric(yv: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        seen.append({"y": yv, "scores": scores})
        return {"mean_score": float(scores.mean())}

    result = fit(model, Batches(x, labels, 8, 0), Batches(x, labels, 16, 0, augment=False), cfg, tmp_path, {},
                 metric, class_weights=weights, progress=False)  # fmt: skip
    assert result.history[-1]["val_loss"] < 0.8 * result.history[0]["val_loss"]
    if task == "multiclass":
        assert seen[-1]["scores"].shape == (48, N_CLASSES)
        assert np.allclose(seen[-1]["scores"].sum(axis=1), 1.0, atol=1e-5)
    else:
        assert seen[-1]["scores"].shape == (48,)  # one reconstruction error per sample
