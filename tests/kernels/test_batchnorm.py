"""layers.BatchNorm1d/2d: torch's BatchNorm, with training-mode kernels (Triton) on channel-fastest inputs.

References: torch's own nn.BatchNorm (outputs, running statistics, gradients of input, weight and
bias) and a float64 computation for inputs whose mean is far from zero (the shifted-sum variance must
not cancel). On the CPU the kernels run in Triton's interpreter.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeformers.layers.batchnorm import BatchNorm1d, BatchNorm2d
from spikeformers.layers.time import ConvBN, LinearBN
from spikeformers.kernels import interpreting

from marks import gpu, in_interpreter  # noqa: E402  (tests/kernels/marks.py)


def compare(shape, device="cpu", dtype=torch.float32, offset=0.0, steps=2, tol=1e-5):
    """Ours (kernels forced) vs torch's BatchNorm over `steps` training steps: output, running stats,
    counter, and the gradients of input, weight and bias."""
    C = shape[1]
    ours = (BatchNorm1d if len(shape) == 2 else BatchNorm2d)(C, momentum=0.3, backend="triton").to(device)
    ref = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(C, momentum=0.3).to(device)
    gen = torch.Generator().manual_seed(C + len(shape))
    weight, bias = torch.rand(C, generator=gen) + 0.5, torch.randn(C, generator=gen)
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(weight)
            m.bias.copy_(bias)
    layout = torch.channels_last if len(shape) == 4 else torch.contiguous_format
    for step in range(steps):
        x = (torch.randn(shape, generator=gen) * 2 + offset).to(device=device, dtype=dtype).contiguous(memory_format=layout)
        g = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        yo, yr = ours(xo), ref(xr)
        assert yo.dtype == dtype and yo.shape == yr.shape and yo.stride() == yr.stride()
        torch.testing.assert_close(yo.float(), yr.float(), rtol=tol, atol=tol)
        (yo.float() * g.float()).sum().backward()
        (yr.float() * g.float()).sum().backward()
        torch.testing.assert_close(xo.grad.float(), xr.grad.float(), rtol=tol, atol=tol)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(ref, name).grad, rtol=tol, atol=tol * shape[0])
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-4, atol=1e-5)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == steps




@in_interpreter
@pytest.mark.parametrize("shape", [(70, 40), (33, 200), (3, 5, 4, 6), (2, 130, 3, 3)])
def test_interp_equals_torch_batchnorm(shape):
    compare(shape)


@in_interpreter
def test_interp_large_mean_does_not_cancel():
    """Mean 1000, spread 2: E[x^2] - E[x]^2 in fp32 would lose the variance; the shifted sums keep it."""
    bn = BatchNorm1d(8, backend="triton")
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0)) * 2 + 1000.0
    y = bn(x).double()
    xd = x.double()
    want = (xd - xd.mean(0)) / torch.sqrt(xd.var(0, unbiased=False) + bn.eps)
    torch.testing.assert_close(y, want, rtol=1e-3, atol=1e-3)


def compare_folded(make, shape, device="cpu", layout=torch.contiguous_format, tol=1e-5, kernels=True):
    """A Linear/conv + BN with the layer's bias folded into the kernels' BN (`pre_bias`) vs the same module
    on torch's path: outputs, running mean, gradients; the folded bias's gradient is exactly zero, torch's
    column sum is zero up to rounding. `kernels=False`: a layout the kernels do not take (BN adds the bias)."""
    gen = torch.Generator().manual_seed(sum(shape))
    ours = make()
    with torch.no_grad():
        ours.bn.weight.uniform_(0.5, 1.5, generator=gen)
        ours.bn.bias.normal_(generator=gen)
    ours, ref = ours.to(device), make().to(device)
    ref.load_state_dict(ours.state_dict())
    ours.bn.backend, ref.bn.backend = "triton", "torch"
    for _ in range(2):
        x = torch.randn(shape, generator=gen).to(device)
        x = x.flatten(0, -4).contiguous(memory_format=layout).view(shape)  # [T, B, C, H, W]: each step's layout
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        yo, yr = ours(xo), ref(xr)
        torch.testing.assert_close(yo, yr, rtol=tol, atol=tol)
        g = torch.randn(yo.shape, generator=gen).to(device)
        (yo * g).sum().backward(), (yr * g).sum().backward()
        torch.testing.assert_close(xo.grad, xr.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(ours.bn.running_mean, ref.bn.running_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.bn.running_var, ref.bn.running_var, rtol=1e-4, atol=1e-5)
    (lo, bo), (lr, br) = [(p for n, p in m.named_parameters() if not n.startswith("bn.")) for m in (ours, ref)]
    torch.testing.assert_close(lo.grad, lr.grad, rtol=1e-4, atol=1e-4)
    assert (torch.count_nonzero(bo.grad) == 0) == kernels and br.grad.abs().max() < 1e-3 * br.grad.numel()
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(ours.bn, name).grad, getattr(ref.bn, name).grad, rtol=1e-4, atol=1e-4)


@in_interpreter
def test_interp_linear_bias_folded_into_bn():
    compare_folded(lambda: LinearBN(12, 20, bias=True), (2, 3, 7, 12))


@in_interpreter
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])  # contiguous: torch BN + bias
def test_interp_conv_bias_folded_into_bn(layout):
    compare_folded(lambda: ConvBN(3, 8, bias=True), (2, 3, 3, 5, 5), layout=layout,
                   kernels=layout == torch.channels_last)


def test_same_state_dict_as_torch_and_torch_paths():
    ours, ref = BatchNorm2d(6), nn.BatchNorm2d(6)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert isinstance(ours, nn.BatchNorm2d) and "backend='auto'" in repr(ours)
    x = torch.randn(4, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    if not interpreting():  # the CPU with backend auto: torch's forward, identical numbers
        assert torch.equal(ours(x), ref(x)) and torch.equal(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    assert torch.equal(ours(x), ref(x))
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        BatchNorm1d(3, backend="cuda")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("shape,dtype", [((16384, 384), torch.float32), ((4096, 1536), torch.bfloat16),
                                         ((64, 48, 32, 32), torch.float32), ((256, 384, 8, 8), torch.bfloat16),
                                         ((3000, 40), torch.float16)])
def test_gpu_equals_torch_batchnorm(shape, dtype):
    compare(shape, device="cuda", dtype=dtype, tol=1e-4 if dtype == torch.float32 else 2e-2)


@pytest.mark.gpu
@gpu
def test_gpu_under_autocast_and_cuda_graph():
    """bf16 autocast around a Linear + BN (how LinearBN runs), eager and replayed as a CUDA graph."""
    lin, bn = nn.Linear(64, 96).cuda(), BatchNorm1d(96).cuda()
    x = torch.randn(512, 64, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = bn(lin(x))
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert torch.isfinite(lin.weight.grad).all() and torch.isfinite(bn.weight.grad).all()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        bn(x[:, :96].contiguous())
    torch.cuda.current_stream().wait_stream(s)
    xs = torch.randn(512, 96, device="cuda")
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = bn(xs)
    before = bn.running_mean.clone()
    g.replay()
    torch.cuda.synchronize()
    ref = nn.functional.batch_norm(xs, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert not torch.equal(bn.running_mean, before)  # the replay updated the running statistics


@pytest.mark.gpu
@gpu
def test_gpu_linear_and_conv_bias_folded_into_bn(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # both sides' convs in full fp32
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    compare_folded(lambda: LinearBN(96, 192, bias=True), (4, 8, 16, 96), device="cuda", tol=1e-4)
    compare_folded(lambda: ConvBN(16, 32, bias=True), (2, 4, 16, 8, 8), device="cuda", layout=torch.channels_last,
                   tol=1e-4)
