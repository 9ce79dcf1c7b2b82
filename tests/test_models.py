"""The three model families: shapes, gradients, seeding, the DFT-matrix STFT, ONNX parity, save/load."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from pipeline.models import (
    MODEL_KINDS,
    ConvAutoencoder,
    DftSpectrogram,
    ResNet1d,
    StftCrnn,
    build_model,
    count_parameters,
)

# Small configurations keep the gradient/seed/ONNX checks fast; shape tests also cover the defaults.
SMALL: dict[str, tuple[dict[str, Any], tuple[int, int, int]]] = {
    "resnet1d": ({"n_leads": 12, "n_classes": 5, "widths": (8, 16, 24), "kernel_size": 15}, (2, 12, 501)),
    "autoencoder": ({"length": 141, "widths": (8, 16, 32), "latent": 8}, (3, 1, 141)),
    "crnn": ({"n_classes": 4, "conv_channels": (8, 16), "rnn_hidden": 16}, (2, 1, 1000)),
}


def _small(kind: str, seed: int = 0, **overrides: Any) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(kind, **{**SMALL[kind][0], **overrides})


def _input(kind: str, batch: int | None = None, seed: int = 1) -> Tensor:
    shape = SMALL[kind][1]
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch or shape[0], *shape[1:], generator=gen)


def _warm_batchnorm(model: nn.Module, x: Tensor) -> None:
    """A few train-mode passes so BN running statistics differ from the identity (0 mean, unit var)."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    model.eval()


# --- factory -------------------------------------------------------------------------------------


def test_build_model_builds_every_kind_with_the_expected_class() -> None:
    expected = {"resnet1d": ResNet1d, "autoencoder": ConvAutoencoder, "crnn": StftCrnn}
    assert set(MODEL_KINDS) == set(expected)
    for kind in MODEL_KINDS:
        assert isinstance(_small(kind), expected[kind])


def test_build_model_unknown_kind_names_the_known_kinds() -> None:
    with pytest.raises(ValueError, match="transformer") as info:
        build_model("transformer")
    for kind in MODEL_KINDS:
        assert kind in str(info.value)


def test_default_parameter_counts_fit_cpu_training() -> None:
    resnet = build_model("resnet1d", n_leads=12, n_classes=71)
    assert 2_500_000 < count_parameters(resnet) < 3_500_000  # kernel 15 × widths (64, 128, 196, 256)
    assert count_parameters(build_model("resnet1d", n_leads=12, n_classes=71, kernel_size=9)) < 2_100_000
    assert count_parameters(build_model("autoencoder")) < 100_000
    assert count_parameters(build_model("crnn", n_classes=4)) < 300_000
    assert count_parameters(build_model("crnn", n_classes=4, rnn="lstm")) < 300_000


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("resnet1d", {"n_leads": 12, "n_classes": 2, "kernel_size": 16}),
        ("resnet1d", {"n_leads": 12, "n_classes": 2, "widths": ()}),
        ("resnet1d", {"n_leads": 12, "n_classes": 2, "dropout": 1.0}),
        ("autoencoder", {"kernel_size": 4}),
        ("autoencoder", {"length": 0}),
        ("crnn", {"n_classes": 4, "rnn": "transformer"}),
        ("crnn", {"n_classes": 4, "pooling": "max"}),
        ("crnn", {"n_classes": 4, "n_fft": 1}),
    ],
)
def test_invalid_constructor_arguments_raise_value_error(kind: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_model(kind, **kwargs)


# --- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "length"), [(1, 5000), (2, 4999)])
def test_resnet_default_maps_leads_by_time_to_logits(batch: int, length: int) -> None:
    model = build_model("resnet1d", n_leads=12, n_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 12, length))
    assert out.shape == (batch, 7)
    assert out.dtype == torch.float32


def test_resnet_extra_blocks_and_wrong_lead_count() -> None:
    model = build_model("resnet1d", n_leads=1, n_classes=3, widths=(8, 16), blocks_per_stage=2).eval()
    assert model(torch.randn(2, 1, 777)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        model(torch.randn(2, 12, 777))


@pytest.mark.parametrize("length", [140, 141, 137, 139, 8, 3])
@pytest.mark.parametrize("batch", [1, 4])
def test_autoencoder_reconstruction_has_the_input_shape_for_any_length(length: int, batch: int) -> None:
    model = ConvAutoencoder(length=length).eval()
    x = torch.randn(batch, 1, length)
    with torch.no_grad():
        assert model(x).shape == x.shape
        assert model.encode(x).shape == (batch, 16)


def test_autoencoder_multichannel_and_wrong_length() -> None:
    model = ConvAutoencoder(in_channels=2, length=99, widths=(4, 8), latent=4).eval()
    assert model(torch.randn(2, 2, 99)).shape == (2, 2, 99)
    with pytest.raises(ValueError, match=r"\(B, 2, 99\)"):
        model(torch.randn(2, 2, 100))


def test_reconstruction_error_is_the_per_sample_mean_squared_error() -> None:
    torch.manual_seed(0)
    model = ConvAutoencoder(**SMALL["autoencoder"][0]).eval()
    x = _input("autoencoder", batch=5)
    with torch.no_grad():
        score = model.reconstruction_error(x)
        manual = ((model(x) - x) ** 2).flatten(1).mean(dim=1)
    assert score.shape == (5,)
    assert torch.all(score >= 0)
    torch.testing.assert_close(score, manual)


@pytest.mark.parametrize("length", [9000, 128, 1001])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"rnn": "lstm", "bidirectional": False, "pooling": "last"},
        {"rnn": "gru", "bidirectional": True, "pooling": "last", "rnn_layers": 2},
    ],
)
def test_crnn_maps_single_lead_to_logits_for_any_length_from_n_fft(
    length: int, config: dict[str, Any]
) -> None:
    model = build_model("crnn", n_classes=4, **config).eval()
    with torch.no_grad():
        for batch in (1, 2):
            assert model(torch.randn(batch, 1, length)).shape == (batch, 4)


