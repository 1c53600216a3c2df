"""The WKV kernels (kernels/wkv.py) against the recurrence's definition written here in float64 (a softmax over
the past, no scaling): outputs and the gradients of k, v, w and u, for keys large enough to overflow an
unscaled fp32 sum, fp32 and bf16 inputs, edge shapes (N = 1, N around the unroll of 8, C not a multiple of
32, B = 1), extreme decays, keys and bonuses, the no-grad forward, and SpikeGPT with the kernel against its
chunked form.
On the CPU the kernels run in Triton's interpreter (conftest.py)."""
from __future__ import annotations

import pytest
import torch

from spikeformers.kernels import load
from spikeformers.models import create_model

from marks import gpu, in_interpreter  # noqa: E402  (tests/kernels/marks.py)


def definition(w, u, k, v):
    """y_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (the same weights summed), [B, N, C]."""
    ys = []
    for t in range(k.shape[1]):
        logits = torch.stack([(t - 1 - i) * w + k[:, i] for i in range(t)] + [u + k[:, t]], 1)  # [B, t + 1, C]
        ys.append((logits.softmax(1) * v[:, :t + 1]).sum(1))
    return torch.stack(ys, 1)


def check(device, dtype, B=2, N=29, C=40, key_scale=3.0, key_shift=0.0, decay_shift=0.0, tol=2e-5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    k = (torch.randn(B, N, C, generator=gen) * key_scale + key_shift).to(device, dtype).requires_grad_()
    v = torch.randn(B, N, C, generator=gen).to(device, dtype).requires_grad_()
    decay = (torch.randn(C, generator=gen) + decay_shift).to(device).requires_grad_()
    u = torch.randn(C, generator=gen).to(device).requires_grad_()
    y = load("wkv").wkv(-decay.exp(), u, k, v)
    assert y.shape == v.shape and y.dtype == dtype
    g = torch.randn(y.shape, generator=gen).to(device, dtype)
    got = torch.autograd.grad(y, (decay, u, k, v), g)
    ref_in = [t.detach().double().requires_grad_() for t in (decay, u, k, v)]
    ref = definition(-ref_in[0].exp(), ref_in[1], ref_in[2], ref_in[3])
    want = torch.autograd.grad(ref, ref_in, g.double(), allow_unused=True, materialize_grads=True)  # N = 1: no w
    torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)
    for name, a, b in zip(("decay", "u", "k", "v"), got, want):
        assert a.dtype == (dtype if name in "kv" else torch.float32), name
        assert torch.isfinite(a).all(), name
        torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol * max(1.0, b.abs().max().item()), msg=name)


@in_interpreter
@pytest.mark.parametrize("key_scale", [3.0, 40.0])  # e^40 overflows fp32: the kernels keep every exponent <= 0
def test_interp_equals_definition(key_scale):
    check("cpu", torch.float32, key_scale=key_scale)


@in_interpreter
def test_interp_bf16_inputs_computed_in_fp32():
    check("cpu", torch.bfloat16, N=9, C=33, tol=2e-2)  # the reference sees the same bf16 values, in float64


@in_interpreter
@pytest.mark.parametrize("B,N,C", [(1, 1, 5), (2, 1, 33), (1, 3, 7), (1, 7, 32), (2, 8, 31), (1, 16, 65), (1, 9, 1)])
def test_interp_edge_shapes(B, N, C):
    """N = 1, below, at and a multiple of the unroll (8); C not a multiple of 32; B = 1."""
    check("cpu", torch.float32, B, N, C)


@in_interpreter
@pytest.mark.parametrize("N", [1, 5, 8, 13])
def test_interp_fast_decay(N):
    check("cpu", torch.float32, 2, N, 9, decay_shift=5.0)  # w ~ -e^5: the past vanishes after one token


@in_interpreter
@pytest.mark.parametrize("N", [1, 6, 11])
def test_interp_very_negative_keys(N):
    check("cpu", torch.float32, 1, N, 10, key_shift=-40.0, key_scale=1.0)


@in_interpreter
def test_interp_slow_decay_long():
    check("cpu", torch.float32, 1, 40, 6, decay_shift=-6.0)  # w ~ -0.0025: R, RQ carry large (t-1-i) factors


@in_interpreter
@pytest.mark.parametrize("N", [5, 8])
def test_interp_large_bonus_gives_finite_gradients(N):
    """u = 100: e^u overflows fp32. The backward's masked tail tokens (N not a multiple of the unroll) must add
    nothing to dL/du, not 0 * e^u = NaN."""
    k, v = torch.randn(1, N, 4, requires_grad=True), torch.randn(1, N, 4, requires_grad=True)
    w, u = torch.full((4,), -1.0, requires_grad=True), torch.full((4,), 100.0, requires_grad=True)
    y = load("wkv").wkv(w, u, k, v)
    torch.testing.assert_close(y, v.detach())  # the token's own weight e^100 swamps the past
    gw, gu, gk, gv = torch.autograd.grad(y.sum(), (w, u, k, v))
    assert torch.isfinite(gu).all() and torch.isfinite(gw).all(), (gu, gw)
    torch.testing.assert_close(gu, torch.zeros(4), atol=1e-6, rtol=0)


@in_interpreter
def test_interp_no_grad_forward_saves_nothing_and_equals_definition():
    k, v = torch.randn(1, 5, 3), torch.randn(1, 5, 3)
    w, u = torch.full((3,), -0.5, requires_grad=True), torch.zeros(3, requires_grad=True)
    with torch.no_grad():
        y = load("wkv").wkv(w, u, k, v)
    assert y.grad_fn is None
    want = definition(w.detach().double(), u.detach().double(), k.double(), v.double())
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)


@in_interpreter
def test_interp_spikegpt_kernel_equals_chunked_form():
    torch.manual_seed(0)
    ids = torch.randint(0, 32, (2, 11))
    runs = []
    for backend in ("triton", "torch"):
        torch.manual_seed(1)
        model = create_model("spikegpt_46m", vocab_size=32, dim=16, depth=2, block_size=16, dropout=0.0,
                             wkv_chunk=4, wkv_backend=backend)
        out = model(ids)
        out.square().mean().backward()
        runs.append((out, [p.grad for p in model.parameters()]))
    (a, ga), (b, gb) = runs
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_bad_shapes_are_refused_in_one_line():
    pytest.importorskip("triton")
    k = torch.zeros(2, 5, 4)
    with pytest.raises(ValueError, match=r"k, v must be \[B, N, C\]"):
        load("wkv").wkv(torch.zeros(3), torch.zeros(3), k, k)
    with pytest.raises(ValueError, match="wkv_backend"):
        create_model("spikegpt_46m", wkv_backend="cuda")


@gpu
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.bfloat16, 2e-2)])
def test_gpu_equals_definition(dtype, tol):
    check("cuda", dtype, B=3, N=70, C=200, tol=tol)
    check("cuda", dtype, B=1, N=5, C=40, key_scale=40.0, tol=tol)
