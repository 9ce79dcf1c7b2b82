"""The autoencoder trained in C against PyTorch on real ECG5000 beats (shared data): every loss, activation,
activation gradient and parameter gradient of one step from the same weights, and the losses of the first
training steps with the pipeline's AdamW, schedule and clipping."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.ckernel.train import ACT, PARAM, load_train_library
from pipeline.ckernel.train_model import CAutoencoderTrainer
from pipeline.ckernel.train_parity import SKIP_ACTS, gradient_parity, train_both
from pipeline.models.autoencoder import ConvAutoencoder
from pipeline.training.options import TrainConfig

ECG5000 = Path("/work/shared/data/ucr_ecg5000/ECG5000_TRAIN.txt")
pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def beats() -> tuple[np.ndarray, np.ndarray]:
    """(500, 1, 140) float32 beats and (500,) is-normal (class 1)."""
    if not ECG5000.is_file():
        pytest.fail(f"{ECG5000}: the shared ECG5000 file is missing")
    d = np.loadtxt(ECG5000, dtype=np.float64)
    return np.ascontiguousarray(d[:, None, 1:], dtype=np.float32), d[:, 0] == 1


@pytest.mark.parametrize("start", [0, 160, 468])
def test_every_gradient_and_activation_matches_autograd_on_real_ecg5000_batches(
    beats: tuple[np.ndarray, np.ndarray], start: int
) -> None:
    x = np.ascontiguousarray(beats[0][start : start + 32])
    torch.manual_seed(start)
    model = ConvAutoencoder()
    checks = gradient_parity(model, CAutoencoderTrainer(model, 32), x)
    kinds = {c.kind for c in checks}
    assert kinds == {"loss", "act", "act_grad", "param_grad"}
    assert sum(c.kind == "param_grad" for c in checks) == len(list(model.parameters()))
    bad = [c.to_json() for c in checks if not c.ok]
    assert not bad, bad


class _Perturbed(CAutoencoderTrainer):
    """A trainer on ``model``'s weights with 0.01 added to one tensor (torch keeps the original)."""

    # added, not scaled: a training-mode batch norm right after a conv would cancel a scaled weight

    def __init__(self, model: ConvAutoencoder, max_batch: int, tensor: str) -> None:
        self.tensor = tensor
        super().__init__(model, max_batch)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        super().load_state_dict({**state, self.tensor: state[self.tensor] + 0.01})


@pytest.mark.parametrize(
    ("tensor", "first_changed_act"), [("out.bias", "out"), ("decoder.1.0.weight", "decoder.1.0")]
)
def test_gradient_parity_flags_exactly_the_activations_after_a_changed_weight_and_every_gradient(
    beats: tuple[np.ndarray, np.ndarray], tensor: str, first_changed_act: str
) -> None:
    x = np.ascontiguousarray(beats[0][:16])
    torch.manual_seed(1)
    model = ConvAutoencoder()
    trainer = _Perturbed(model, 16, tensor)
    flagged = {(c.kind, c.name) for c in gradient_parity(model, trainer, x) if not c.ok}
    acts = [n for n in trainer.names(ACT) if n not in SKIP_ACTS]  # forward order
    after = acts[acts.index(first_changed_act) :]
    # forward: the activations before the changed layer are untouched, it and all after differ; backward: the
    # loss gradient differs, so every activation and parameter gradient does
    expected = {("loss", "loss"), *(("act", n) for n in after), *(("act_grad", n) for n in acts)}
    expected |= {("param_grad", n) for n in trainer.names(PARAM)}
    assert flagged == expected


def test_c_training_follows_torch_losses_step_by_step(beats: tuple[np.ndarray, np.ndarray]) -> None:
    x, normal = beats
    cfg = TrainConfig(task="reconstruction", epochs=40, lr=3e-3, weight_decay=1e-4, warmup_epochs=1,
                      grad_clip=1.0, device="cpu")  # fmt: skip
    torch.manual_seed(0)
    run = train_both(ConvAutoencoder(), np.ascontiguousarray(x[normal][:200]), cfg, 32, max_steps=30)
    t, c = np.array(run.torch_losses), np.array(run.c_losses)
    assert len(t) == 30
    assert t[-1] < 0.5 * t[0]  # it trains
    # The first step is exact to float rounding; afterwards AdamW's m / sqrt(v) turns rounding-level
    # differences of near-zero gradient elements into full ±lr updates, so the curves drift apart slowly
    # (measured: ≤ 1.2 % over these 30 steps); 5 % still catches any wrong layer or optimizer term.
    np.testing.assert_allclose(c[0], t[0], rtol=1e-6)
    np.testing.assert_allclose(c, t, rtol=5e-2)


def _new_trainer_error(dims: list[int], max_batch: int = 4) -> str:
    """``ecgk_ae_train_new``'s error text for ``dims`` (it must refuse them: NULL)."""
    lib = load_train_library()
    err = ctypes.create_string_buffer(256)
    handle = lib.ecgk_ae_train_new(
        (ctypes.c_int * len(dims))(*dims), len(dims), max_batch, 1e-5, 0.1, err, 256
    )
    assert not handle, dims
    return str(err.value.decode())


@pytest.mark.parametrize(
    ("dims", "max_batch", "reason"),
    [
        ([1, 140, 4, 16, 3, 16, 32, 64], 4, r"an odd kernel; got 1, 140, 4, 16, batch 4"),
        ([1, 140, 7, 16, 3, 16, 32, 64], 0, r"max_batch >= 1 .*batch 0"),
        ([0, 140, 7, 16, 3, 16, 32, 64], 4, r"channels.*got 0, 140"),
        ([1, 140, 7, 16, 3, 16, 32], 4, r"then n_widths widths; got 7 values"),
        ([1, 140, 7, 16, 2, 16, 0], 4, r"width 1 is 0, expected >= 1"),
    ],
)
def test_trainer_refuses_each_impossible_dim_naming_the_source_line_and_the_value(
    dims: list[int], max_batch: int, reason: str
) -> None:
    assert re.match(r"[^:]*train_autoencoder\.c:\d+: " + ".*" + reason, _new_trainer_error(dims, max_batch))


def test_trainer_refuses_an_even_kernel_model_and_an_oversized_batch() -> None:
    model = ConvAutoencoder(kernel_size=3)
    model.out.kernel_size = (4,)  # the C side must refuse what torch's constructor already refuses
    with pytest.raises(ValueError, match=r"^ecgk_ae_train_new: .*train_autoencoder\.c:\d+: .*odd kernel"):
        CAutoencoderTrainer(model, 4)
    trainer = CAutoencoderTrainer(ConvAutoencoder(), 4)
    with pytest.raises(ValueError, match=r"x: batch 5 is larger than the trainer's max_batch 4"):
        trainer.forward_backward(np.zeros((5, 1, 140), np.float32))