def test_crnn_rejects_inputs_shorter_than_n_fft_or_multichannel() -> None:
    model = build_model("crnn", n_classes=4, n_fft=128).eval()
    with pytest.raises(ValueError, match="T ≥ 128"):
        model(torch.randn(1, 1, 127))
    with pytest.raises(ValueError):
        model(torch.randn(1, 2, 1000))


# --- STFT as a DFT matrix ------------------------------------------------------------------------


@pytest.mark.parametrize(("n_fft", "hop"), [(128, 32), (256, 64), (64, 64), (63, 20)])
def test_dft_matrix_stft_equals_torch_stft_magnitude(n_fft: int, hop: int) -> None:
    x = torch.randn(3, 1, 2000, generator=torch.Generator().manual_seed(4))
    reference = torch.stft(
        x[:, 0],
        n_fft=n_fft,
        hop_length=hop,
        window=torch.hann_window(n_fft),
        center=False,
        return_complex=True,
    ).abs()
    magnitude = DftSpectrogram(n_fft, hop).power(x).sqrt()
    assert magnitude.shape == reference.shape == (3, n_fft // 2 + 1, 1 + (2000 - n_fft) // hop)
    torch.testing.assert_close(magnitude, reference, atol=1e-4, rtol=1e-4)


def test_dft_basis_is_a_saved_buffer_not_a_trained_parameter() -> None:
    model = build_model("crnn", n_classes=4)
    names = {name for name, _ in model.named_parameters()}
    assert not any("basis" in name for name in names)
    assert "spectrogram.basis" in model.state_dict()


def test_log_spectrogram_is_finite_on_a_flat_signal() -> None:
    out = DftSpectrogram(128, 32)(torch.zeros(1, 1, 300))
    assert out.shape == (1, 1, 65, 6)
    assert torch.isfinite(out).all()


# --- training behaviour --------------------------------------------------------------------------


def _loss(model: nn.Module, x: Tensor) -> Tensor:
    out: Tensor = model(x)
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    return ((out - target) ** 2).mean()


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_gradients_reach_every_parameter(kind: str) -> None:
    model = _small(kind).train()
    torch.autograd.backward(_loss(model, _input(kind)))
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_gradients_reach_every_lstm_parameter_with_last_pooling() -> None:
    model = _small("crnn", rnn="lstm", pooling="last", rnn_layers=2).train()
    torch.autograd.backward(_loss(model, _input("crnn")))
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_same_seed_gives_identical_weights_and_outputs(kind: str) -> None:
    a, b, other = _small(kind, seed=3).eval(), _small(kind, seed=3).eval(), _small(kind, seed=4).eval()
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(ta, tb), name
    x = _input(kind)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), other(x))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_eval_mode_is_deterministic_and_train_mode_uses_dropout(kind: str) -> None:
    model = _small(kind)
    x = _input(kind)
    _warm_batchnorm(model, x)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        if kind != "autoencoder":  # the autoencoder has no dropout
            model.train()
            assert not torch.equal(model(x), model(x))


# --- export and persistence ----------------------------------------------------------------------


def _onnx_outputs(model: nn.Module, x_export: Tensor, x_run: Tensor, path: Path) -> np.ndarray[Any, Any]:
    """Export with the default (torch.export-based) exporter, dynamic batch, and run in onnxruntime."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation chatter from torch.export internals
        torch.onnx.export(
            model,
            (x_export,),
            path,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"x": x_run.numpy()})
    return np.asarray(outputs[0])


@pytest.mark.slow  # ≈ 2 s per export with the torch.export-based exporter
@pytest.mark.parametrize(
    ("kind", "overrides"),
    [
        ("resnet1d", {}),
        ("autoencoder", {}),
        ("crnn", {}),
        ("crnn", {"rnn": "lstm", "pooling": "last"}),
    ],
)
def test_onnx_export_matches_pytorch_in_onnxruntime(
    kind: str, overrides: dict[str, Any], tmp_path: Path
) -> None:
    model = _small(kind, **overrides)
    _warm_batchnorm(model, _input(kind, batch=4, seed=5))
    x_run = _input(kind, batch=SMALL[kind][1][0] + 1, seed=6)  # a batch size the export never saw
    got = _onnx_outputs(model, _input(kind), x_run, tmp_path / f"{kind}.onnx")
    with torch.no_grad():
        expected = model(x_run).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_state_dict_round_trips_through_torch_save_with_weights_only(kind: str, tmp_path: Path) -> None:
    model = _small(kind, seed=1)
    x = _input(kind)
    _warm_batchnorm(model, x)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    restored = _small(kind, seed=2)
    restored.load_state_dict(torch.load(path, weights_only=True))
    restored.eval()
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
