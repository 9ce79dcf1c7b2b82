"""Trained model → the C kernels' weight file (``ckernels/FORMAT.md``), batch norms folded.

:func:`model_weights` turns an eval-mode model into the tensors the C graph builders expect (in their
order, with the header's dims); :func:`write_weights` is the one writer of the format. The C loader
(``ckernels/src/model_load.c``) is its only reader.

Folding: an eval-mode ``BatchNorm`` after a convolution is the per-channel affine ``s·y + (β − μ·s)`` with
``s = γ / sqrt(σ² + ε)``; it is multiplied into the convolution's weights (output channels: dim 0 of
``Conv1d``/``Conv2d`` weights, dim 1 of ``ConvTranspose1d``'s) in float64 and rounded to float32 once.
Batch norms that follow a sum or a log (ResNet's ``bn2``, the CRNN's ``input_norm``) cannot be folded and
are written as explicit ``scale``/``shift`` vectors.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from pipeline.core.fs import write_atomic
from pipeline.models import ConvAutoencoder, ResidualUnit1d, ResNet1d, StftCrnn
from pipeline.models.scoring import Task

MAGIC = b"ECGKWGT\0"
FORMAT_VERSION = 1
KIND_CODES: dict[str, int] = {"resnet1d": 1, "autoencoder": 2, "crnn": 3}
# resnet1d's last dim: which scores follow the logits (pipeline/models/scoring.py's rule per task).
RESNET_HEADS: dict[str, int] = {"multilabel": 0, "multiclass": 1}
_ALIGN = 16

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Tensors = list[tuple[str, F32]]


@dataclass(frozen=True)
class CkernelWeights:
    """Everything a weight file holds: model kind, header dims (FORMAT.md) and named float32 tensors."""

    kind: str
    dims: tuple[int, ...]
    tensors: tuple[tuple[str, F32], ...]


def write_weights(path: Path, weights: CkernelWeights) -> None:
    """Write ``weights`` in format version :data:`FORMAT_VERSION` (little-endian), atomically."""
    if weights.kind not in KIND_CODES:
        raise ValueError(f"unknown model kind {weights.kind!r}; expected one of {sorted(KIND_CODES)}")
    parts = [MAGIC, struct.pack("<III", FORMAT_VERSION, KIND_CODES[weights.kind], len(weights.dims))]
    parts.append(struct.pack(f"<{len(weights.dims)}I", *weights.dims))
    parts.append(struct.pack("<I", len(weights.tensors)))
    size = sum(len(p) for p in parts)
    for name, array in weights.tensors:
        encoded = name.encode("ascii")
        if not 0 < len(encoded) < 64 or not 1 <= array.ndim <= 4:
            raise ValueError(f"tensor {name!r}: names are 1-63 ASCII bytes, ranks 1-4; got rank {array.ndim}")
        n, rank = len(encoded), array.ndim
        head = struct.pack(f"<I{n}sI{rank}I", n, encoded, rank, *array.shape)
        pad = -(size + len(head)) % _ALIGN
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        parts += [head, b"\0" * pad, data]
        size += len(head) + pad + len(data)
    write_atomic(Path(path), b"".join(parts))


def model_weights(model: nn.Module, in_len: int, task: Task = "multilabel") -> CkernelWeights:
    """The weight-file contents of ``model`` (a ResNet1d, ConvAutoencoder or StftCrnn) exported for
    records of ``in_len`` samples. Batch norms use their running statistics (eval mode). ``task`` (the
    model card's) picks a ResNet1d's output: sigmoid per class (multilabel) or softmax (multiclass);
    the autoencoder and the CRNN have one task each."""
    if isinstance(model, ResNet1d):
        if task not in RESNET_HEADS:
            raise ValueError(f"resnet1d C kernels score {sorted(RESNET_HEADS)} tasks, got {task!r}")
        return _resnet(model, in_len, RESNET_HEADS[task])
    if isinstance(model, ConvAutoencoder):
        return _autoencoder(model)
    if isinstance(model, StftCrnn):
        return _crnn(model, in_len)
    raise TypeError(f"no C kernels for {type(model).__name__}: expected ResNet1d, ConvAutoencoder, StftCrnn")


def _param(module: nn.Module, name: str) -> torch.Tensor:
    """``module.<name>`` as a tensor (nn.Module attributes are typed ``Tensor | Module``)."""
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is {type(value).__name__}, expected a tensor")
    return value


def _f64(t: torch.Tensor) -> F64:
    return t.detach().cpu().double().numpy()


def _f32(a: npt.NDArray[np.floating]) -> F32:
    return np.ascontiguousarray(a, dtype=np.float32)


def bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[F64, F64]:
    """Eval-mode batch norm as ``(scale, shift)``, (C,) each, in float64."""
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats (the default)
    scale = _f64(bn.weight) / np.sqrt(_f64(bn.running_var) + bn.eps)
    return scale, _f64(bn.bias) - _f64(bn.running_mean) * scale


def _folded(name: str, conv: nn.Module, bn: nn.modules.batchnorm._BatchNorm, out_axis: int = 0) -> Tensors:
    """``name.weight``, ``name.bias`` of ``bn(conv(x))``; ``out_axis``: the weight's output-channel dim."""
    weight = _f64(_param(conv, "weight"))
    bias = np.zeros(weight.shape[out_axis]) if conv.bias is None else _f64(_param(conv, "bias"))
    scale, shift = bn_affine(bn)
    shape = [1] * weight.ndim
    shape[out_axis] = -1
    folded = weight * scale.reshape(shape)
    return [(f"{name}.weight", _f32(folded)), (f"{name}.bias", _f32(bias * scale + shift))]


def _plain(name: str, module: nn.Module, bias: bool = True) -> Tensors:
    out = [(f"{name}.weight", _f32(_f64(_param(module, "weight"))))]
    return out + ([(f"{name}.bias", _f32(_f64(_param(module, "bias"))))] if bias else [])


def _resnet(model: ResNet1d, in_len: int, head_code: int) -> CkernelWeights:
    m: Any = model  # nn.Sequential indexing is typed as Module; the structure is fixed by ResNet1d
    stem_conv, stem_bn = m.stem[0], m.stem[1]
    k = int(stem_conv.kernel_size[0])
    tensors = _folded("stem", stem_conv, stem_bn)
    dims = [model.n_leads, in_len, model.n_classes, k, int(stem_conv.out_channels), len(model.blocks)]
    for i, unit in enumerate(m.blocks):
        dims += [int(unit.conv1.out_channels), int(unit.conv2.stride[0])]
        tensors += _unit_tensors(f"blocks.{i}", unit)
    tensors += _plain("head", model.head)
    return CkernelWeights("resnet1d", (*dims, head_code), tuple(tensors))


def _unit_tensors(name: str, unit: ResidualUnit1d) -> Tensors:
    skip_convs = [m for m in unit.skip if isinstance(m, nn.Conv1d)]
    out = [t for conv in skip_convs for t in _plain(f"{name}.skip.conv", conv, bias=False)]
    out += _folded(f"{name}.conv1", unit.conv1, unit.bn1)
    out += _plain(f"{name}.conv2", unit.conv2, bias=False)
    scale, shift = bn_affine(unit.bn2)
    return out + [(f"{name}.bn2.scale", _f32(scale)), (f"{name}.bn2.shift", _f32(shift))]


def _autoencoder(model: ConvAutoencoder) -> CkernelWeights:
    m: Any = model
    widths = [int(block[0].out_channels) for block in m.encoder]
    k = int(m.encoder[0][0].kernel_size[0])
    dims = (model.in_channels, model.length, k, int(model.to_latent.out_features), len(widths), *widths)
    tensors: Tensors = []
    for i, block in enumerate(m.encoder):
        tensors += _folded(f"encoder.{i}.conv", block[0], block[1])
    tensors += _plain("to_latent", model.to_latent) + _plain("from_latent", m.from_latent[0])
    for i, block in enumerate(m.decoder):
        tensors += _folded(f"decoder.{i}", block[0], block[1], out_axis=1)
    tensors += _plain("out", model.out)
    return CkernelWeights("autoencoder", dims, tuple(tensors))


def _crnn(model: StftCrnn, in_len: int) -> CkernelWeights:
    m: Any = model
    spec = model.spectrogram
    rnn = model.rnn
    pools = [tuple(block[3].kernel_size) == (2, 2) for block in m.convs]
    time_pool = sum(pools)
    if pools != [True] * time_pool + [False] * (len(pools) - time_pool):
        raise ValueError("C kernels expect the time-pooling conv blocks to come first")
    channels = [int(block[0].out_channels) for block in m.convs]
    dims = (1, in_len, model.n_classes, spec.n_fft, spec.hop, 1 if isinstance(rnn, nn.GRU) else 2,
            int(rnn.bidirectional), rnn.num_layers, rnn.hidden_size, 0 if model.pooling == "mean" else 1,
            int(model.input_norm is not None), int(model.gain_norm), time_pool,
            len(channels), *channels)  # fmt: skip
    tensors: Tensors = [("spectrogram.basis", _f32(_f64(spec.basis))),
                        ("spectrogram.eps", _f32(np.array([spec.eps])))]  # fmt: skip
    if model.input_norm is not None:
        scale, shift = bn_affine(model.input_norm)
        tensors += [("input_norm.scale", _f32(scale)), ("input_norm.shift", _f32(shift))]
    for i, block in enumerate(m.convs):
        tensors += _folded(f"convs.{i}", block[0], block[1])
    tensors += list(_rnn_tensors(rnn))
    tensors += _plain("head", model.head)
    return CkernelWeights("crnn", dims, tuple(tensors))


def _rnn_tensors(rnn: nn.RNNBase) -> Iterator[tuple[str, F32]]:
    """torch's own parameter names and gate order, layer by layer, forward before reverse."""
    for layer in range(rnn.num_layers):
        for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                name = f"{part}_l{layer}{suffix}"
                yield f"rnn.{name}", _f32(_f64(getattr(rnn, name)))
