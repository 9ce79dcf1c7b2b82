"""Training-batch augmentation (crop, shift, scale, noise, mixup): what each knob does to a batch,
that all-off draws nothing, that params reach the training config, and that an augmented run
still resumes exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pipeline.cli.models import train_config
from pipeline.config import ConfigError, load_params
from pipeline.training.augment import Augment, augment_signal, mixup
from pipeline.training.epoch import EpochRun, augmented
from pipeline.training.options import TrainConfig
from tests.train_support import CFG, REPO, train_tiny


def _batch(b: int = 6, c: int = 2, t: int = 200) -> torch.Tensor:
    return torch.randn(b, c, t, generator=torch.Generator().manual_seed(0)) + 3.0  # no zeros


def test_all_off_returns_the_batch_untouched_and_draws_no_random_numbers() -> None:
    x, y = _batch(), torch.eye(4)[torch.tensor([0, 1, 2, 3, 0, 1])]
    torch.manual_seed(5)
    before = torch.get_rng_state()
    run = EpochRun.__new__(EpochRun)
    run.cfg = TrainConfig(task="multiclass")
    out_x, out_y, soft = augmented(run, x, y)
    assert out_x is x and out_y is y and not soft
    assert torch.equal(torch.get_rng_state(), before)
    assert not Augment().enabled


def test_shift_moves_each_record_and_fills_the_vacated_span_with_zeros() -> None:
    x = _batch()
    torch.manual_seed(1)
    out = augment_signal(x, Augment(shift_max=0.1))
    for i in range(x.shape[0]):
        matches = [s for s in range(-20, 21) if torch.equal(out[i], _shifted(x[i], s))]
        assert len(matches) == 1, f"record {i} is not a zero-filled shift of at most 20 samples"
    assert any(not torch.equal(out[i], x[i]) for i in range(x.shape[0]))


def _shifted(r: torch.Tensor, s: int) -> torch.Tensor:
    out = torch.zeros_like(r)
    if s >= 0:
        out[:, s:] = r[:, : r.shape[1] - s]
    else:
        out[:, :s] = r[:, -s:]
    return out


def test_crop_keeps_one_contiguous_span_of_at_least_crop_min_and_zeroes_the_rest() -> None:
    x = _batch(b=32)
    torch.manual_seed(2)
    out = augment_signal(x, Augment(crop_min=0.5))
    for i in range(x.shape[0]):
        kept = (out[i] != 0).all(dim=0).nonzero().flatten()
        assert len(kept) >= 100
        assert torch.equal(kept, torch.arange(int(kept[0]), int(kept[-1]) + 1))  # contiguous
        assert torch.equal(out[i][:, kept], x[i][:, kept])  # values of the span unchanged
        assert int((out[i] != 0).sum()) == 2 * len(kept)  # both leads share the span
    assert len({int((out[i] != 0).sum()) for i in range(32)}) > 1


def test_scale_multiplies_each_record_by_one_factor_within_the_range() -> None:
    x = _batch(b=64)
    torch.manual_seed(3)
    out = augment_signal(x, Augment(scale=0.2))
    factor = out / x
    per_record = factor[:, :1, :1]
    assert torch.allclose(factor, per_record.expand_as(factor), atol=1e-5)
    assert float(per_record.min()) >= 0.8 - 1e-6 and float(per_record.max()) <= 1.2 + 1e-6
    assert float(per_record.std()) > 0.05


def test_noise_has_the_asked_standard_deviation_and_leaves_padding_at_zero() -> None:
    x = torch.ones(8, 1, 4000)
    x[:, :, 3000:] = 0.0  # a padded tail
    torch.manual_seed(4)
    out = augment_signal(x, Augment(noise_mv=0.05))
    assert torch.equal(out[:, :, 3000:], torch.zeros(8, 1, 1000))
    assert abs(float((out[:, :, :3000] - 1.0).std()) - 0.05) < 0.002


def test_mixup_mixes_records_and_their_targets_with_the_same_weight() -> None:
    x = torch.eye(16)[:, None, :]  # record i is a unit pulse at sample i: the mix can be read back
    y = torch.eye(4)[torch.arange(16) % 4]
    torch.manual_seed(5)
    mx, my = mixup(x, y, alpha=0.4)
    assert torch.allclose(my.sum(dim=1), torch.ones(16))
    mixed = 0
    for i in range(16):
        lam = float(mx[i, 0, i])
        others = [j for j in range(16) if j != i and float(mx[i, 0, j]) > 0]
        assert len(others) <= 1
        if not others:  # mixed with itself (or lambda = 1)
            assert torch.allclose(my[i], y[i])
            continue
        j = others[0]
        mixed += 1
        assert abs(float(mx[i, 0, j]) - (1 - lam)) < 1e-6
        assert torch.allclose(my[i], lam * y[i] + (1 - lam) * y[j], atol=1e-6)
    assert mixed >= 12


def test_mixup_gives_multiclass_training_soft_targets_and_needs_one_hot_rows() -> None:
    run = EpochRun.__new__(EpochRun)
    run.cfg = TrainConfig(task="multiclass", augment=Augment(mixup_alpha=0.2))
    torch.manual_seed(6)
    _, y, soft = augmented(run, _batch(), torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])])
    assert soft and y.shape == (6, 3) and torch.allclose(y.sum(dim=1), torch.ones(6))
    with pytest.raises(ValueError, match="one-hot"):
        augmented(run, _batch(), torch.tensor([0, 1, 2, 0, 1, 2]))


@pytest.mark.parametrize(
    ("field", "value"),
    [("crop_min", 0.0), ("crop_min", 1.5), ("shift_max", 1.0), ("scale", -0.1), ("noise_mv", -1.0),
     ("mixup_alpha", -0.5)],
)  # fmt: skip
def test_impossible_knobs_are_refused_naming_the_knob(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"augment.{field}"):
        Augment(**{field: value})


def test_reconstruction_refuses_augmentation() -> None:
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(task="reconstruction", augment=Augment(noise_mv=0.1))


def test_params_reach_the_training_config_and_default_to_off() -> None:
    params = load_params(REPO / "params.yaml")
    for name, m in params.train.models.items():
        assert train_config(m).augment == Augment(), name
        assert m.sampler == "shuffle", name
    params = load_params(
        REPO / "params.yaml",
        ["train.models.crnn.augment.noise_mv=0.02", "train.models.crnn.augment.shift_max=0.1",
         "train.models.crnn.sampler=balanced", "train.models.crnn.balance_power=0.5"],
    )  # fmt: skip
    m = params.train.models["crnn"]
    assert train_config(m).augment == Augment(noise_mv=0.02, shift_max=0.1)
    assert (m.sampler, m.balance_power) == ("balanced", 0.5)


def test_bad_augment_params_fail_naming_the_dotted_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.models\.crnn\.augment\.scale"):
        load_params(REPO / "params.yaml", ["train.models.crnn.augment.scale=2"])
    with pytest.raises(ConfigError, match="reconstruction"):
        load_params(REPO / "params.yaml", ["train.models.autoencoder.augment.noise_mv=0.1"])


class _Stop(Exception):
    pass


def _stop_at(epoch: int) -> Callable[[int], None]:
    def on_epoch(e: int) -> None:
        if e == epoch:
            raise _Stop

    return on_epoch


def test_an_augmented_run_stopped_after_epoch_2_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        CFG, task="multilabel", augment=Augment(crop_min=0.7, shift_max=0.1, scale=0.1, noise_mv=0.05,
                                                mixup_alpha=0.3),
    )  # fmt: skip
    whole, whole_result = train_tiny(tmp_path / "whole", cfg=cfg)
    with pytest.raises(_Stop):
        train_tiny(tmp_path / "cut", cfg=cfg, on_epoch=_stop_at(2))
    resumed, result = train_tiny(tmp_path / "cut", cfg=cfg)
    assert result.resumed_from_epoch == 2
    assert result.history == whole_result.history
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    plain, plain_result = train_tiny(tmp_path / "plain")
    assert plain_result.history != whole_result.history  # augmentation changed training
