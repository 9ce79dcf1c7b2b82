"""The training loop's rules on a tiny model: early stopping, lineage checks, class weights and
weighted losses, gradient accumulation, the warmup/cosine schedule, the other tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.models.scoring import Task
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.epoch import class_indices
from pipeline.training.loop import LATEST, fit
from pipeline.training.optim import (
    EarlyStopper,
    WarmupCosine,
    class_weights_from_labels,
    make_loss,
    pos_weight_from_labels,
)
from pipeline.training.options import EarlyStopping, TrainConfig
from tests.train_support import CFG, N_CLASSES, Batches, never_called, random_data, tiny_model


def test_early_stopping_stops_after_patience_epochs_on_a_plateau(tmp_path: Path) -> None:
    cfg = TrainConfig(
        task="multilabel", epochs=10, seed=1, device="cpu",
        early_stopping=EarlyStopping(metric="val_flat", mode="max", patience=2),
    )  # fmt: skip
    x, y = random_data(0, 16)
    result = fit(tiny_model(), Batches(x, y, 8, 0), Batches(x, y, 8, 0, augment=False), cfg, tmp_path, {},
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
    x, y = random_data(0, 8)
    with pytest.raises(ValueError, match=r"'val_auroc' is not logged; available: lr, train_loss, val_loss"):
        fit(tiny_model(), Batches(x, y, 8, 0), Batches(x, y, 8, 0), cfg, tmp_path, {}, progress=False)
    assert not (tmp_path / LATEST).exists()


def test_lineage_that_a_checkpoint_could_not_hold_fails_before_training(tmp_path: Path) -> None:
    x, y = random_data(0, 8)
    with pytest.raises(TypeError, match=r"^lineage\.manifest: \w*Path cannot be loaded with weights_only"):
        fit(tiny_model(), Batches(x, y, 8, 0, on_epoch=never_called), Batches(x, y, 8, 0), CFG, tmp_path,
            {"manifest": Path("m.json")}, progress=False)  # fmt: skip


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
    x, y = random_data(3, 40)  # batches of 8 → groups of 2, 2, 1 batches; batches of 16 → 16, 16, 8

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
def test_multiclass_and_reconstruction_tasks_train(tmp_path: Path, task: Task) -> None:
    x, y = random_data(4, 48)
    model: nn.Module
    if task == "multiclass":
        labels = torch.eye(N_CLASSES)[y.argmax(dim=1)]  # one-hot float, as the shard loader yields
        model = nn.Sequential(nn.Flatten(), nn.Linear(32, N_CLASSES))
        weights: torch.Tensor | None = class_weights_from_labels(labels.numpy(), N_CLASSES)
    else:
        labels = torch.zeros(48)
        model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv1d(4, 2, 3, padding=1))
        weights = None
    cfg = TrainConfig(task=task, epochs=6, lr=1e-2, device="cpu")
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
