"""The autoencoder trained in C against PyTorch on real ECG5000 beats (shared data): every loss, activation,
activation gradient and parameter gradient of one step from the same weights, and the losses of the first
training steps with the pipeline's AdamW, schedule and clipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.ckernel.train_model import CAutoencoderTrainer
from pipeline.ckernel.train_parity import gradient_parity, train_both
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


def test_gradient_parity_flags_a_changed_weight_at_its_gradient(beats: tuple[np.ndarray, np.ndarray]) -> None:
    x = np.ascontiguousarray(beats[0][:16])
    torch.manual_seed(1)
    model = ConvAutoencoder()
    trainer = CAutoencoderTrainer(model, 16)
    ref = gradient_parity(model, trainer, x)
    assert all(c.ok for c in ref)
    state = model.state_dict()
    state["out.bias"] = state["out.bias"] + 0.01  # C runs on this, torch keeps the original
    trainer.load_state_dict(state)
    trainer.forward_backward(x)
    assert abs(trainer.grads()["out.bias"][0] - [c for c in ref if c.name == "out.bias"][0].max_abs) > 0


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


def test_trainer_refuses_impossible_dims_and_oversized_batches_naming_the_source_line() -> None:
    with pytest.raises(ValueError, match=r"train_autoencoder\.c:\d+: .*odd"):
        CAutoencoderTrainer(ConvAutoencoder(kernel_size=3), 4).__class__(_even_kernel_model(), 4)
    trainer = CAutoencoderTrainer(ConvAutoencoder(), 4)
    with pytest.raises(ValueError, match="max_batch 4"):
        trainer.forward_backward(np.zeros((5, 1, 140), np.float32))


def _even_kernel_model() -> ConvAutoencoder:
    model = ConvAutoencoder(kernel_size=3)
    model.out.kernel_size = (4,)  # the C side must refuse what torch's constructor already refuses
    return model
