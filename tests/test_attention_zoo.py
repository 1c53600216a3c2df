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
    # the hand-written backward (running states recomputed) against autograd of the masked form
    torch.autograd.gradcheck(prod, [t[:1, :2, :5].clone().requires_grad_(True) for t in (q, k, v)])
    qkv = [t.clone().requires_grad_(True) for t in (q, k, v)]
    grads = torch.autograd.grad((prod(*qkv) * ref).sum(), qkv)
    ref_grads = torch.autograd.grad(((((qkv[0] @ qkv[1].transpose(-2, -1)) * mask) @ qkv[2] * 0.125) * ref).sum(), qkv)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_outputs_never_see_later_tokens(name):
    torch.manual_seed(0)
    attn = create_attention(name, 16, 2, causal=True, out_neuron=False).eval()  # real outputs: any leak shows
    free = create_attention(name, 16, 2, causal=False, out_neuron=False).eval()
    res = free.load_state_dict(attn.state_dict(), strict=False)
    assert not res.missing_keys and all(k.startswith("product.") for k in res.unexpected_keys)  # decay, head norm
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


def test_semm_layout_and_defaults():
    attn = create_attention("semm", 32, 2)
    assert attn.num_experts == 4 and attn.expert_dim == 8  # d_e = D / E (STEP: 96 at D = 384)
    x = tokens(T=2, B=3, N=5, D=32)
    q, k, v, r = attn.project(x)
    assert q.shape == (2, 3, 4, 5, 8) and k.shape == (2, 3, 1, 5, 8)
    assert v.shape == (2, 3, 1, 5, 32) and r.shape == (2, 3, 4, 5, 1)
    D, E, de = 32, 4, 8  # Q_i, K, V (bias, BN), router (bias, BN), proj
    expected = E * (D * de + 3 * de) + (D * de + 3 * de) + (D * D + 3 * D) + (D * E + 3 * E) + (D * D + 3 * D)
    assert sum(p.numel() for p in attn.parameters()) == expected
    assert create_attention("semm", 32, 2, num_experts=2, expert_dim=5).q.linear.out_features == 10
    with pytest.raises(ValueError, match="num_experts"):
        create_attention("semm", 32, 2, num_experts=0)


def test_semm_router_spike_gates_its_expert_token_by_token():
    torch.manual_seed(0)
    attn = create_attention("semm", 32, 2, num_experts=3, scale=1.0, attn_threshold=0.5)  # experts that fire often
    x = tokens(T=2, B=2, N=6, D=32)
    captured = {}
    attn.mix.register_forward_hook(lambda m, inp, out: captured.update(gated=inp[0], y=out))

    def run(router_spikes):  # replace the router neuron's output [T, B, N, E]
        handle = attn.router_neuron.register_forward_hook(lambda m, inp, out: router_spikes)
        with torch.no_grad():
            attn(x)
        handle.remove()
        return captured["gated"], captured["y"]  # [T, B, E, N, D], [T, B, 1, N, D]

    on = torch.ones(2, 2, 6, 3)  # every expert at every token
    gated_on, y_on = run(on)
    per = gated_on.abs().sum((0, 1, 4))  # [E, N]: how much each expert gives at each token
    expert, token = divmod(int(per.argmax()), 6)
    assert per[expert, token] > 0 and (per > 0).sum() > 1
    off = on.clone()
    off[:, :, token, expert] = 0
    gated_off, y_off = run(off)
    assert torch.equal(gated_off[:, :, expert, token], torch.zeros_like(gated_off[:, :, expert, token]))
    expected = y_on.clone()
    expected[:, :, 0, token] -= gated_on[:, :, expert, token]
    assert torch.equal(y_off, expected)  # only that expert, only at that token


def test_nonzero_softmax_excludes_zero_scores_and_empty_rows():
    from spikeformers.attention import NonzeroSoftmaxProduct

    prod = NonzeroSoftmaxProduct(scale=1.0)
    q = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)  # row 2 has no non-zero score
    k = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # scores row 1: [2, 0, 1]
    v = torch.tensor([[1.0], [10.0], [100.0]], dtype=torch.float64)
    out = prod(q, k, v)
    w = torch.softmax(torch.tensor([2.0, 1.0], dtype=torch.float64), 0)  # over the non-zero entries only
    torch.testing.assert_close(out[0, 0], w[0] * 1 + w[1] * 100)
    assert out[1, 0] == 0
    qg = q.clone().requires_grad_(True)
    prod(qg, k, v).sum().backward()
    assert torch.isfinite(qg.grad).all()
    source = NonzeroSoftmaxProduct(scale=1.0, form="source")(q, k, v)  # the seed's form, by hand
    p = torch.softmax(torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64), 0)  # every score, then zero the 0
    torch.testing.assert_close(source[0, 0], p[0] * 1 + p[2] * 100)
    assert source[1, 0] == 0
    attn = create_attention("adaptive", 16, 2, softmax="source")
    assert attn.product.form == "source"
    with pytest.raises(ValueError, match="unknown softmax form 'x'"):
        create_attention("adaptive", 16, 2, softmax="x")


