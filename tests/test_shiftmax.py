"""Shiftmax: row sums in (0.5, 1], power-of-two weights, softmax ordering, straight-through gradient."""
import math

import pytest
import torch

from spikeformers.attention import Shiftmax, ShiftmaxProduct, shiftmax


def test_rows_sum_to_half_open_interval_and_weights_are_powers_of_two():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-6, 7, (200, 9), generator=g).double()  # integer scores, as ternary Q K^T gives
    y = Shiftmax()(x)
    sums = y.sum(-1)
    assert (sums > 0.5).all() and (sums <= 1.0).all()
    e = torch.log2(y)
    assert torch.equal(e, e.round())  # every weight is 2^integer: a shift
    # the row maximum gets the largest weight, exactly 2^-ceil(log2 S)
    s = torch.exp2(x - x.amax(-1, keepdim=True)).sum(-1)
    torch.testing.assert_close(y.amax(-1), torch.exp2(-torch.ceil(torch.log2(s))), rtol=0, atol=0)


def test_hand_computed_row():
    # x = [0, 0, -1]: 2^0 + 2^0 + 2^-1 = 2.5 -> denominator 2^ceil(log2 2.5) = 4
    y = shiftmax(torch.tensor([[0.0, 0.0, -1.0]]))
    assert y.tolist() == [[0.25, 0.25, 0.125]]
    y = shiftmax(torch.tensor([[3.0, 3.0]]))  # S = 2, a power of two: the row sums to exactly 1
    assert y.tolist() == [[0.5, 0.5]]


def test_same_ordering_as_softmax_and_shift_invariant():
    x = torch.randn(50, 12, dtype=torch.float64) * 4
    y, p = shiftmax(x), torch.softmax(x, -1)
    assert torch.equal(y.argsort(dim=-1, stable=True), p.argsort(dim=-1, stable=True))
    torch.testing.assert_close(shiftmax(x + 7.0), y)  # invariant to adding a constant per row
    # for a constant row (S = n, a power of two) it is exactly uniform, like softmax
    assert torch.equal(shiftmax(torch.zeros(1, 8)), torch.full((1, 8), 1 / 8))


def test_gradient_is_straight_through_base2_softmax():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 6, dtype=torch.float64)
    (shiftmax(x) * g).sum().backward()
    ref_x = x.detach().clone().requires_grad_(True)
    (torch.softmax(ref_x * math.log(2.0), -1) * g).sum().backward()  # 2^x / sum 2^x
    torch.testing.assert_close(x.grad, ref_x.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_product_shapes_dtypes_and_order(dtype):
    q = torch.randint(-1, 2, (2, 3, 5, 4)).to(dtype)
    k = torch.randint(-1, 2, (2, 3, 5, 4)).to(dtype)
    v = torch.randint(0, 2, (2, 3, 5, 4)).to(dtype)
    prod = ShiftmaxProduct()
    y = prod(q, k, v)
    assert y.shape == (2, 3, 5, 4) and y.dtype == dtype
    assert prod.order_for(q.shape) == "qk_v"
    ref = shiftmax((q @ k.transpose(-2, -1)).double()) @ v.double()
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=0)  # powers of two times {0, 1}: exact
