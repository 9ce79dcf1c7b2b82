"""PyTorch's side of the parity check: every layer the C graph exposes, computed by the model's own
modules (eval mode) in the same order and under the same names as ``ckernels/src/model_*.c``.

:func:`torch_layers` returns ``[(name, activation (B, ...))]``; its last entry, ``"scores"``, equals
:func:`pipeline.models.scoring.output_scores` of the model's forward pass (tests hold both to that).
Batch norms
are applied as modules here, not folded, so folding errors show up as parity differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from pipeline.models import ConvAutoencoder, ResNet1d, StftCrnn
from pipeline.models.scoring import Task, output_scores

Layers = list[tuple[str, Tensor]]


@torch.no_grad()
def torch_layers(model: nn.Module, x: Tensor, task: Task = "multilabel") -> Layers:
    """Named activations of ``model`` (must be in eval mode) on ``x`` (B, C, T) float32 mV. ``task``
    (the model card's) decides a ResNet1d's scores; the other families have one task each."""
    if model.training:
        raise ValueError("torch_layers needs model.eval(): dropout and batch statistics differ in training")
    tracers: dict[type[nn.Module], Callable[[Any, Tensor], Layers]] = {
        ResNet1d: lambda m, x: _resnet(m, x, task),
        ConvAutoencoder: _autoencoder,
        StftCrnn: _crnn,
    }
    for cls, trace in tracers.items():
        if isinstance(model, cls):
            return trace(model, x)
    raise TypeError(f"no parity trace for {type(model).__name__}")


def _resnet(m: Any, x: Tensor, task: Task) -> Layers:
    out: Layers = []
    h = m.stem(x)
    out.append(("stem", h))
    y = h
    for i, unit in enumerate(m.blocks):
        skip = y
        for layer in unit.skip:
            skip = layer(skip)
            part = "pool" if isinstance(layer, nn.MaxPool1d) else "conv"
            out.append((f"blocks.{i}.skip.{part}", skip))
        h1 = unit.drop1(unit.relu1(unit.bn1(unit.conv1(h))))
        c2 = unit.conv2(h1)
        y = c2 + skip
        h = unit.drop2(unit.relu2(unit.bn2(y)))
        out += [
            (f"blocks.{i}.conv1", h1),
            (f"blocks.{i}.conv2", c2),
            (f"blocks.{i}.sum", y),
            (f"blocks.{i}.out", h),
        ]
    pooled = torch.flatten(m.pool(h), 1)
    logits = m.head(pooled)
    return [*out, ("pool", pooled), ("head", logits), ("scores", output_scores(task, x, logits))]


def _autoencoder(m: Any, x: Tensor) -> Layers:
    out: Layers = []
    pad = m.padded_length - m.length
    h = nn.functional.pad(x, (0, pad)) if pad else x
    if pad:
        out.append(("input.pad", h))
    for i, block in enumerate(m.encoder):
        h = block[2](block[1](block[0](h)))
        out.append((f"encoder.{i}.conv", h))
        h = block[3](h)
        out.append((f"encoder.{i}", h))
    code = m.to_latent(h.flatten(1))
    hidden = m.from_latent(code)
    out += [("to_latent", code), ("from_latent", hidden)]
    h = hidden.reshape(-1, *m.code_shape)
    for i, block in enumerate(m.decoder):
        h = block(h)
        out.append((f"decoder.{i}", h))
    full = m.out(h)
    out.append(("out", full))
    recon = full[:, :, : m.length]
    if pad:
        out.append(("recon", recon))
    score = (recon - x).pow(2).flatten(1).mean(dim=1)
    return [*out, ("scores", score.unsqueeze(1))]


def _crnn(m: Any, x: Tensor) -> Layers:
    dft = nn.functional.conv1d(x, m.spectrogram.basis, stride=m.spectrogram.hop)
    spec = m.spectrogram(x)
    out: Layers = [("spectrogram.dft", dft), ("spectrogram", spec)]
    if m.gain_norm:
        spec = spec - spec.mean(dim=(2, 3), keepdim=True)
        out.append(("gain_norm", spec))
    if m.input_norm is not None:
        spec = m.input_norm(spec.squeeze(1)).unsqueeze(1)
        out.append(("input_norm", spec))
    h = spec
    for i, block in enumerate(m.convs):
        h = block[2](block[1](block[0](h)))
        out.append((f"convs.{i}.conv", h))
        h = block[3](h)
        out.append((f"convs.{i}", h))
    features = h.mean(dim=2)
    sequence = features.transpose(1, 2)
    out += [("features", features), ("sequence", sequence)]
    layers, state = _rnn_layers(m.rnn, sequence)
    out += layers
    outputs = out[-1][1]
    pooled = outputs.mean(dim=1) if m.pooling == "mean" else m._last_state(state)
    logits = m.head(m.dropout(pooled))
    return [*out, ("pooled", pooled), ("head", logits), ("scores", torch.softmax(logits, dim=1))]


def _rnn_layers(rnn: nn.RNNBase, sequence: Tensor) -> tuple[Layers, Any]:
    """Each layer's output sequence (B, T, directions·hidden) and the full stack's final state: the stack
    is run once per depth, so every prefix uses torch's own fused kernel rather than a re-implementation."""
    out: Layers = []
    state: Any = None
    for depth in range(1, rnn.num_layers + 1):
        outputs, state = _truncated(rnn, depth)(sequence)
        out.append((f"rnn.{depth - 1}", outputs))
    return out, state


def _truncated(rnn: nn.RNNBase, depth: int) -> nn.RNNBase:
    if depth == rnn.num_layers:
        return rnn
    cls: Any = type(rnn)  # nn.GRU / nn.LSTM: RNNBase's own signature takes a mode first
    part: nn.RNNBase = cls(rnn.input_size, rnn.hidden_size, num_layers=depth, batch_first=rnn.batch_first,
               bidirectional=rnn.bidirectional)  # fmt: skip
    own = dict(rnn.named_parameters())
    part.load_state_dict({name: own[name] for name, _ in part.named_parameters()})
    part.eval()
    return part