def test_adaptive_thresholds_steer_rates_into_the_band_deterministically():
    def trained(seed):
        torch.manual_seed(seed)
        attn = create_attention("adaptive", 16, 2, target_rate=(0.05, 0.15), rate_step=0.1)
        x = tokens(T=4, B=4, N=12, scale=4.0)
        for _ in range(60):
            attn(x)
        return attn, x

    attn, x = trained(0)
    spikes = attn.q_neuron.neuron(attn.q(x) / attn.q_neuron.scale)
    assert attn.q_neuron.rates_in_target(spikes).float().mean() >= 0.9
    assert 0.04 <= spikes.mean() <= 0.16
    again, _ = trained(0)
    assert torch.equal(again.q_neuron.scale, attn.q_neuron.scale)  # deterministic
    frozen = attn.q_neuron.scale.clone()
    attn.eval()
    attn(x)
    assert torch.equal(attn.q_neuron.scale, frozen)  # eval mode does not adapt
    assert attn(x).shape == x.shape and torch.equal(attn(x)[0], attn(x)[0])


def test_adaptive_output_is_the_same_at_every_step_before_the_output_neuron():
    attn = create_attention("adaptive", 16, 2, out_neuron=False)
    y = attn(tokens(T=3, N=7))
    assert torch.equal(y[0], y[1]) and torch.equal(y[1], y[2])


MODEL_OPTS = dict(dim=32, depth=1, num_heads=2, img_size=16, num_classes=5)


@pytest.mark.parametrize("model", ["spikformer_tiny", "spikformer_4_384"])
@pytest.mark.parametrize("name", ALL)
def test_every_attention_inside_the_spikformer_zoo(model, name):
    torch.manual_seed(0)
    m = spikeformers.create_model(model, attention=name, attention_opts=FULL_OPTS.get(name, {}),
                                  mlp="emsp" if name == "semm" else "spiking", **MODEL_OPTS)
    in_chans = m.cfg.in_chans
    x = torch.rand(2, in_chans, 16, 16)
    y = m(x)
    assert y.shape == (2, 5)
    y.sum().backward()
    unused = unused_parameter_names(m)
    assert unused == ({"blocks.0.attn.talking_heads.weight"} if name == "sdsa" else set())
    for pname, p in m.named_parameters():
        if pname not in unused:
            assert p.grad is not None and torch.isfinite(p.grad).all(), (model, name, pname)


def test_semm_models_build_at_published_sizes_on_meta():
    D, E, de, C = 384, 4, 96, 10  # spikformer_semm_4_384, counted from the layer shapes
    sps = 3 * 48 * 9 + 48 * 96 * 9 + 96 * 192 * 9 + 192 * 384 * 9 + 384 * 384 * 9 + 2 * (48 + 96 + 192 + 384 + 384)
    emsa = (D * E * de + 3 * E * de) + (D * de + 3 * de) + 2 * (D * D + 3 * D) + (D * E + 3 * E)
    emsp = (D * 4 * D + 12 * D) + (2 * D * 9 + 4 * D) + (2 * D * D + 3 * D)
    assert spikeformers.count_parameters("spikformer_semm_4_384") == sps + 4 * (emsa + emsp) + D * C + C
    for name, grid, depth in (("spikformer_semm_4_384", 8, 4), ("spikformer_semm_8_512", 14, 8)):
        with torch.device("meta"):
            m = spikeformers.create_model(name)
        assert m.cfg.attention == "semm" and m.cfg.mlp == "emsp" and len(m.blocks) == depth
        assert m.blocks[0].mlp.grid == grid == m.patch_embed.grid
        pub = spikeformers.model_info(name)["published"]
        assert pub["source"] == "Zhou et al., NeurIPS 2024 (via STEP zoo)"
    assert spikeformers.model_info("spikformer_semm_4_384")["published"]["top1"] == 95.78
    assert spikeformers.model_info("spikformer_semm_8_512")["published"]["top1"] == 75.93


def test_mlp_option_is_validated():
    with pytest.raises(ValueError, match="unknown mlp 'moe'; valid mlps: spiking, emsp"):
        spikeformers.create_model("spikformer_tiny", mlp="moe")
    from spikeformers.layers import EMSP
    from spikeformers.neurons import neuron_factory

    emsp = EMSP(16, 64, 3, neuron_factory("lif"))
    assert emsp(tokens(N=9)).shape == (2, 2, 9, 16)
    with pytest.raises(ValueError, match="3x3 = 9 tokens"):
        emsp(tokens(N=8))


def test_sdsa_erode_refuses_causal_and_non_square_grids():
    with pytest.raises(ValueError, match="erode pools over neighbouring tokens"):
        create_attention("sdsa", 16, 2, erode=True, causal=True)
    attn = create_attention("sdsa", 16, 2, erode=True)
    with pytest.raises(ValueError, match="square token grid, got 6 tokens"):
        attn(torch.zeros(2, 1, 6, 16))
    assert attn(torch.zeros(2, 1, 9, 16)).shape == (2, 1, 9, 16)
