"""Attention interface: value domains of project(), product-order equivalence, errors."""
import pytest
import torch

from spikeformers import create_attention, list_attentions
from spikeformers.attention import AttentionProduct


def _tokens(T=3, B=2, N=10, D=16, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, N, D, generator=g) * scale


def test_ssa_project_is_binary():
    attn = create_attention("ssa", 16, 4)
    q, k, v = attn.project(_tokens())
    assert q.shape == (3, 2, 4, 10, 4)
    for t in (q, k, v):
        assert set(t.unique().tolist()) <= {0.0, 1.0}
    assert attn.domains == {"q": "binary", "k": "binary", "v": "binary"}


def test_a2os2a_project_domains():
    attn = create_attention("a2os2a", 16, 4)
    q, k, v = attn.project(_tokens())
    assert set(q.unique().tolist()) <= {0.0, 1.0}
    assert (k >= 0).all() and ((k > 0) & (k != k.round())).any()  # real-valued, non-negative
    assert set(v.unique().tolist()) <= {-1.0, 0.0, 1.0} and (v == -1).any() and (v == 1).any()
    assert attn.domains == {"q": "binary", "k": "real", "v": "ternary"}


@pytest.mark.parametrize("name", ["ssa", "a2os2a"])
def test_product_orders_agree(name):
    attn = create_attention(name, 16, 4).double()
    q, k, v = attn.project(_tokens().double())
    a = AttentionProduct(0.125, "qk_v")(q, k, v)
    b = AttentionProduct(0.125, "q_kv")(q, k, v)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_auto_order_picks_the_cheaper_product():
    p = AttentionProduct()
    assert p.order_for((1, 1, 1, 64, 32)) == "q_kv"  # N d^2 < N^2 d when d < N
    assert p.order_for((1, 1, 1, 16, 32)) == "qk_v"


@pytest.mark.parametrize("name", ["ssa", "a2os2a", "softmax"])
def test_forward_shape_and_gradients(name):
    attn = create_attention(name, 16, 4)
    x = _tokens().requires_grad_()
    y = attn(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    for n, p in attn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown attention 'ssa2'; valid attentions: .*a2os2a.*ssa"):
        create_attention("ssa2", 16, 4)
    with pytest.raises(ValueError, match="unknown option.*'sclae'"):
        create_attention("ssa", 16, 4, sclae=0.5)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        create_attention("ssa", 16, 3)
    with pytest.raises(ValueError, match=r"expects tokens \[T, B, N, 16\]"):
        create_attention("ssa", 16, 4)(torch.randn(2, 10, 16))
    assert {"ssa", "a2os2a", "softmax"} <= set(list_attentions())
