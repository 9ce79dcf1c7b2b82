"""The C layer kernels (ckernels/, through pipeline.ckernel.lib) against torch on randomized shapes:
convolutions, linear and element-wise kernels (pooling, RNNs, sizes, checks: test_ckernels_layers.py).

The library is built once per session with ``make -C ckernels``. Every case draws its shapes and values
from a seeded numpy RNG and must satisfy the parity rule ``|c - t| <= 1e-5 + 1e-4 |t|`` element-wise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812  (the conventional alias)
from torch import Tensor

from pipeline.ckernel.lib import CKernels
from tests.ckernel_parity import F32, assert_close, built_kernels, maybe_bias, randn, t_


@pytest.fixture(scope="module")
def ck() -> Iterator[CKernels]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the reference is cheap; extra threads only fight other workers
    yield built_kernels()
    torch.set_num_threads(before)


# ---------------------------------------------------------------- convolutions


def _conv1d_args(rng: np.random.Generator) -> dict[str, int]:
    """Random conv1d geometry with an output of at least one sample, often exactly one."""
    groups = int(rng.choice([1, 1, 1, 2, 3, 4]))
    k, s, d = int(rng.integers(1, 10)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
    pad = int(rng.integers(0, k + 1))
    span = d * (k - 1) + 1
    t_min = max(1, span - 2 * pad)
    t_in = t_min if rng.random() < 0.2 else t_min + int(rng.integers(0, 90))
    c_in = groups * int(rng.integers(1, 6))
    c_out = groups * int(rng.integers(1, 12))
    return {
        "c_in": c_in,
        "c_out": c_out,
        "t_in": t_in,
        "k": k,
        "stride": s,
        "pad": pad,
        "dilation": d,
        "groups": groups,
    }


def test_conv1d_matches_torch_over_random_stride_padding_dilation_groups_and_lengths(ck: CKernels) -> None:
    rng = np.random.default_rng(10)
    lengths_one = 0
    for i in range(100):
        a = _conv1d_args(rng)
        x = randn(rng, a["c_in"], a["t_in"])
        w = randn(rng, a["c_out"], a["c_in"] // a["groups"], a["k"], scale=0.3)
        b = maybe_bias(rng, a["c_out"])
        relu = bool(rng.random() < 0.5)
        got = ck.conv1d(
            x, w, b, stride=a["stride"], pad=a["pad"], dilation=a["dilation"], groups=a["groups"], relu=relu
        )
        ref = F.conv1d(
            t_(x)[None],
            t_(w),
            None if b is None else t_(b),
            a["stride"],
            a["pad"],
            a["dilation"],
            a["groups"],
        )
        assert_close(got, torch.relu(ref[0]) if relu else ref[0], f"case {i} {a} relu={relu}")
        lengths_one += got.shape[1] == 1
    assert lengths_one >= 10  # the draw really covers outputs of length 1


def test_conv1d_matches_torch_on_the_resnet_and_spectrogram_shapes(ck: CKernels) -> None:
    """Channel lists longer than one input panel (chunked partial sums), model-sized kernels, the DFT conv."""
    rng = np.random.default_rng(11)
    for c_in, c_out, t_in, k, s, pad in [
        (12, 32, 500, 15, 1, 7),
        (96, 96, 125, 15, 2, 7),
        (160, 20, 64, 15, 1, 7),  # 160 x 15 taps > one panel: several chunks
        (160, 9, 300, 15, 1, 0),  # the same, with interior tiles read in place
        (1, 66, 900, 64, 16, 0),
        (32, 64, 125, 1, 1, 0),
    ]:
        x, w, b = (
            randn(rng, c_in, t_in),
            randn(rng, c_out, c_in, k, scale=(c_in * k) ** -0.5),
            randn(rng, c_out),
        )
        got = ck.conv1d(x, w, b, stride=s, pad=pad, relu=True)
        assert_close(
            got, torch.relu(F.conv1d(t_(x)[None], t_(w), t_(b), s, pad)[0]), f"{c_in}->{c_out} k{k} s{s}"
        )


def test_kernels_too_long_for_the_panel_take_the_direct_path_and_still_match(ck: CKernels) -> None:
    rng = np.random.default_rng(12)
    x, w = randn(rng, 2, 2300), randn(rng, 3, 2, 2100, scale=0.02)
    assert_close(ck.conv1d(x, w, stride=3, pad=5), F.conv1d(t_(x)[None], t_(w), None, 3, 5)[0], "k=2100")
    x2, w2 = randn(rng, 1, 14000), randn(rng, 2, 1, 3)
    got = ck.conv1d(x2, w2, dilation=6500)  # a dilated span wider than the panel
    assert_close(got, F.conv1d(t_(x2)[None], t_(w2), None, 1, 0, 6500)[0], "dilation 6500")
    x3, w3 = randn(rng, 2, 3, 2110), randn(rng, 2, 2, 2, 2100, scale=0.02)
    got3 = ck.conv2d(x3, w3, pad=(1, 1))
    assert_close(got3, F.conv2d(t_(x3)[None], t_(w3), None, 1, 1)[0], "conv2d kw=2100")
    x4, w4 = randn(rng, 2, 5), randn(rng, 2, 3, 3)
    for stride in (1, 2):  # a phase span of 14000 (direct path), then of 7000 (panel path, long lags)
        got4 = ck.conv_transpose1d(x4, w4, stride=stride, dilation=7000)
        ref4 = F.conv_transpose1d(t_(x4)[None], t_(w4), None, stride, 0, 0, 1, 7000)[0]
        assert_close(got4, ref4, f"convT stride {stride} dilation 7000")


def test_conv_transpose1d_matches_torch_over_stride_padding_output_padding_dilation(ck: CKernels) -> None:
    rng = np.random.default_rng(20)
    done = 0
    while done < 80:
        k, s, d = int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        op = int(rng.integers(0, max(s, d)))
        pad = int(rng.integers(0, k + 2))
        c_in, c_out, t_in = int(rng.integers(1, 7)), int(rng.integers(1, 10)), int(rng.integers(1, 40))
        if ck.conv_transpose_out_len(t_in, k, s, pad, op, d) < 1:
            continue  # torch refuses these too (see the out_len test)
        x, w, b = randn(rng, c_in, t_in), randn(rng, c_in, c_out, k, scale=0.3), maybe_bias(rng, c_out)
        relu = bool(rng.random() < 0.5)
        got = ck.conv_transpose1d(x, w, b, stride=s, pad=pad, output_padding=op, dilation=d, relu=relu)
        ref = F.conv_transpose1d(t_(x)[None], t_(w), None if b is None else t_(b), s, pad, op, 1, d)[0]
        assert_close(got, torch.relu(ref) if relu else ref, f"k{k} s{s} p{pad} op{op} d{d} t{t_in}")
        done += 1


def test_conv2d_matches_torch_over_random_kernels_strides_and_padding(ck: CKernels) -> None:
    rng = np.random.default_rng(30)
    for i in range(60):
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        h = max(1, kh - 2 * ph) + int(rng.integers(0, 12))
        w_ = max(1, kw - 2 * pw) + int(rng.integers(0, 40))
        c_in, c_out = int(rng.integers(1, 6)), int(rng.integers(1, 20))
        x, w, b = randn(rng, c_in, h, w_), randn(rng, c_out, c_in, kh, kw, scale=0.3), maybe_bias(rng, c_out)
        got = ck.conv2d(x, w, b, stride=(sh, sw), pad=(ph, pw), relu=i % 2 == 0)
        ref = F.conv2d(t_(x)[None], t_(w), None if b is None else t_(b), (sh, sw), (ph, pw))[0]
        assert_close(
            got, torch.relu(ref) if i % 2 == 0 else ref, f"case {i}: {kh}x{kw} s{sh},{sw} p{ph},{pw}"
        )


def test_conv2d_matches_torch_on_the_crnn_block_shape_and_wide_in_place_rows(ck: CKernels) -> None:
    rng = np.random.default_rng(31)
    x, w = randn(rng, 16, 33, 141), randn(rng, 32, 16, 3, 3, scale=0.1)
    assert_close(ck.conv2d(x, w, pad=(1, 1)), F.conv2d(t_(x)[None], t_(w), None, 1, 1)[0], "16x33x141")
    # 40 channels x 3 kernel rows > one panel: chunks of whole channels, interior tiles read in place
    x, w, b = randn(rng, 40, 6, 300), randn(rng, 10, 40, 3, 3, scale=0.05), randn(rng, 10)
    got = ck.conv2d(x, w, b, pad=(1, 0), relu=True)
    assert_close(got, torch.relu(F.conv2d(t_(x)[None], t_(w), t_(b), 1, (1, 0))[0]), "40x6x300")


def test_linear_matches_torch_for_lengths_on_and_off_the_vector_width(ck: CKernels) -> None:
    rng = np.random.default_rng(40)
    for n_in in [1, 7, 31, 32, 33, 64, 100, 1152]:
        n_out = int(rng.integers(1, 40))
        x, w, b = randn(rng, n_in), randn(rng, n_out, n_in, scale=n_in**-0.5), maybe_bias(rng, n_out)
        ref = F.linear(t_(x), t_(w), None if b is None else t_(b))
        assert_close(ck.linear(x, w, b), ref, f"linear {n_in}->{n_out}")
        assert_close(ck.linear(x, w, b, relu=True), torch.relu(ref), f"linear {n_in}->{n_out} relu")


# ---------------------------------------------------------------- element-wise


def test_activations_match_torch_including_the_tails(ck: CKernels) -> None:
    rng = np.random.default_rng(50)
    tails = np.array([-1e4, -100, -88.7, -20, -1e-6, 0, 1e-6, 20, 88.7, 100, 1e4], np.float32)
    x = np.concatenate([randn(rng, 3, 400, scale=4.0).ravel(), tails]).astype(np.float32).reshape(-1, 1)
    pairs: list[tuple[Callable[[F32], F32], Callable[[Tensor], Tensor]]] = [
        (ck.relu, torch.relu),
        (ck.gelu, F.gelu),
        (ck.sigmoid, torch.sigmoid),
        (ck.tanh, torch.tanh),
    ]
    for c_fn, t_fn in pairs:
        got = c_fn(x)
        assert np.isfinite(got).all(), f"{c_fn.__name__}: non-finite output"
        assert_close(got, t_fn(t_(x)), c_fn.__name__)


def test_sigmoid_at_plus_minus_100_is_finite_and_saturated(ck: CKernels) -> None:
    got = ck.sigmoid(np.array([-100, 100, -1e30, 1e30], np.float32))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [0, 1, 0, 1], atol=1e-30)


def test_sigmoid_and_tanh_stay_within_3_ulp_of_float64_on_a_dense_grid(ck: CKernels) -> None:
    """The branch-free exp behind both (so that they vectorize without fast-math) against float64, on
    2 million points over [-100, 100] plus a tail off the 16-element block; NaN stays NaN."""
    x = np.concatenate([np.linspace(-100, 100, 2_000_003, dtype=np.float32), np.array([np.nan], np.float32)])
    x64 = x.astype(np.float64)
    for c_fn, truth in ((ck.sigmoid, 1.0 / (1.0 + np.exp(-x64))), (ck.tanh, np.tanh(x64))):
        got = c_fn(x.reshape(-1, 1)).ravel()
        assert np.isnan(got[-1]), f"{c_fn.__name__}: NaN lost"
        err = np.abs(got[:-1].astype(np.float64) - truth[:-1])
        ulp = np.spacing(np.abs(truth[:-1]).astype(np.float32)).astype(np.float64)
        normal = np.abs(truth[:-1]) > 1e-30
        assert (err[normal] <= 3 * ulp[normal]).all(), f"{c_fn.__name__}: max {np.max(err / ulp)} ulp"
        assert err.max() < 1e-7


def test_add_channel_affine_and_softmax_match_torch(ck: CKernels) -> None:
    rng = np.random.default_rng(51)
    for _ in range(20):
        c, t = int(rng.integers(1, 9)), int(rng.integers(1, 300))
        a, b = randn(rng, c, t), randn(rng, c, t)
        assert_close(ck.add(a, b), t_(a) + t_(b), "add")
        scale, shift = randn(rng, c), randn(rng, c)
        assert_close(
            ck.channel_affine(a, scale, shift), t_(a) * t_(scale)[:, None] + t_(shift)[:, None], "affine"
        )
        logits = randn(rng, int(rng.integers(1, 30)), scale=float(rng.choice([1.0, 50.0, 1000.0])))
        assert_close(ck.softmax(logits), torch.softmax(t_(logits), 0), "softmax")


def test_elementwise_kernels_give_the_same_result_in_place(ck: CKernels) -> None:
    """The header allows y == x (y == a or b for add): the blocked loops must read before they write."""
    rng = np.random.default_rng(53)
    for n in (1, 15, 16, 17, 100):
        x, other = randn(rng, 3, n), randn(rng, 3, n)
        scale, shift = randn(rng, 3), randn(rng, 3)
        for name in ("relu", "gelu", "sigmoid", "tanh"):
            buf = x.copy()
            ck.raw(name)(buf.ctypes.data, buf.ctypes.data, buf.size)
            np.testing.assert_array_equal(buf, getattr(ck, name)(x), err_msg=f"{name} n={n}")
        for first in (True, False):
            buf = x.copy()
            a_, b_ = (buf, other) if first else (other, buf)
            ck.raw("add")(buf.ctypes.data, a_.ctypes.data, b_.ctypes.data, buf.size)
            np.testing.assert_array_equal(buf, ck.add(x, other), err_msg=f"add n={n}")
        buf = x.copy()
        ck.raw("channel_affine")(buf.ctypes.data, buf.ctypes.data, scale.ctypes.data, shift.ctypes.data, 3, n)
        np.testing.assert_array_equal(buf, ck.channel_affine(x, scale, shift), err_msg=f"affine n={n}")


def test_log_power_matches_the_models_spectrogram_formula(ck: CKernels) -> None:
    rng = np.random.default_rng(52)
    for n_freq, n_frames in [(33, 40), (1, 1), (65, 7)]:
        spec = randn(rng, 2 * n_freq, n_frames, scale=0.3)
        spec[:, 0] = 0.0  # zero power: log(eps)
        re, im = t_(spec)[:n_freq], t_(spec)[n_freq:]
        assert_close(ck.log_power(spec, 1e-6), torch.log(re * re + im * im + 1e-6), f"{n_freq}x{n_frames}")
