"""The C models (weight writer → C loader → C graph) against PyTorch, layer by layer, for every model
family and the architecture options the C graph supports; the weight format's error paths; the
command-line runner; and a perturbed weight caught at its own layer."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.ckernel.model import CkernelError, CModel
from pipeline.ckernel.parity import ParityRun, Tolerance, compare
from pipeline.ckernel.trace import torch_layers
from pipeline.ckernel.weights import FORMAT_VERSION, model_weights, write_weights
from pipeline.models import build_model
from pipeline.models.scoring import Task, output_scores
from tests.conftest import REPO_ROOT, make_ckernels

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TOL = Tolerance()

RESNETS: dict[str, dict[str, Any]] = {
    "default-like": {"n_leads": 12, "n_classes": 5, "widths": (8, 16, 16), "kernel_size": 7},
    "two-units-per-stage-stride3": {"n_leads": 3, "n_classes": 2, "widths": (4, 6), "kernel_size": 5,
                                    "blocks_per_stage": 2, "stride": 3},
}  # fmt: skip
AUTOENCODERS: dict[str, dict[str, Any]] = {
    "padded-140": {"in_channels": 1, "length": 140, "widths": (8, 16, 16), "latent": 8},
    "unpadded-2ch": {"in_channels": 2, "length": 64, "widths": (4, 8), "latent": 4, "kernel_size": 5},
}
CRNNS: dict[str, dict[str, Any]] = {
    "gru-bi-mean-input-norm": {"n_classes": 4, "n_fft": 64, "hop": 16, "conv_channels": (4, 8, 8),
                               "rnn_hidden": 8, "input_norm": True, "time_pool": 2},
    "lstm-uni-last-2layers-gain-norm": {"n_classes": 3, "n_fft": 32, "hop": 8, "conv_channels": (4, 6),
                                        "rnn_hidden": 6, "rnn": "lstm", "bidirectional": False,
                                        "rnn_layers": 2, "pooling": "last", "gain_norm": True,
                                        "time_pool": 0},
    "gru-bi-2layers-last": {"n_classes": 2, "n_fft": 16, "hop": 4, "conv_channels": (4,), "rnn_hidden": 5,
                            "rnn_layers": 2, "pooling": "last"},
}  # fmt: skip


def _trained_like(kind: str, kwargs: dict[str, Any], seed: int = 0) -> nn.Module:
    """A model with seeded weights and random batch-norm statistics, so that folding is not the identity."""
    torch.manual_seed(seed)
    model = build_model(kind, **kwargs)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0.0, 0.2)
    return model.eval()


def _export(
    tmp_path: Path, model: nn.Module, in_len: int, name: str = "m", task: Task = "multilabel"
) -> Path:
    path = tmp_path / f"{name}.ecgk"
    write_weights(path, model_weights(model, in_len, task))
    return path


def _ecg_like(n: int, c: int, t: int, seed: int = 0) -> np.ndarray:
    """Records (n, c, t) in mV: a few sinusoids plus noise, with per-record gain spread."""
    rng = np.random.default_rng(seed)
    time = np.arange(t)[None, None, :]
    x = sum(np.sin(2 * np.pi * time * rng.uniform(0.002, 0.05, (n, c, 1)) + rng.uniform(0, 6, (n, c, 1)))
            for _ in range(3))  # fmt: skip
    gain = rng.uniform(0.2, 2.0, (n, 1, 1))
    return np.asarray(gain * x + 0.05 * rng.standard_normal((n, c, t)), dtype=np.float32)


def _parity(tmp_path: Path, lib: Path, kind: str, kwargs: dict[str, Any], in_len: int, c: int) -> ParityRun:
    model = _trained_like(kind, kwargs)
    x = _ecg_like(3, c, in_len)
    with CModel(_export(tmp_path, model, in_len), lib / "libecgk.so") as cm:
        plan = cm.plan(in_len)
        return compare(plan, model, [(["r0", "r1", "r2"], x)], TOL, progress=False)


def _assert_clean(run: ParityRun) -> None:
    first = run.first_failure
    assert first is None, first.message()
    c, t = run.scores()
    np.testing.assert_allclose(c, t, rtol=TOL.rtol, atol=TOL.atol)


@pytest.mark.parametrize("name", sorted(RESNETS))
@pytest.mark.parametrize("in_len", [1000, 333])
def test_c_resnet_matches_pytorch_at_every_layer(
    tmp_path: Path, ckernels_build: Path, name: str, in_len: int
) -> None:
    kwargs = RESNETS[name]
    run = _parity(tmp_path, ckernels_build, "resnet1d", kwargs, in_len, kwargs["n_leads"])
    _assert_clean(run)
    assert [s.name for s in run.layers][:2] == ["stem", "blocks.0.conv1"] or "skip" in run.layers[1].name


def test_c_multiclass_resnet_ends_in_the_softmax_evaluation_uses(
    tmp_path: Path, ckernels_build: Path
) -> None:
    """The single-lead CinC 2017 ``cnn1d`` shape (1 lead, stride 4, 4 classes), task multiclass."""
    kwargs = {"n_leads": 1, "n_classes": 4, "widths": (4, 8, 8), "kernel_size": 15, "stride": 4}
    model = _trained_like("resnet1d", kwargs)
    x = _ecg_like(3, 1, 1800)
    with CModel(_export(tmp_path, model, 1800, task="multiclass"), ckernels_build / "libecgk.so") as cm:
        plan = cm.plan(1800)
        run = compare(plan, model, [(["r0", "r1", "r2"], x)], TOL, progress=False, task="multiclass")
        plan.close()
    _assert_clean(run)
    c, _ = run.scores()
    np.testing.assert_allclose(c.sum(axis=1), 1.0, rtol=0, atol=1e-6)  # a softmax, not 4 sigmoids
    with torch.no_grad():
        expected = output_scores("multiclass", torch.from_numpy(x), model(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(c, expected, rtol=TOL.rtol, atol=TOL.atol)


def test_resnet_export_refuses_a_task_the_c_head_does_not_score() -> None:
    model = _trained_like("resnet1d", RESNETS["default-like"])
    with pytest.raises(ValueError, match="resnet1d C kernels score .* got 'reconstruction'"):
        model_weights(model, 500, "reconstruction")


@pytest.mark.parametrize("name", sorted(AUTOENCODERS))
def test_c_autoencoder_matches_pytorch_at_every_layer(
    tmp_path: Path, ckernels_build: Path, name: str
) -> None:
    kwargs = AUTOENCODERS[name]
    _assert_clean(
        _parity(tmp_path, ckernels_build, "autoencoder", kwargs, kwargs["length"], kwargs["in_channels"])
    )


@pytest.mark.parametrize("name", sorted(CRNNS))
@pytest.mark.parametrize("in_len", [1500, 97])
def test_c_crnn_matches_pytorch_at_every_layer(
    tmp_path: Path, ckernels_build: Path, name: str, in_len: int
) -> None:
    _assert_clean(_parity(tmp_path, ckernels_build, "crnn", CRNNS[name], in_len, 1))


@pytest.mark.parametrize(("kind", "kwargs", "shape"), [
    ("resnet1d", RESNETS["default-like"], (12, 500)),
    ("autoencoder", AUTOENCODERS["padded-140"], (1, 140)),
    ("crnn", CRNNS["gru-bi-mean-input-norm"], (1, 900)),
])  # fmt: skip
def test_torch_trace_ends_in_the_scores_evaluation_uses(
    kind: str, kwargs: dict[str, Any], shape: tuple[int, int]
) -> None:
    model = _trained_like(kind, kwargs)
    x = torch.from_numpy(_ecg_like(2, *shape))
    task = {"resnet1d": "multilabel", "autoencoder": "reconstruction", "crnn": "multiclass"}[kind]
    with torch.no_grad():
        expected = output_scores(task, x, model(x))  # type: ignore[arg-type]  # task from a dict of str, one of the Task literals
    name, scores = torch_layers(model, x)[-1]
    assert name == "scores"
    torch.testing.assert_close(scores.reshape(expected.shape), expected, rtol=0, atol=0)


VERSION_OFFSET = 8  # after the 8 magic bytes (ckernels/FORMAT.md)


def test_a_weight_file_of_another_version_is_refused_with_how_to_reexport(
    tmp_path: Path, ckernels_build: Path
) -> None:
    path = _export(tmp_path, _trained_like("autoencoder", AUTOENCODERS["padded-140"]), 140)
    data = bytearray(path.read_bytes())
    data[VERSION_OFFSET : VERSION_OFFSET + 4] = struct.pack("<I", FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(CkernelError, match=r"version 2.*reads version 1.*ecgpipe cexport"):
        CModel(path, ckernels_build / "libecgk.so")


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b"NOTECGK!" + b[8:], "not an ecgpipe weight file"),
    (lambda b: b[: len(b) - 10], "file ends first"),
    (lambda b: b + b"\0" * 4, "unexpected bytes after the last tensor"),
    (lambda b: b.replace(b"blocks.0.conv1.weight", b"blocks.0.convX.weight"), "expected blocks.0.conv1.w"),
    (lambda b: b"", "not an ecgpipe weight file"),
])  # fmt: skip
def test_damaged_weight_files_fail_with_the_file_and_what_was_expected(
    tmp_path: Path, ckernels_build: Path, damage: Any, message: str
) -> None:
    path = _export(tmp_path, _trained_like("resnet1d", RESNETS["default-like"]), 500)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CkernelError, match=message) as info:
        CModel(path, ckernels_build / "libecgk.so")
    assert str(path) in str(info.value) and ".c:" in str(info.value)  # the file, and the C source line


def test_a_plan_refuses_an_input_the_model_cannot_take(tmp_path: Path, ckernels_build: Path) -> None:
    with CModel(_export(tmp_path, _trained_like("autoencoder", AUTOENCODERS["padded-140"]), 140),
                ckernels_build / "libecgk.so") as cm:  # fmt: skip
        with pytest.raises(CkernelError, match="exactly 140 samples"):
            cm.plan(150)
        plan = cm.plan()
        with pytest.raises(ValueError, match=r"planned for records \(1, 140\)"):
            plan.run(np.zeros((1, 139), np.float32))


def test_perturbing_one_exported_weight_fails_parity_at_the_first_layer_that_uses_it(
    tmp_path: Path, ckernels_build: Path
) -> None:
    model = _trained_like("resnet1d", RESNETS["default-like"])
    path = _export(tmp_path, model, 500)
    with CModel(path, ckernels_build / "libecgk.so") as cm:
        entry = next(t for t in cm.tensors() if t.name == "blocks.1.conv1.weight")
    data = bytearray(path.read_bytes())
    offset = entry.file_offset + 4 * 5  # the sixth float of that tensor
    (value,) = struct.unpack_from("<f", data, offset)
    struct.pack_into("<f", data, offset, value + 0.05)
    path.write_bytes(bytes(data))
    with CModel(path, ckernels_build / "libecgk.so") as cm:
        run = compare(cm.plan(500), model, [(["rec-a"], _ecg_like(1, 12, 500))], TOL, progress=False)
    first = run.first_failure
    assert first is not None and first.layer == "blocks.1.conv1", first
    assert first.record_id == "rec-a" and abs(first.c_value - first.torch_value) > first.bound
    clean = [s.name for s in run.layers[: [s.name for s in run.layers].index("blocks.1.conv1")]]
    assert all(s.violations == 0 for s in run.layers if s.name in clean)


def test_command_line_runner_scores_and_traces_like_the_library(tmp_path: Path, ckernels_build: Path) -> None:
    model = _trained_like("crnn", CRNNS["gru-bi-mean-input-norm"])
    path = _export(tmp_path, model, 900)
    x = _ecg_like(4, 1, 900)
    x.astype("<f4").tofile(tmp_path / "x.f32")
    (tmp_path / "trace").mkdir()
    proc = subprocess.run(
        [str(ckernels_build / "ecgk-run"), str(path), str(tmp_path / "x.f32"), str(tmp_path / "y.f32"),
         "--trace", str(tmp_path / "trace"), "--repeat", "3"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "latency_ms median=" in proc.stdout
    with CModel(path, ckernels_build / "libecgk.so") as cm:
        plan = cm.plan()
        expected = plan.run_batch(x)
        plan.run(x[0])
        layers = {name: plan.layer(i) for i, name in enumerate(plan.layer_names)}
    np.testing.assert_array_equal(np.fromfile(tmp_path / "y.f32", "<f4").reshape(expected.shape), expected)
    index = (tmp_path / "trace" / "layers.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in index] == list(layers)
    for name, act in layers.items():
        np.testing.assert_array_equal(np.fromfile(tmp_path / "trace" / f"{name}.f32", "<f4"), act.reshape(-1))


def test_command_line_runner_rejects_input_that_is_not_whole_records(
    tmp_path: Path, ckernels_build: Path
) -> None:
    path = _export(tmp_path, _trained_like("autoencoder", AUTOENCODERS["padded-140"]), 140)
    np.zeros(141, "<f4").tofile(tmp_path / "x.f32")
    args = [str(ckernels_build / "ecgk-run"), str(path), str(tmp_path / "x.f32"), str(tmp_path / "y")]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "not a whole number of (1, 140) records" in proc.stderr
    usage = subprocess.run([str(ckernels_build / "ecgk-run")], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage:" in usage.stderr


@pytest.mark.parametrize(("kind", "kwargs", "shape"), [
    ("resnet1d", RESNETS["two-units-per-stage-stride3"], (3, 301)),
    ("autoencoder", AUTOENCODERS["padded-140"], (1, 140)),
    ("crnn", CRNNS["lstm-uni-last-2layers-gain-norm"], (1, 700)),
    ("crnn", CRNNS["gru-bi-mean-input-norm"], (1, 700)),
])  # fmt: skip
def test_model_runner_is_clean_under_address_and_undefined_behaviour_sanitizers(
    tmp_path: Path, kind: str, kwargs: dict[str, Any], shape: tuple[int, int]
) -> None:
    make_ckernels("sanitize-runner")
    path = _export(tmp_path, _trained_like(kind, kwargs), shape[1])
    _ecg_like(2, *shape).astype("<f4").tofile(tmp_path / "x.f32")
    (tmp_path / "trace").mkdir()
    runner = REPO_ROOT / "ckernels" / "build-san" / "ecgk-run"
    proc = subprocess.run(
        [str(runner), str(path), str(tmp_path / "x.f32"), str(tmp_path / "y.f32"),
         "--trace", str(tmp_path / "trace")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr


def test_c_kernel_tests_pass_against_the_pytorch_goldens() -> None:
    proc = subprocess.run(["make", "-C", str(REPO_ROOT / "ckernels"), "test"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\d+ golden cases, 0 failure\(s\)", proc.stdout), proc.stdout[-2000:]


def test_c_kernel_tests_and_runner_are_clean_under_address_and_undefined_behaviour_sanitizers() -> None:
    proc = subprocess.run(["make", "-C", str(REPO_ROOT / "ckernels"), "sanitize"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "sanitizers: clean" in proc.stdout and "-fsanitize=address,undefined" in proc.stdout
    assert "runtime error" not in proc.stderr and "ERROR: AddressSanitizer" not in proc.stderr


@pytest.mark.parametrize("name", ["resnet", "crnn", "autoencoder"])
def test_committed_parity_metrics_are_the_headline_of_the_committed_report(name: str) -> None:
    import json

    from pipeline.ckernel.report import headline

    report = json.loads((REPO_ROOT / "parity" / name / "parity.json").read_text())
    metrics = json.loads((REPO_ROOT / "parity" / name / "metrics.json").read_text())
    assert metrics == headline(report)
    assert metrics["passed"] is True and metrics["worst_ratio"] == max(
        s["worst_ratio"] for s in report["layers"].values()
    )
    assert "layers" not in metrics and "chain" not in metrics  # per-layer detail stays out of dvc metrics
