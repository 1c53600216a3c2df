"""layers.bn_fire: conv/Linear -> BatchNorm -> LIF as one fused op (Triton), against torch's BatchNorm and a
LIF written here in a few lines (sigmoid surrogate, detached hard reset): spikes, the gradients of the input and
of every parameter, running statistics. On the CPU the kernels run in Triton's interpreter (conftest.py).
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikeformers.kernels import load
from spikeformers.layers import bn_fire
from spikeformers.layers.bn_fire import fire
from spikeformers.layers.time import ConvBN, LinearBN
from spikeformers.neurons import IFNode, LIFNode

from marks import gpu, in_interpreter  # noqa: E402  (tests/kernels/marks.py)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        sg = torch.sigmoid(4.0 * z)
        return g * 4.0 * sg * (1 - sg)


def lif_reference(x: torch.Tensor, tau: float, soft: bool) -> torch.Tensor:
    """LIF (decay_input, v_th 1, hard reset to 0 or soft reset; tau None: IF) over x [T, ...]."""
    v, out = torch.zeros_like(x[0]), []
    for xt in x:
        h = v + xt if tau is None else v + (xt - v) / tau
        s = _Spike.apply(h - 1.0)
        v = h - s.detach() if soft else h * (1 - s.detach())
        out.append(s)
    return torch.stack(out)


def torch_twin(layer: nn.Module) -> nn.Module:
    """The same conv/Linear + torch's own BatchNorm (same parameters and buffers)."""
    twin = copy.deepcopy(layer)
    bn = layer.bn
    twin.bn = (nn.BatchNorm2d if isinstance(layer, ConvBN) else nn.BatchNorm1d)(bn.num_features, momentum=bn.momentum)
    twin.bn.load_state_dict(bn.state_dict())
    return twin


def compare(layer: nn.Module, neuron: nn.Module, x: torch.Tensor, tau, soft, steps=2, tol=1e-4):
    """`fire(layer, neuron, x)` (kernels forced) vs torch's BN + the reference LIF, over `steps` training steps."""
    gen = torch.Generator().manual_seed(x.numel())
    with torch.no_grad():
        layer.bn.weight.uniform_(0.5, 1.5, generator=gen)
        layer.bn.bias.normal_(generator=gen)
        layer.bn.bias.add_(0.5)  # a firing rate well above zero
    layer.bn.backend, neuron.backend = "triton", "triton"
    ref = torch_twin(layer)
    ops = load("bn_fire")
    fused, apply = [], ops.bn_fire
    ops.bn_fire = lambda *a: fused.append(1) or apply(*a)  # counts the fused op's calls
    try:
        _steps(layer, neuron, ref, x, tau, soft, steps, tol, gen)
    finally:
        ops.bn_fire = apply
    assert len(fused) == steps  # the fused op ran


def _steps(layer, neuron, ref, x, tau, soft, steps, tol, gen):
    for _ in range(steps):
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        so = fire(layer, neuron, xo)
        sr = lif_reference(ref(xr), tau, soft)
        assert so.shape == sr.shape and so.dtype == sr.dtype
        assert 0.05 < float(sr.detach().mean()) < 0.95
        assert torch.equal(so, sr)
        g = torch.randn(so.shape, generator=gen)
        (so * g).sum().backward()
        (sr * g).sum().backward()
        torch.testing.assert_close(xo.grad, xr.grad, rtol=tol, atol=tol)
        x = x * 0.9 + 0.1
    for (name, po), pr in zip(layer.named_parameters(), ref.parameters()):
        if name.endswith("bias") and not name.startswith("bn"):  # folded into BN: exactly zero, torch's rounds
            assert torch.count_nonzero(po.grad) == 0
            torch.testing.assert_close(pr.grad, torch.zeros_like(pr.grad), rtol=0, atol=tol * 10)
            continue
        torch.testing.assert_close(po.grad, pr.grad, rtol=tol, atol=tol * 10, msg=name)
    torch.testing.assert_close(layer.bn.running_mean, ref.bn.running_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.bn.running_var, ref.bn.running_var, rtol=1e-4, atol=1e-5)
    assert int(layer.bn.num_batches_tracked) == int(ref.bn.num_batches_tracked) == steps




@in_interpreter
@pytest.mark.parametrize("T", [2, 10])  # 10: two chunks of the backward, with a checkpoint between
def test_interp_linear_bn_lif(T):
    torch.manual_seed(0)
    compare(LinearBN(12, 40), LIFNode(tau=2.0), torch.randn(T, 3, 5, 12), 2.0, False)


@in_interpreter
@pytest.mark.parametrize("T", [3, 9])
def test_interp_conv_bn_lif_channels_last(T):
    torch.manual_seed(1)
    x = torch.randn(T * 2, 3, 5, 6).contiguous(memory_format=torch.channels_last).view(T, 2, 3, 5, 6)
    compare(ConvBN(3, 70, bias=True), LIFNode(tau=2.0), x, 2.0, False)


@in_interpreter
def test_interp_soft_reset_if():
    torch.manual_seed(2)
    compare(LinearBN(8, 130, bias=False), IFNode(v_reset=None), torch.randn(4, 2, 3, 8), None, True)


@in_interpreter
def test_interp_hooked_neuron_sees_its_output():
    """A forward hook on the neuron (the firing-rate monitor's way) turns the fusion off, so the hook runs."""
    layer, neuron = LinearBN(6, 16), LIFNode()
    layer.bn.backend, neuron.backend = "triton", "triton"
    seen = []
    neuron.register_forward_hook(lambda m, i, o: seen.append(o))
    out = fire(layer, neuron, torch.randn(2, 3, 4, 6))
    assert len(seen) == 1 and seen[0] is out
    assert bn_fire._kernel_params(layer.bn, LIFNode(backend="triton"), torch.randn(6, 16)) is not None  # unhooked: fused


def test_hooked_layer_runs_as_a_module_call():
    """A hook on the conv/Linear + BN layer (e.g. a feature probe) still sees the layer called."""
    layer, neuron = LinearBN(6, 16), LIFNode()
    seen = []
    layer.register_forward_hook(lambda m, i, o: seen.append(o))
    out = fire(layer, neuron, torch.randn(2, 3, 4, 6))
    assert len(seen) == 1 and torch.equal(out, lif_reference(seen[0], 2.0, False))


@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_fused_equals_unfused(dtype):
    """On CUDA `fire` fuses by default; the same modules with the neuron's kernel alone (backend forced
    unfused by a hook-free `neuron(layer(x))`) give the same spikes and gradients."""
    torch.manual_seed(0)
    layer, neuron = ConvBN(16, 64, bias=True).cuda().to(memory_format=torch.channels_last), LIFNode().cuda()
    twin = copy.deepcopy(layer)
    x = torch.randn(4 * 8, 16, 14, 14, device="cuda").contiguous(memory_format=torch.channels_last).view(4, 8, 16, 14, 14)
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        so, sr = fire(layer, neuron, xo), neuron(twin(xr))
    assert float((so != sr).float().mean()) < 1e-3
    g = torch.randn_like(so, dtype=torch.float32)
    (so.float() * g).sum().backward()
    (sr.float() * g).sum().backward()
    tol = 1e-3 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(xo.grad, xr.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(layer.conv.weight.grad, twin.conv.weight.grad, rtol=tol, atol=tol * 10)
    torch.testing.assert_close(layer.bn.running_var, twin.bn.running_var)
