"""Every registered attention: value domains, linear-time forms, product orders, causality,
forward/backward with finite gradients, option validation, and use inside the Spikformer zoo."""
import copy

import pytest
import torch
from torch.overrides import TorchFunctionMode

import spikeformers
from spikeformers.attention import (CausalLinearProduct, SpikingAttention, create_attention, list_attentions,
                                    unused_parameter_names)

ALL = list_attentions()
CAUSAL = [n for n in ALL if create_attention(n, 16, 2).supports_causal]
# options that make every part of a variant exist (SDSA's unused talking-heads conv included)
FULL_OPTS = {"sdsa": {"talking_heads": True}}


def tokens(T=2, B=2, N=6, D=16, seed=0, dtype=torch.float32, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N, D, generator=g) * scale).to(dtype)


def check_domain(name, key, domain, t, T):
    vals = set(t.detach().unique().tolist())
    if domain == "binary":
        assert vals <= {0.0, 1.0} and len(vals) == 2, (name, key, vals)
    elif domain == "ternary":
        assert vals <= {-1.0, 0.0, 1.0} and len(vals) == 3, (name, key, vals)
    elif domain == "integer":
        assert torch.equal(t, t.round()), (name, key)
    else:
        assert domain == "real" and torch.isfinite(t).all(), (name, key, domain)
    if name == "a2os2a" and key == "k":
        assert (t >= 0).all() and len(vals) > 2  # ReLU K: non-negative, real-valued
    if name == "adaptive":  # firing rates: multiples of 1/T in [0, 1]
        assert (t >= 0).all() and (t <= 1).all() and torch.allclose(t * T, (t * T).round())


@pytest.mark.parametrize("name", ALL)
def test_project_value_domains(name):
    torch.manual_seed(0)
    attn = create_attention(name, 16, 2)
    assert isinstance(attn, SpikingAttention)
    x = tokens(T=4, N=12)
    outs = attn.project(x)
    assert len(outs) == len(attn.domains) >= 2
    for (key, domain), t in zip(attn.domains.items(), outs):
        assert t.dim() == 5 and t.shape[1] == 2  # [T (or 1), B, H, N, d]
        check_domain(name, key, domain, t, x.shape[0])


