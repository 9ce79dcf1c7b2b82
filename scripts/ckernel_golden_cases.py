"""The golden cases of the C kernel tests, each drawn from a fixed seed and computed by torch (CPU,
float32, eval semantics): convolutions, linear, elementwise, pooling and resampling, recurrent layers.
``scripts/ckernel_goldens.py`` writes them out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

F32 = npt.NDArray[np.float32]


@dataclass
class Case:
    """One golden: the kernel's integer/float parameters, its inputs and torch's output."""

    name: str
    kernel: str
    ints: dict[str, int] = field(default_factory=dict)
    floats: dict[str, float] = field(default_factory=dict)
    tensors: dict[str, F32] = field(default_factory=dict)


def _np(t: Tensor) -> F32:
    out: F32 = np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)
    return out


def _randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> F32:
    out: F32 = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def _t(a: F32) -> Tensor:
    return torch.from_numpy(a)


def _conv1d_case(
    rng: np.random.Generator,
    name: str,
    c_in: int,
    t_in: int,
    c_out: int,
    k: int,
    stride: int = 1,
    pad: int = 0,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = True,
    relu: bool = False,
) -> Case:
    x = _randn(rng, c_in, t_in)
    w = _randn(rng, c_out, c_in // groups, k, scale=(c_in // groups * k) ** -0.5)
    b = _randn(rng, c_out) if bias else None
    y = F.conv1d(_t(x)[None], _t(w), None if b is None else _t(b), stride, pad, dilation, groups)[0]
    y = torch.relu(y) if relu else y
    ints = {
        "c_in": c_in,
        "t_in": t_in,
        "c_out": c_out,
        "k": k,
        "stride": stride,
        "pad": pad,
        "dilation": dilation,
    }
    ints.update(groups=groups, relu=int(relu))
    tensors = {"x": x, "w": w, "y": _np(y)}
    if b is not None:
        tensors["b"] = b
    return Case(name, "conv1d", ints, {}, tensors)


def conv1d_cases(rng: np.random.Generator) -> list[Case]:
    """Strides, padding, dilation, groups, odd lengths, no bias, fused ReLU, the model shapes (scaled
    down), an input-channel list longer than one panel, a kernel too long for the panel, and a long row
    whose interior tiles the kernel reads in place (no panel copy)."""
    c = _conv1d_case
    return [
        c(rng, "same_k15_resnet_stem", 12, 61, 32, 15, pad=7, relu=True),
        c(rng, "stride2_k15_downsample", 32, 77, 32, 15, stride=2, pad=7),
        c(rng, "k1_skip_projection_no_bias", 32, 19, 64, 1, bias=False),
        c(rng, "stride3_pad2_odd_lengths", 5, 53, 7, 4, stride=3, pad=2, relu=True),
        c(rng, "dilation3_pad4", 3, 41, 9, 3, pad=4, dilation=3),
        c(rng, "stride2_dilation2_no_bias", 4, 33, 10, 5, stride=2, pad=1, dilation=2, bias=False),
        c(rng, "groups2", 6, 29, 10, 3, pad=1, groups=2),
        c(rng, "depthwise_groups8", 8, 31, 8, 5, pad=2, groups=8, relu=True),
        c(rng, "output_length_1", 3, 9, 5, 9),
        c(rng, "pad_wider_than_input", 2, 3, 3, 3, stride=2, pad=3),
        c(rng, "dft_like_stride16_k64", 1, 200, 66, 64, stride=16),
        c(rng, "channels_beyond_one_panel", 100, 150, 9, 15, stride=2, pad=7, relu=True),
        c(rng, "kernel_too_long_for_panel", 1, 2110, 2, 2100, stride=1, pad=1),
        c(rng, "interior_tiles_read_in_place", 4, 300, 9, 5, pad=2, relu=True),
    ]


def conv_transpose1d_cases(rng: np.random.Generator) -> list[Case]:
    """Stride, padding, output_padding (< stride, and < dilation only), dilation, no bias, fused ReLU."""
    specs: list[tuple[str, int, int, int, int, int, int, int, int, bool, bool]] = [
        # name, c_in, t_in, c_out, k, stride, pad, output_padding, dilation, bias, relu
        ("autoencoder_k4_s2_p1", 16, 9, 8, 4, 2, 1, 0, 1, True, True),
        ("stride3_outpad2", 3, 7, 5, 5, 3, 2, 2, 1, True, False),
        ("dilation2_outpad1_below_dilation", 2, 6, 3, 3, 1, 0, 1, 2, False, False),
        ("stride4_pad3_dilation3", 4, 5, 6, 4, 4, 3, 1, 3, True, True),
        ("stride1_k1", 5, 11, 4, 1, 1, 0, 0, 1, False, False),
        ("odd_length_stride2_outpad1", 7, 13, 9, 7, 2, 3, 1, 1, True, False),
    ]
    cases = []
    for name, c_in, t_in, c_out, k, s, p, op, d, bias, relu in specs:
        x = _randn(rng, c_in, t_in)
        w = _randn(rng, c_in, c_out, k, scale=(c_in * k) ** -0.5)
        b = _randn(rng, c_out) if bias else None
        y = F.conv_transpose1d(_t(x)[None], _t(w), None if b is None else _t(b), s, p, op, 1, d)[0]
        y = torch.relu(y) if relu else y
        ints = {
            "c_in": c_in,
            "t_in": t_in,
            "c_out": c_out,
            "k": k,
            "stride": s,
            "pad": p,
            "output_padding": op,
            "dilation": d,
        }
        ints["relu"] = int(relu)
        tensors = {"x": x, "w": w, "y": _np(y)}
        if b is not None:
            tensors["b"] = b
        cases.append(Case(name, "conv_transpose1d", ints, {}, tensors))
    return cases


def conv2d_cases(rng: np.random.Generator) -> list[Case]:
    """3x3 "same" (the CRNN blocks), strided, rectangular kernels, channel counts off the block size, and
    a wide input whose interior rows and tiles the kernel reads in place."""
    specs: list[tuple[str, int, int, int, int, int, int, int, int, int, int, bool, bool]] = [
        # name, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, bias, relu
        ("crnn_3x3_same", 4, 9, 23, 16, 3, 3, 1, 1, 1, 1, False, True),
        ("stride2_pad1", 3, 10, 17, 10, 3, 3, 2, 2, 1, 1, True, False),
        ("rect_kernel_2x5", 2, 6, 21, 5, 2, 5, 1, 2, 0, 2, True, True),
        ("one_row_input", 1, 1, 30, 3, 1, 3, 1, 1, 0, 1, True, False),
        ("interior_rows_read_in_place", 2, 5, 140, 9, 3, 3, 1, 1, 1, 0, True, False),
    ]
    cases = []
    for name, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, bias, relu in specs:
        x = _randn(rng, c_in, h, w)
        wt = _randn(rng, c_out, c_in, kh, kw, scale=(c_in * kh * kw) ** -0.5)
        b = _randn(rng, c_out) if bias else None
        y = F.conv2d(_t(x)[None], _t(wt), None if b is None else _t(b), (sh, sw), (ph, pw))[0]
        y = torch.relu(y) if relu else y
        ints = {
            "c_in": c_in,
            "h": h,
            "w": w,
            "c_out": c_out,
            "kh": kh,
            "kw": kw,
            "sh": sh,
            "sw": sw,
            "ph": ph,
            "pw": pw,
            "relu": int(relu),
        }
        tensors = {"x": x, "wt": wt, "y": _np(y)}
        if b is not None:
            tensors["b"] = b
        cases.append(Case(name, "conv2d", ints, {}, tensors))
    return cases


def linear_cases(rng: np.random.Generator) -> list[Case]:
    """Lengths on and off the 32-lane dot product, no bias, fused ReLU."""
    cases = []
    for name, n_in, n_out, bias, relu in [
        ("autoencoder_bottleneck_1152_to_16", 1152, 16, True, False),
        ("odd_97_to_5_no_bias", 97, 5, False, False),
        ("relu_16_to_40", 16, 40, True, True),
        ("one_input", 1, 3, True, False),
    ]:
        x = _randn(rng, n_in)
        w = _randn(rng, n_out, n_in, scale=n_in**-0.5)
        b = _randn(rng, n_out) if bias else None
        y = F.linear(_t(x), _t(w), None if b is None else _t(b))
        y = torch.relu(y) if relu else y
        tensors = {"x": x, "w": w, "y": _np(y)}
        if b is not None:
            tensors["b"] = b
        cases.append(Case(name, "linear", {"n_in": n_in, "n_out": n_out, "relu": int(relu)}, {}, tensors))
    return cases


def _activation_input(rng: np.random.Generator) -> F32:
    """Normal values, the tails (±20, ±100, ±1000) and exact zeros."""
    tails = np.array([-1000, -100, -88.5, -20, -1e-3, 0, 1e-3, 20, 88.5, 100, 1000], np.float32)
    return np.concatenate([_randn(rng, 53, scale=3.0), tails]).astype(np.float32)


def elementwise_cases(rng: np.random.Generator) -> list[Case]:
    """Every activation (sigmoid at ±100 included), add, channel affine, softmax, log power."""
    x = _activation_input(rng)
    acts: dict[str, Callable[[Tensor], Tensor]] = {
        "relu": torch.relu,
        "gelu": F.gelu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }
    cases = [Case(f"{k}_tails", k, {"n": x.size}, {}, {"x": x, "y": _np(f(_t(x)))}) for k, f in acts.items()]
    a, b = _randn(rng, 37), _randn(rng, 37)
    cases.append(Case("residual", "add", {"n": 37}, {}, {"a": a, "b": b, "y": _np(_t(a) + _t(b))}))
    xa, scale, shift = _randn(rng, 5, 13), _randn(rng, 5), _randn(rng, 5)
    ya = _t(xa) * _t(scale)[:, None] + _t(shift)[:, None]
    tensors = {"x": xa, "scale": scale, "shift": shift, "y": _np(ya)}
    cases.append(Case("batchnorm_eval", "channel_affine", {"c": 5, "t": 13}, {}, tensors))
    for name, logits in [
        ("four_classes", _randn(rng, 4)),
        ("large_logits", np.array([1000, 999, -1000, 0], np.float32)),
    ]:
        cases.append(
            Case(name, "softmax", {"n": 4}, {}, {"x": logits, "y": _np(torch.softmax(_t(logits), 0))})
        )
    spec = _randn(rng, 2 * 9, 7, scale=0.1)
    spec[0, :3] = 0.0  # zero power: the log of eps alone
    re, im = _t(spec)[:9], _t(spec)[9:]
    y = torch.log(re * re + im * im + 1e-6)
    tensors = {"spec": spec, "y": _np(y)}
    cases.append(Case("nine_bins", "log_power", {"n_freq": 9, "n_frames": 7}, {"eps": 1e-6}, tensors))
    return cases


def pool_cases(rng: np.random.Generator) -> list[Case]:
    """Max / average pooling with ceil_mode and padding, adaptive average, 2D max, upsampling, mean over
    the middle axis, transpose."""
    cases = []
    for name, t_in, k, s, p, ceil in [
        ("resnet_skip_k2_ceil_odd", 25, 2, 2, 0, 1),
        ("k3_s2_pad1_ceil", 10, 3, 2, 1, 1),
        ("k4_s3_pad2_floor", 17, 4, 3, 2, 0),
        ("k5_s3_pad2_ceil", 14, 5, 3, 2, 1),
        ("window_longer_than_input_ceil", 5, 7, 4, 0, 1),
    ]:
        x = _randn(rng, 3, t_in)
        y = F.max_pool1d(_t(x)[None], k, s, p, ceil_mode=bool(ceil))[0]
        ints = {"c": 3, "t_in": t_in, "k": k, "stride": s, "pad": p, "ceil_mode": ceil}
        cases.append(Case(name, "maxpool1d", ints, {}, {"x": x, "y": _np(y)}))
        for cip in (0, 1):
            ya = F.avg_pool1d(_t(x)[None], k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip))[0]
            ints_a = dict(ints, count_include_pad=cip)
            cases.append(Case(f"{name}_cip{cip}", "avgpool1d", ints_a, {}, {"x": x, "y": _np(ya)}))
    for t_in, t_out in [(313, 1), (10, 4), (7, 7), (5, 8)]:
        x = _randn(rng, 2, t_in)
        y = F.adaptive_avg_pool1d(_t(x)[None], t_out)[0]
        ints = {"c": 2, "t_in": t_in, "t_out": t_out}
        cases.append(Case(f"{t_in}_to_{t_out}", "adaptive_avgpool1d", ints, {}, {"x": x, "y": _np(y)}))
    for name, h, w, kh, kw, sh, sw, ceil in [
        ("crnn_2x2_ceil_odd", 9, 11, 2, 2, 2, 2, 1),
        ("freq_only_2x1_ceil", 5, 6, 2, 1, 2, 1, 1),
        ("3x3_s2_floor", 8, 9, 3, 3, 2, 2, 0),
    ]:
        x = _randn(rng, 2, h, w)
        y = F.max_pool2d(_t(x)[None], (kh, kw), (sh, sw), 0, ceil_mode=bool(ceil))[0]
        ints = {"c": 2, "h": h, "w": w, "kh": kh, "kw": kw, "sh": sh, "sw": sw, "ceil_mode": ceil}
        cases.append(Case(name, "maxpool2d", ints, {}, {"x": x, "y": _np(y)}))
    # 6 -> 74: torch's float index 37 * (6 / 74) rounds to just below 3 and picks sample 2
    for t_in, t_out in [(9, 18), (7, 10), (10, 4), (3, 3), (6, 74)]:
        x = _randn(rng, 2, t_in)
        y = F.interpolate(_t(x)[None], size=t_out, mode="nearest")[0]
        ints = {"c": 2, "t_in": t_in, "t_out": t_out}
        cases.append(Case(f"{t_in}_to_{t_out}", "upsample_nearest1d", ints, {}, {"x": x, "y": _np(y)}))
    x3 = _randn(rng, 4, 5, 6)
    cases.append(
        Case("c4_f5_n6", "mean_axis1", {"c": 4, "f": 5, "n": 6}, {}, {"x": x3, "y": _np(_t(x3).mean(1))})
    )
    x2 = _randn(rng, 5, 7)
    cases.append(Case("5x7", "transpose", {"rows": 5, "cols": 7}, {}, {"x": x2, "y": _np(_t(x2).T)}))
    return cases


def _rnn_case(name: str, kind: str, t: int, n_in: int, hidden: int, bidirectional: bool) -> Case:
    """torch's own initialisation (seeded) and output; a bidirectional layer is run in C as two calls
    into one (t, 2 hidden) buffer, the backward one with reverse = 1."""
    torch.manual_seed(len(name) * 1000 + t)
    module: nn.GRU | nn.LSTM
    if kind == "gru":
        module = nn.GRU(n_in, hidden, batch_first=True, bidirectional=bidirectional)
    else:
        module = nn.LSTM(n_in, hidden, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(1, t, n_in)
    with torch.no_grad():
        out = module.eval()(x)[0][0]
    tensors: dict[str, F32] = {"x": _np(x[0])}
    for suffix in ("", "_reverse") if bidirectional else ("",):
        for part in ("w_ih", "w_hh", "b_ih", "b_hh"):
            torch_name = f"{'weight' if part[0] == 'w' else 'bias'}_{part[2:]}_l0{suffix}"
            tensors[part + suffix] = _np(getattr(module, torch_name))
    tensors["h"] = _np(out)
    ints = {"t": t, "n_in": n_in, "hidden": hidden, "directions": 2 if bidirectional else 1}
    return Case(name, kind, ints, {}, tensors)


def rnn_cases() -> list[Case]:
    """GRU and LSTM, one direction and both (forward and reverse with row stride 2 hidden)."""
    return [
        _rnn_case("forward_only", "gru", 6, 5, 7, False),
        _rnn_case("bidirectional_stride_2h", "gru", 9, 8, 6, True),
        _rnn_case("forward_only", "lstm", 5, 3, 4, False),
        _rnn_case("bidirectional_stride_2h", "lstm", 8, 6, 5, True),
    ]
