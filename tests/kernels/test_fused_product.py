"""The fused Q (K^T V) product (attention/fused_product.py, kernels/fused_product.py) against torch's
matmuls in float64: forward and the gradients of q, k and v, on head-split views of [.., N, H*d]
tensors (the layout the attention modules pass), contiguous tensors and 3-D inputs, with N and d that
are not multiples of the kernels' tiles. Outputs keep the operands' layout. On the CPU the kernels run
in Triton's interpreter (conftest.py)."""
from __future__ import annotations

import pytest
import torch

from spikeformers.attention import AttentionProduct, create_attention
from spikeformers.attention.base import merge_heads, split_heads
from spikeformers.attention.fused_product import fused_applies

from marks import gpu, in_interpreter  # noqa: E402  (tests/kernels/marks.py)


def operands(shape, heads, device, dtype, binary, seed):
    """q, k, v as `split_heads` views ([T, B, H, N, d] over [T, B, N, H*d] memory) when `heads`, else
    contiguous tensors of `shape`."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(3):
        x = torch.rand(shape, generator=gen) < 0.3 if binary else torch.randn(shape, generator=gen)
        x = x.to(device=device, dtype=dtype)
        out.append(split_heads(x, heads) if heads else x)
    return out


def check(shape, heads=None, device="cpu", dtype=torch.float32, binary=False, scale=0.125, tol=1e-5, seed=0):
    q, k, v = (t.requires_grad_() for t in operands(shape, heads, device, dtype, binary, seed))
    ours = AttentionProduct(scale, "q_kv", backend="triton")
    assert fused_applies("triton", q, k, v)
    y = ours(q, k, v)
    qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
    want = qd @ (kd.transpose(-2, -1) @ vd) * scale
    assert y.shape == want.shape and y.dtype == dtype and y.stride() == q.stride()
    torch.testing.assert_close(y.double(), want, rtol=tol, atol=tol)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1)).to(device=device, dtype=dtype)
    y.backward(g)
    want.backward(g.double())
    for t, td in ((q, qd), (k, kd), (v, vd)):
        assert t.grad.stride() == t.stride()
        torch.testing.assert_close(t.grad.double(), td.grad, rtol=tol, atol=tol * max(1.0, td.grad.abs().max().item()))




@in_interpreter
@pytest.mark.parametrize("shape,heads", [((2, 3, 70, 4 * 24), 4), ((1, 2, 64, 2 * 32), 2), ((3, 5, 130, 16), None),
                                         ((5, 40, 8), None)])
def test_interp_equals_float64(shape, heads):
    check(shape, heads)


@in_interpreter
def test_interp_binary_operands_are_exact():
    """Spikes: every sum is a small integer, so the fused product is exact in fp32."""
    q, k, v = operands((2, 2, 64, 64), 2, "cpu", torch.float32, True, 3)
    y = AttentionProduct(0.125, backend="triton")(q, k, v)
    assert torch.equal(y, q @ (k.transpose(-2, -1) @ v) * 0.125)


def test_dispatch_rules():
    q = torch.zeros(2, 64, 32)
    assert not fused_applies("auto", q, q, q)  # the CPU
    assert not fused_applies("torch", q, q, q)
    assert not fused_applies("triton", q, q, torch.zeros(2, 64, 16))  # shapes differ
    assert not fused_applies("triton", torch.zeros(2, 64, 128), torch.zeros(2, 64, 128), torch.zeros(2, 64, 128))
    with pytest.raises(ValueError, match="unknown product backend 'cuda'"):
        AttentionProduct(backend="cuda")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("shape,heads,dtype,binary,tol", [
    ((4, 64, 64, 384), 12, torch.float32, False, 1e-5), ((4, 64, 64, 384), 12, torch.bfloat16, True, 1e-2),
    ((2, 8, 196, 512), 8, torch.bfloat16, True, 1e-2), ((2, 3, 100, 4 * 40), 4, torch.float16, False, 2e-2)])
def test_gpu_equals_float64(shape, heads, dtype, binary, tol):
    check(shape, heads, "cuda", dtype, binary, tol=tol, seed=shape[2])


@pytest.mark.gpu
@gpu
def test_gpu_ssa_fused_equals_torch_under_autocast():
    """A whole SSA block in bf16 autocast: the fused product gives the torch product's output and
    gradients (binary operands: integer sums, exact in both)."""
    torch.manual_seed(0)
    ours = create_attention("ssa", dim=384, num_heads=12).cuda()
    ref = create_attention("ssa", dim=384, num_heads=12).cuda()
    ref.load_state_dict(ours.state_dict())
    ref.product.backend = "torch"
    x = torch.rand(4, 8, 64, 384, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        yo, yr = ours(x), ref(x)
    torch.testing.assert_close(yo.float(), yr.float())
    yo.float().square().sum().backward(), yr.float().square().sum().backward()
    for (n, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-2, atol=2e-2, msg=n)
    assert merge_heads(split_heads(x, 12)).equal(x)


@in_interpreter
def test_interp_binary_operands_are_saved_as_bits_with_the_same_gradients():
    from spikeformers.neurons.base import mark_binary, spikes_as_bits

    g = torch.Generator().manual_seed(5)
    ops = [(torch.rand(2, 3, 2, 40, 16, generator=g) < 0.3).float() for _ in range(3)]
    grad = torch.randn(2, 3, 2, 40, 16, generator=g)
    results = []
    for bits in (False, True):
        leaves = [o.clone().requires_grad_() for o in ops]
        with spikes_as_bits(bits):
            q, k, v = [mark_binary(t * 1.0) for t in leaves]
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            y = AttentionProduct(scale=0.25, order="q_kv", backend="triton")(q, k, v)
        y.backward(grad)
        results.append((y, *(t.grad for t in leaves), sum(t.numel() * t.element_size() for t in saved)))
    (ya, *ga, bytes_a), (yb, *gb, bytes_b) = results
    assert torch.equal(ya, yb) and all(torch.equal(a, b) for a, b in zip(ga, gb))
    assert bytes_b * 32 == bytes_a  # fp32 operands: 32 bits each, then one


@in_interpreter
@pytest.mark.parametrize("n", [1, 7, 8, 4095, 4096 * 2 + 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interp_bit_packing_kernels_equal_the_pytorch_layout(n, dtype):
    from spikeformers.kernels.pack import pack_bits, unpack_bits

    x = (torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.4).to(dtype).view(-1, 1)
    ref = pack_bits(x, backend="torch")
    ker = pack_bits(x, backend="triton")
    assert torch.equal(ker[0], ref[0])
    y = unpack_bits(ker, backend="triton")
    assert y.dtype == dtype and torch.equal(y, x) and torch.equal(unpack_bits(ref, backend="torch"), x)