class ShapeRecorder(TorchFunctionMode):
    """Records the shape of every tensor a torch function returns during forward."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def n_by_n(shapes, N):
    return [s for s in shapes if sum(d == N for d in s) >= 2]


LINEAR = [("sdsa", {}), ("sdsa", {"causal": True}), ("qk_token", {}), ("qk_channel", {}), ("qk_channel", {"causal": True}),
          ("ssa", {"causal": True}), ("a2os2a", {"causal": True})]


@pytest.mark.parametrize("name,opts", LINEAR)
def test_linear_in_tokens_no_n_by_n_tensor(name, opts):
    D, H = 16, 2
    N = 2 * (D // H) + 37  # 53 tokens: no accidental match with T, B, H, d or D
    attn = create_attention(name, D, H, **opts)
    x = tokens(T=2, B=3, N=N, D=D)
    with ShapeRecorder() as rec:
        attn(x)
    assert len(rec.shapes) > 10
    assert n_by_n(rec.shapes, N) == []


def test_shape_recorder_sees_the_quadratic_order():
    attn = create_attention("ssa", 16, 2, order="qk_v")
    with ShapeRecorder() as rec:
        attn(tokens(N=53))
    assert n_by_n(rec.shapes, 53)  # the positive control: (Q K^T) V forms [.., 53, 53]


@pytest.mark.parametrize("name", ["ssa", "a2os2a"])
def test_product_order_does_not_change_the_result(name):
    torch.manual_seed(1)
    a = create_attention(name, 16, 2, order="qk_v").double()
    b = copy.deepcopy(a)
    b.product.order = "q_kv"
    x = tokens(N=9, dtype=torch.float64)
    q, k, v = a.project(x)
    torch.testing.assert_close(a.product(q, k, v), b.product(q, k, v), rtol=1e-12, atol=1e-12)
    assert a.product.order_for(q.shape) == "qk_v" and b.product.order_for(q.shape) == "q_kv"
    torch.testing.assert_close(a(x), b(x))
    auto = create_attention(name, 16, 2).product
    assert auto.order_for((2, 2, 2, 9, 8)) == "q_kv" and auto.order_for((2, 2, 2, 4, 8)) == "qk_v"


def test_causal_linear_product_equals_masked_quadratic_form():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 11, 4, generator=g, dtype=torch.float64), torch.randn(2, 3, 11, 4, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 11, 5, generator=g, dtype=torch.float64)
    prod = CausalLinearProduct(scale=0.125)
    mask = torch.ones(11, 11, dtype=torch.float64).tril()
    ref = ((q @ k.transpose(-2, -1)) * mask) @ v * 0.125
    torch.testing.assert_close(prod(q, k, v), ref, rtol=1e-12, atol=1e-12)
    assert prod.order_for(q.shape) == "causal_q_kv"


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_outputs_never_see_later_tokens(name):
    torch.manual_seed(0)
    attn = create_attention(name, 16, 2, causal=True, out_neuron=False).eval()  # real outputs: any leak shows
    free = create_attention(name, 16, 2, causal=False, out_neuron=False).eval()
    free.load_state_dict(attn.state_dict())
    x = tokens(T=3, N=8, seed=1, scale=12.0)  # strong inputs: eval-mode BN passes them, neurons fire
    x2 = x.clone()
    n = 4
    x2[:, :, n + 1:] = tokens(T=3, N=8 - n - 1, seed=2, scale=12.0)
    with torch.no_grad():
        y, y2 = attn(x), attn(x2)
        assert torch.equal(y[:, :, :n + 1], y2[:, :, :n + 1])
        assert not torch.equal(y, y2)
        if name not in ("qk_token",):  # the token form is per-token with or without causal
            assert not torch.equal(free(x)[:, :, :n + 1], free(x2)[:, :, :n + 1])  # the control sees them


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_finite_gradients(name):
    torch.manual_seed(0)
    attn = create_attention(name, 16, 2, **FULL_OPTS.get(name, {}))
    x = tokens(T=3, N=10).requires_grad_(True)
    y = attn(x)
    assert y.shape == x.shape
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    unused = unused_parameter_names(attn)
    for pname, p in attn.named_parameters():
        if pname in unused:
            continue
        assert p.grad is not None, f"{name}: {pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} gradient not finite"


@pytest.mark.parametrize("name", ALL)
def test_unknown_and_invalid_options_raise(name):
    with pytest.raises(ValueError, match="unknown option.*'bogus'"):
        create_attention(name, 16, 2, bogus=1)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        create_attention(name, 18, 4)
    if name in CAUSAL:
        with pytest.raises(ValueError, match="causal"):
            create_attention(name, 16, 2, causal="yes")


def test_sdsa_talking_heads_parity_and_unused_declaration():
    plain = create_attention("sdsa", 32, 4)
    talk = create_attention("sdsa", 32, 4, talking_heads=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(talk) - count(plain) == 4 * 4  # h^2, as in the official checkpoints
    assert count(plain) == 3 * (32 * 32 + 2 * 32) + (32 * 32 + 32 + 2 * 32)  # bias-free Q/K/V, proj with bias
    assert unused_parameter_names(talk) == {"talking_heads.weight"}
    assert not talk.talking_heads.weight.requires_grad
    wrapped = torch.nn.Sequential(torch.nn.Identity(), talk)
    assert unused_parameter_names(wrapped) == {"1.talking_heads.weight"}
    with pytest.raises(ValueError, match="talking_heads"):
        create_attention("sdsa", 32, 4, talking_heads="no")


def test_sdsa_hand_computed():
    attn = create_attention("sdsa", 4, 1, neuron="if")  # IF: kv neuron fires when a column sum >= 0.5
    q = torch.tensor([[1.0, 0, 1, 1], [0, 1, 1, 0]]).view(1, 1, 1, 2, 4)
    k = torch.tensor([[1.0, 1, 0, 1], [1, 0, 0, 0]]).view(1, 1, 1, 2, 4)
    v = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 1]]).view(1, 1, 1, 2, 4)
    # K (.) V = [[1,1,0,0],[1,0,0,0]]; column sums [2,1,0,0] -> spikes [1,1,0,0]; Q masked by them
    assert attn.attend(q, k, v).view(2, 4).tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]


@pytest.mark.parametrize("name", ["qk_token", "qk_channel"])
def test_qk_hand_computed(name):
    attn = create_attention(name, 3, 1, neuron="if")
    q = torch.tensor([[1.0, 0, 0], [0, 0, 0]]).view(1, 1, 1, 2, 3)
    k = torch.tensor([[1.0, 1, 0], [1, 1, 1]]).view(1, 1, 1, 2, 3)
    out = attn.attend(q, k).view(2, 3).tolist()
    if name == "qk_token":  # row sums [1, 0] -> token mask [1, 0]
        assert out == [[1, 1, 0], [0, 0, 0]]
    else:  # column sums [1, 0, 0] -> channel mask [1, 0, 0]
        assert out == [[1, 0, 0], [1, 0, 0]]
