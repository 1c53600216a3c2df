"""layers.MaxPool2d: torch's max pooling, with Triton kernels for channels_last inputs.

Reference: torch's own nn.MaxPool2d / F.max_pool2d: the output and the input gradient, on real inputs
and on spikes (every window tied: the gradient must go to the same position as torch's), with NaN and
-inf, odd sides, and geometries other than 3x3/2/1. On the CPU the kernels run in Triton's interpreter
(conftest.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeformers.layers.maxpool import MaxPool2d

from marks import gpu, in_interpreter  # noqa: E402  (tests/kernels/marks.py)


def compare(shape, kernel=3, stride=2, padding=1, device="cpu", dtype=torch.float32, kind="real", seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    if kind == "spikes":
        x = (x > 0.5).float()  # ties everywhere
    if kind == "special":
        x.view(-1)[:: 7] = float("nan")
        x.view(-1)[3:: 11] = float("-inf")
    x = x.to(device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    pool = MaxPool2d(kernel, stride, padding, backend="triton")
    xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    yo = pool(xo)
    yr = F.max_pool2d(xr, kernel, stride, padding)
    assert yo.shape == yr.shape and yo.dtype == dtype and yo.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(yo, yr, equal_nan=True, rtol=0, atol=0)
    g = torch.randn(yo.shape, generator=gen).to(device=device, dtype=dtype)
    yo.backward(g)
    yr.backward(g)
    assert xo.grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-6, atol=1e-6)




@in_interpreter
@pytest.mark.parametrize("kind", ["real", "spikes", "special"])
@pytest.mark.parametrize("shape", [(2, 5, 8, 8), (1, 70, 7, 9)])
def test_interp_equals_torch(shape, kind):
    compare(shape, kind=kind)


@in_interpreter
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 0)), (5, 3, 2)])
def test_interp_other_geometries(kernel, stride, padding):
    compare((2, 6, 11, 10), kernel, stride, padding, kind="spikes", seed=1)
    compare((2, 6, 11, 10), kernel, stride, padding, seed=2)


def test_torch_paths_and_errors():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(MaxPool2d(3, 2, 1)(x), F.max_pool2d(x, 3, 2, 1))  # the CPU: torch's
    assert "backend='auto'" in repr(MaxPool2d(3, 2, 1))
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        MaxPool2d(3, backend="cuda")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("shape,dtype,kind", [((256, 192, 32, 32), torch.bfloat16, "spikes"),
                                              ((256, 384, 16, 16), torch.bfloat16, "real"),
                                              ((8, 48, 33, 31), torch.float32, "special"),
                                              ((4, 40, 16, 16), torch.float16, "spikes")])
def test_gpu_equals_torch(shape, dtype, kind):
    compare(shape, device="cuda", dtype=dtype, kind=kind, seed=shape[1])
