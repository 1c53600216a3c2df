"""Spikes stored as bits (kernels/pack.py, layers/spike_linear.py): the round trip is exact, and a Linear that
keeps its spike input as bits gives F.linear's output and gradients bit for bit while saving 1/16 of the bytes."""
import pytest
import torch
import torch.nn.functional as F

from spikeformers.kernels.pack import pack_bits, unpack_bits
from spikeformers.layers.spike_linear import spike_linear


def spikes(shape, dtype=torch.float32, seed=0, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).to(dtype)


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (3, 5, 13), (2, 4, 6, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_pack_round_trip_is_exact(shape, dtype):
    x = spikes(shape, dtype, seed=len(shape))
    words, s, d = pack_bits(x)
    assert words.dtype == torch.uint8 and words.numel() == -(-x.numel() // 8)
    y = unpack_bits((words, s, d))
    assert y.dtype == dtype and y.shape == x.shape and torch.equal(y, x)


def saved_bytes(fn):
    """Bytes autograd saves for backward while `fn()` runs (a saved-tensors hook counts them)."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_same_output_and_gradients_bit_for_bit_as_f_linear(dtype):
    x = spikes((4, 3, 10, 32), dtype, seed=1)
    w = torch.randn(24, 32, dtype=dtype, generator=torch.Generator().manual_seed(2))
    g = torch.randn(4, 3, 10, 24, dtype=dtype, generator=torch.Generator().manual_seed(3))
    xa, wa = x.clone().requires_grad_(), w.clone().requires_grad_()
    xb, wb = x.clone().requires_grad_(), w.clone().requires_grad_()
    ya, ref_bytes = saved_bytes(lambda: F.linear(xa, wa))
    yb, our_bytes = saved_bytes(lambda: spike_linear(xb, wb))
    assert torch.equal(ya, yb)
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(xa.grad, xb.grad) and torch.equal(wa.grad, wb.grad)
    x_bytes = x.numel() * x.element_size()
    assert our_bytes - w.numel() * w.element_size() == x.numel() // 8  # the input as bits, the weight as is
    assert ref_bytes >= x_bytes


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_under_bf16_autocast_on_cuda_bit_for_bit():
    x = spikes((4, 8, 64, 384), torch.bfloat16, seed=4).cuda()
    w = torch.randn(1536, 384, device="cuda")
    g = torch.randn(4, 8, 64, 1536, device="cuda", dtype=torch.bfloat16)
    outs = []
    for f in (F.linear, spike_linear):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = f(xi, wi)
        y.backward(g)
        outs.append((y, xi.grad, wi.grad))
    for a, b in zip(*outs):
        assert a.dtype == b.dtype and torch.equal(a, b)
