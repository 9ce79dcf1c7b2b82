"""The C backward kernels, training-mode batch norm, MSE loss and AdamW against torch autograd and
torch.optim.AdamW, on randomized shapes through ctypes (ckernels/include/ecgk_train.h)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812  (the conventional alias)

from pipeline.ckernel.train import CTrainKernels

ATOL, RTOL = 1e-5, 1e-4  # unit-scale random inputs: float32 rounding of sums of ≤ a few hundred terms


@pytest.fixture(scope="module")
def k() -> CTrainKernels:
    return CTrainKernels()


def _close(c: np.ndarray, t: torch.Tensor) -> None:
    np.testing.assert_allclose(c, t.detach().numpy(), atol=ATOL, rtol=RTOL)


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_conv1d_and_transposed_backward_match_autograd_on_random_shapes(k: CTrainKernels, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c_in, c_out, t_in = (int(v) for v in rng.integers(1, 9, 3))
    kk, stride = int(rng.choice([1, 3, 4, 7])), int(rng.integers(1, 4))
    pad = int(rng.integers(0, kk // 2 + 1))
    t_in += kk
    x, w, b = _rand(rng, c_in, t_in), _rand(rng, c_out, c_in, kk), _rand(rng, c_out)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    y = F.conv1d(xt[None], wt, bt, stride=stride, padding=pad)[0]
    dy = _rand(rng, *y.shape)
    torch.autograd.backward(y, torch.from_numpy(dy))
    dx, dw, db = k.conv1d_backward(dy, x, w, stride=stride, pad=pad)
    _close(dx, xt.grad), _close(dw, wt.grad), _close(db, bt.grad)  # type: ignore[arg-type,func-returns-value]
    wT = _rand(rng, c_in, c_out, kk)
    xt2, wt2, bt2 = (torch.from_numpy(a).requires_grad_() for a in (x, wT, b))
    y2 = F.conv_transpose1d(xt2[None], wt2, bt2, stride=stride, padding=pad)[0]
    dy2 = _rand(rng, *y2.shape)
    torch.autograd.backward(y2, torch.from_numpy(dy2))
    dx2, dw2, db2 = k.conv_transpose1d_backward(dy2, x, wT, stride=stride, pad=pad)
    _close(dx2, xt2.grad), _close(dw2, wt2.grad), _close(db2, bt2.grad)  # type: ignore[arg-type,func-returns-value]


@pytest.mark.parametrize("seed", range(4))
def test_linear_relu_maxpool_mse_backward_match_autograd(k: CTrainKernels, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n_in, n_out, c, t = (int(v) for v in rng.integers(2, 40, 4))
    x, w, b = _rand(rng, n_in), _rand(rng, n_out, n_in), _rand(rng, n_out)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    dy = _rand(rng, n_out)
    torch.autograd.backward(F.linear(xt, wt, bt), torch.from_numpy(dy))
    dx, dw, db = k.linear_backward(dy, x, w)
    _close(dx, xt.grad), _close(dw, wt.grad), _close(db, bt.grad)  # type: ignore[arg-type,func-returns-value]
    a = _rand(rng, c, t)
    at = torch.from_numpy(a).requires_grad_()
    r = torch.relu(at)
    g = _rand(rng, c, t)
    torch.autograd.backward(r, torch.from_numpy(g))
    _close(k.relu_backward(g, r.detach().numpy().copy()), at.grad)  # type: ignore[arg-type]
    a[:, 1::3] = np.maximum(a[:, 1::3], 0.0)  # ties (as after a ReLU): torch routes to the first maximum
    a[:, ::5] = 0.0
    pt = torch.from_numpy(a).requires_grad_()
    p = F.max_pool1d(pt[None], 2, 2)[0]
    gp = _rand(rng, *p.shape)
    torch.autograd.backward(p, torch.from_numpy(gp))
    _close(k.maxpool1d_backward(gp, a, 2, 2), pt.grad)  # type: ignore[arg-type]
    rr, xx = _rand(rng, 3, c, t), _rand(rng, 3, c, t)
    rt = torch.from_numpy(rr).requires_grad_()
    loss = F.mse_loss(rt, torch.from_numpy(xx))
    torch.autograd.backward(loss)
    c_loss, dr = k.mse_loss_backward(rr, xx)
    assert c_loss == pytest.approx(loss.item(), rel=1e-6)
    _close(dr, rt.grad)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_batchnorm_training_mode_forward_backward_and_running_stats_match_torch(
    k: CTrainKernels, seed: int
) -> None:
    rng = np.random.default_rng(200 + seed)
    b, c, t = int(rng.integers(1, 9)), int(rng.integers(1, 17)), int(rng.integers(2, 60))
    x = (_rand(rng, b, c, t) * 3 + 1).astype(np.float32)
    bn = torch.nn.BatchNorm1d(c)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(_rand(rng, c)))
        bn.bias.copy_(torch.from_numpy(_rand(rng, c)))
    gamma, beta = bn.weight.detach().numpy().copy(), bn.bias.detach().numpy().copy()
    running = (np.zeros(c, np.float32), np.ones(c, np.float32))
    xt = torch.from_numpy(x).requires_grad_()
    y = bn(xt)
    dy = _rand(rng, b, c, t)
    torch.autograd.backward(y, torch.from_numpy(dy))
    cy, mean, invstd = k.batchnorm_train(x, gamma, beta, running)
    _close(cy, y)
    _close(running[0], bn.running_mean)  # type: ignore[arg-type]
    _close(running[1], bn.running_var)  # type: ignore[arg-type]
    dx, dg, dbeta = k.batchnorm_train_backward(dy, x, mean, invstd, gamma)
    _close(dx, xt.grad)  # type: ignore[arg-type]
    _close(dg, bn.weight.grad)  # type: ignore[arg-type]
    _close(dbeta, bn.bias.grad)  # type: ignore[arg-type]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adamw_follows_torch_optim_adamw_over_many_steps(k: CTrainKernels, weight_decay: float) -> None:
    rng = np.random.default_rng(7)
    p = _rand(rng, 257)
    pt = torch.nn.Parameter(torch.from_numpy(p.copy()))
    opt = torch.optim.AdamW([pt], lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for step in range(1, 51):
        g = _rand(rng, 257) * np.float32(10.0 ** rng.uniform(-6, 0))
        pt.grad = torch.from_numpy(g.copy())
        opt.step()
        k.adamw(p, m, v, g, lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay, step=step)
    state = opt.state[pt]
    np.testing.assert_allclose(p, pt.detach().numpy(), atol=1e-7, rtol=1e-6)
    np.testing.assert_allclose(m, state["exp_avg"].numpy(), atol=1e-10, rtol=1e-6)
    np.testing.assert_allclose(v, state["exp_avg_sq"].numpy(), atol=1e-14, rtol=1e-6)


def test_kernels_refuse_a_wrongly_shaped_gradient_naming_it(k: CTrainKernels) -> None:
    x, w = np.zeros((2, 10), np.float32), np.zeros((3, 2, 3), np.float32)
    with pytest.raises(ValueError, match="dy: expected shape"):
        k.conv1d_backward(np.zeros((3, 9), np.float32), x, w)
