"""The C layer kernels against torch, continued: pooling and resampling, GRU/LSTM layers, the
output-size helpers and the wrappers' argument checks (same parity rule as test_ckernels_kernels.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812  (the conventional alias)
from torch import Tensor, nn

from pipeline.ckernel.lib import CKernels, RnnWeights
from tests.ckernel_parity import F32, assert_close, built_kernels, randn, t_


@pytest.fixture(scope="module")
def ck() -> Iterator[CKernels]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the reference is cheap; extra threads only fight other workers
    yield built_kernels()
    torch.set_num_threads(before)


# ---------------------------------------------------------------- pooling and resampling


def _pool_args(rng: np.random.Generator) -> tuple[int, int, int, int, bool]:
    """Pooling geometry; the input may be shorter than the window (ceil mode can still give one output)."""
    k = int(rng.integers(1, 8))
    s = int(rng.integers(1, 5))
    pad = int(rng.integers(0, k // 2 + 1))
    return int(rng.integers(1, 30)), k, s, pad, bool(rng.random() < 0.5)


def test_max_and_avg_pool1d_match_torch_with_ceil_mode_and_padding(ck: CKernels) -> None:
    rng = np.random.default_rng(60)
    ceil_seen = set()
    done = 0
    while done < 80:
        t_in, k, s, pad, ceil = _pool_args(rng)
        if ck.pool_out_len(t_in, k, s, pad, ceil) < 1:
            continue  # torch refuses these too (see the out_len test)
        x = randn(rng, 3, t_in)
        i, done = done, done + 1
        what = f"case {i}: t_in={t_in} k={k} s={s} pad={pad} ceil={ceil}"
        ref = F.max_pool1d(t_(x)[None], k, s, pad, ceil_mode=ceil)[0]
        assert_close(ck.maxpool1d(x, k, s, pad, ceil), ref, "max " + what)
        for cip in (False, True):
            ref_a = F.avg_pool1d(t_(x)[None], k, s, pad, ceil_mode=ceil, count_include_pad=cip)[0]
            assert_close(ck.avgpool1d(x, k, s, pad, ceil, cip), ref_a, f"avg cip={cip} " + what)
        ceil_seen.add(ceil)
    assert ceil_seen == {False, True}


def test_adaptive_avgpool1d_matches_torch_when_lengths_do_not_divide(ck: CKernels) -> None:
    rng = np.random.default_rng(61)
    for _ in range(60):
        t_in, t_out = int(rng.integers(1, 80)), int(rng.integers(1, 30))
        x = randn(rng, 2, t_in)
        assert_close(
            ck.adaptive_avgpool1d(x, t_out), F.adaptive_avg_pool1d(t_(x)[None], t_out)[0], f"{t_in}->{t_out}"
        )


def test_maxpool2d_matches_torch_with_ceil_mode(ck: CKernels) -> None:
    rng = np.random.default_rng(62)
    for _ in range(50):
        kh, kw, sh, sw = (int(v) for v in rng.integers(1, 4, size=4))
        h, w = kh + int(rng.integers(0, 10)), kw + int(rng.integers(0, 10))
        ceil = bool(rng.random() < 0.5)
        x = randn(rng, 3, h, w)
        ref = F.max_pool2d(t_(x)[None], (kh, kw), (sh, sw), 0, ceil_mode=ceil)[0]
        assert_close(
            ck.maxpool2d(x, (kh, kw), (sh, sw), ceil), ref, f"{h}x{w} k{kh},{kw} s{sh},{sw} ceil={ceil}"
        )


def test_maxpool2d_crnn_windows_match_torch_across_blocks_tails_and_nan(ck: CKernels) -> None:
    """The (2, 2) and (2, 1) windows of the CRNN blocks take a branch-free path in blocks of 16 outputs:
    widths on and off the block size, odd sizes cut by ceil_mode, and NaN (torch propagates it)."""
    rng = np.random.default_rng(64)
    for h, w in [(33, 559), (17, 280), (9, 140), (1, 1), (2, 33), (5, 31), (4, 32)]:
        x = randn(rng, 2, h, w)
        x[0, h // 2, w // 2] = np.nan
        for kw in (1, 2):
            ref = F.max_pool2d(t_(x)[None], (2, kw), (2, kw), 0, ceil_mode=True)[0]
            got = ck.maxpool2d(x, (2, kw), (2, kw), True)
            # a max is exact: equal values, NaN where torch has NaN (assert_array_equal matches NaN to NaN)
            np.testing.assert_array_equal(got, ref.numpy(), f"{h}x{w} k2,{kw}")


def test_upsample_nearest_matches_torch_for_up_and_down_sizes(ck: CKernels) -> None:
    rng = np.random.default_rng(63)
    for _ in range(60):
        t_in, t_out = int(rng.integers(1, 60)), int(rng.integers(1, 150))
        x = randn(rng, 2, t_in)
        ref = F.interpolate(t_(x)[None], size=t_out, mode="nearest")[0]
        assert_close(ck.upsample_nearest1d(x, t_out), ref, f"{t_in}->{t_out}")


def test_mean_axis1_and_transpose_match_numpy(ck: CKernels) -> None:
    rng = np.random.default_rng(64)
    for _ in range(10):
        c, f, n = (int(v) for v in rng.integers(1, 20, size=3))
        x = randn(rng, c, f, n)
        assert_close(ck.mean_axis1(x), t_(x).mean(1), "mean_axis1")
        m = randn(rng, c, n)
        np.testing.assert_array_equal(ck.transpose(m), m.T)


# ---------------------------------------------------------------- recurrent layers


def _weights(module: nn.GRU | nn.LSTM, suffix: str) -> RnnWeights:
    def get(name: str) -> F32:
        out: F32 = getattr(module, f"{name}_l0{suffix}").detach().numpy()
        return out

    return RnnWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_rnn_matches_torch_forward_reverse_and_bidirectional(ck: CKernels, kind: str) -> None:
    rng = np.random.default_rng(70 if kind == "gru" else 71)
    torch.manual_seed(70)
    for _ in range(25):
        t, n_in, hidden = int(rng.integers(1, 30)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        cls = nn.GRU if kind == "gru" else nn.LSTM
        module = cls(n_in, hidden, batch_first=True, bidirectional=True).eval()
        x = randn(rng, t, n_in)
        with torch.no_grad():
            ref = module(t_(x)[None])[0][0]
        fw, bw = _weights(module, ""), _weights(module, "_reverse")
        one, both = (ck.gru, ck.gru_bidirectional) if kind == "gru" else (ck.lstm, ck.lstm_bidirectional)
        assert_close(one(x, fw), ref[:, :hidden], f"{kind} forward t={t} n_in={n_in} h={hidden}")
        assert_close(one(x, bw, reverse=True), ref[:, hidden:], f"{kind} reverse t={t}")
        assert_close(both(x, fw, bw), ref, f"{kind} bidirectional (row stride 2 hidden) t={t}")


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_rnn_matches_torch_over_the_crnn_sequence_length_and_widths(ck: CKernels, kind: str) -> None:
    """139 steps of 64 inputs and 64 hidden units (the demo CRNN), and widths off the 16-gate register
    block: the input side is one product for all steps (4 steps per pass), the recurrence accumulates in
    double, so the error stays at float rounding however long the sequence."""
    rng = np.random.default_rng(72)
    torch.manual_seed(72)
    for t, n_in, hidden in [(139, 64, 64), (141, 37, 21), (3, 5, 7)]:
        cls = nn.GRU if kind == "gru" else nn.LSTM
        module = cls(n_in, hidden, batch_first=True).eval()
        x = randn(rng, t, n_in)
        with torch.no_grad():
            ref = module(t_(x)[None])[0][0]
        run = ck.gru if kind == "gru" else ck.lstm
        assert_close(run(x, _weights(module, "")), ref, f"{kind} t={t} n_in={n_in} h={hidden}")


# ---------------------------------------------------------------- output sizes and argument checks


def _torch_len(fn: Callable[[], Tensor]) -> int:
    """Output length of a torch call, -1 when torch refuses the arguments."""
    try:
        return int(fn().shape[-1])
    except RuntimeError:
        return -1


def test_out_len_helpers_agree_with_torch_and_return_minus_1_when_torch_refuses(ck: CKernels) -> None:
    rng = np.random.default_rng(80)
    impossible = 0
    for _ in range(150):
        t_in, k, s, pad, d = (int(v) for v in rng.integers([1, 1, 1, 0, 1], [20, 10, 5, 8, 4]))
        x = torch.zeros(1, 1, t_in)
        want = _torch_len(lambda: F.conv1d(x, torch.zeros(1, 1, k), None, s, pad, d))  # noqa: B023 - called at once, inside this iteration
        assert ck.conv_out_len(t_in, k, s, pad, d) == want, (t_in, k, s, pad, d)
        op = int(rng.integers(0, 5))
        want_t = _torch_len(lambda: F.conv_transpose1d(x, torch.zeros(1, 1, k), None, s, pad, op, 1, d))  # noqa: B023 - called at once, inside this iteration
        assert ck.conv_transpose_out_len(t_in, k, s, pad, op, d) == want_t, (t_in, k, s, pad, op, d)
        for ceil in (False, True):
            want_p = _torch_len(lambda: F.max_pool1d(x, k, s, pad, ceil_mode=ceil))  # noqa: B023 - called at once, inside this iteration
            assert ck.pool_out_len(t_in, k, s, pad, ceil) == want_p, (t_in, k, s, pad, ceil)
            impossible += want_p == -1
        impossible += (want == -1) + (want_t == -1)
    assert impossible >= 30  # the draw exercises the -1 branch of every helper, not just the happy path
    assert ck.conv_out_len(5, 3, 0, 0, 1) == -1  # stride 0
    assert ck.conv_out_len(0, 1, 1, 0, 1) == -1  # empty input


def test_wrappers_reject_wrong_dtype_layout_and_shape_naming_the_argument(ck: CKernels) -> None:
    x = np.zeros((2, 10), np.float32)
    w = np.zeros((3, 2, 3), np.float32)
    with pytest.raises(ValueError, match="x: expected dtype float32"):
        ck.conv1d(x.astype(np.float64), w)
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        ck.conv1d(np.zeros((10, 2), np.float32).T, w)
    with pytest.raises(ValueError, match="w: shape"):
        ck.conv1d(x, np.zeros((3, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\)"):
        ck.conv1d(x, w, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="conv1d: impossible arguments"):
        ck.conv1d(x, np.zeros((3, 2, 30), np.float32))
    with pytest.raises(ValueError, match="maxpool1d: impossible arguments"):
        ck.maxpool1d(x, 2, 2, pad=2)
    with pytest.raises(ValueError, match="conv1d: impossible arguments"):
        ck.conv1d(x, w, pad=2**32)  # ctypes alone would wrap it to pad 0 and succeed
    assert ck.conv_out_len(2**32 + 5, 3) == -1


def test_missing_library_error_says_to_run_make(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"run `make -C ckernels`"):
        CKernels(tmp_path / "libecgk.so")
