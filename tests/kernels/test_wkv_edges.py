"""Edge shapes and extreme parameters for the WKV kernels (kernels/wkv.py) against a float64 definition written
here: N = 1, N below, equal to and a multiple of the unroll (8), C not a multiple of 32, B = 1, a very fast decay
(w = -e^5), very negative keys (-40). Runs in Triton's interpreter on the CPU."""
from __future__ import annotations

import pytest
import torch

from spikeformers.kernels import load

from marks import in_interpreter  # noqa: E402  (tests/kernels/marks.py)


def definition(w, u, k, v):
    """y_t = softmax over i <= t of the logits (t-1-i) w + k_i (i < t), u + k_t (i = t), applied to v."""
    ys = []
    for t in range(k.shape[1]):
        logits = torch.stack([(t - 1 - i) * w + k[:, i] for i in range(t)] + [u + k[:, t]], 1)
        ys.append((logits.softmax(1) * v[:, :t + 1]).sum(1))
    return torch.stack(ys, 1)


def run(B, N, C, decay_shift=0.0, key_shift=0.0, key_scale=3.0, seed=0, tol=2e-5):
    gen = torch.Generator().manual_seed(seed)
    k = (torch.randn(B, N, C, generator=gen) * key_scale + key_shift).requires_grad_()
    v = torch.randn(B, N, C, generator=gen).requires_grad_()
    decay = (torch.randn(C, generator=gen) + decay_shift).requires_grad_()
    u = torch.randn(C, generator=gen).requires_grad_()
    y = load("wkv").wkv(-decay.exp(), u, k, v)
    g = torch.randn(y.shape, generator=gen)
    got = torch.autograd.grad(y, (decay, u, k, v), g)
    ref_in = [t.detach().double().requires_grad_() for t in (decay, u, k, v)]
    ref = definition(-ref_in[0].exp(), ref_in[1], ref_in[2], ref_in[3])
    want = torch.autograd.grad(ref, ref_in, g.double(), allow_unused=True, materialize_grads=True)  # N = 1: no w
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)
    for name, a, b in zip(("decay", "u", "k", "v"), got, want):
        assert torch.isfinite(a).all(), name
        torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol * max(1.0, b.abs().max().item()), msg=name)


@in_interpreter
@pytest.mark.parametrize("B,N,C", [(1, 1, 5), (2, 1, 33), (1, 3, 7), (1, 7, 32), (2, 8, 31), (1, 16, 65),
                                   (1, 9, 1)])
def test_edge_shapes(B, N, C):
    run(B, N, C)


@in_interpreter
@pytest.mark.parametrize("N", [1, 5, 8, 13])
def test_fast_decay(N):
    # decay ~ 5 -> w ~ -e^5 ~ -148: the past vanishes after one step; gradients must stay finite and right
    run(2, N, 9, decay_shift=5.0)


@in_interpreter
@pytest.mark.parametrize("N", [1, 6, 11])
def test_very_negative_keys(N):
    run(1, N, 10, key_shift=-40.0, key_scale=1.0)


@in_interpreter
def test_slow_decay_long():
    # decay ~ -6 -> w ~ -0.0025: the whole past matters (R, RQ carry large (t-1-i) factors)
    run(1, 40, 6, decay_shift=-6.0)


@in_interpreter
@pytest.mark.parametrize("N", [5, 8])
def test_large_bonus_gives_finite_gradients(N):
    # u = 100: e^u overflows fp32. For N not a multiple of the unroll the backward's masked tail tokens
    # (k = g = L = 0) must add nothing to dL/du, not 0 * e^u = NaN
    k, v = torch.randn(1, N, 4, requires_grad=True), torch.randn(1, N, 4, requires_grad=True)
    w, u = torch.full((4,), -1.0, requires_grad=True), torch.full((4,), 100.0, requires_grad=True)
    y = load("wkv").wkv(w, u, k, v)
    torch.testing.assert_close(y, v.detach())  # the token's own weight e^100 swamps the past
    gw, gu, gk, gv = torch.autograd.grad(y.sum(), (w, u, k, v))
    assert torch.isfinite(gu).all() and torch.isfinite(gw).all(), (gu, gw)
    torch.testing.assert_close(gu, torch.zeros(4), atol=1e-6, rtol=0)


@in_interpreter
def test_no_grad_forward_equals_definition():
    # evaluation (no_grad) with parameters that require grad: the forward that saves nothing (SAVE off)
    k, v = torch.randn(1, 5, 3), torch.randn(1, 5, 3)
    w, u = torch.full((3,), -0.5, requires_grad=True), torch.zeros(3, requires_grad=True)
    with torch.no_grad():
        y = load("wkv").wkv(w, u, k, v)
    assert y.grad_fn is None
    torch.testing.assert_close(y.double(), definition(w.detach().double(), u.detach().double(), k.double(),
                                                      v.double()).float().double(), rtol=1e-5, atol=1e-5)
