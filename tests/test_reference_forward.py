"""Each backbone against an independent reference written here from the papers' equations (and the
official code's order of operations), sharing no code with the library: the library model's weights
are copied in, and logits and input gradients must agree in float64 (eval mode, so BatchNorm uses its
running statistics, which are randomised first)."""
import math

import pytest
import torch
import torch.nn.functional as F

from spikeformers import create_model


class _Spike(torch.autograd.Function):
    """Heaviside forward; sigmoid surrogate alpha * sig(alpha x) * (1 - sig(alpha x)) backward."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(ctx.alpha * x)
        return g * ctx.alpha * s * (1 - s), None


def lif(x, v_th=1.0, tau=2.0):
    """LIF over the leading time axis: H = V + (X - V) / tau, S = H >= v_th, hard reset to 0 (detached)."""
    v, out = torch.zeros_like(x[0]), []
    for xt in x:
        h = v + (xt - v) / tau
        s = _Spike.apply(h - v_th, 4.0)
        v = h * (1 - s.detach())
        out.append(s)
    return torch.stack(out)


def bn(x, p, pre, axis):
    """Eval-mode BatchNorm of channel `axis` with the parameters `pre.*` of state dict `p`."""
    shape = [1] * x.dim()
    shape[axis] = -1
    w, b, m, v = (p[f"{pre}.{k}"].view(shape) for k in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / torch.sqrt(v + 1e-5) * w + b


def time_conv(x, p, pre, **kw):
    """conv + BN on [T, B, C, H, W] (time folded into the batch)."""
    T = x.shape[0]
    y = F.conv2d(x.flatten(0, 1), p[f"{pre}.conv.weight"], p.get(f"{pre}.conv.bias"), **kw)
    return bn(y, p, f"{pre}.bn", 1).unflatten(0, (T, -1))


def linear_bn(x, p, pre):
    return bn(F.linear(x, p[f"{pre}.linear.weight"], p.get(f"{pre}.linear.bias")), p, f"{pre}.bn", -1)


def pool(x):
    return F.max_pool2d(x.flatten(0, 1), 3, 2, 1).unflatten(0, (x.shape[0], -1))


def calibrate_bn(model, x, seed=0, shift=0.0):
    """Running statistics from one training-mode pass (momentum 1), then random affine parameters
    around the threshold, so that every layer fires a fair share of spikes."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
        for m in norms:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype) * 2 + 1)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype) * 1.5 + shift)
    model.eval()


def spikformer_reference(x, p, T, depth, heads, pools=(False, False, True, True)):
    """Spikformer (Zhou et al. 2023), CIFAR layout: SPS (4 conv-BN-LIF stages, max-pool after the LIF of
    the pooled ones; conv-BN-LIF relative position embedding added to its input), L blocks of
    X + SSA(X), X + MLP(X); SSA = LIF_0.5(Q K^T V * 0.125) then Linear-BN-LIF; head: mean over tokens
    and time, Linear."""
    x = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
    for i, pooled in enumerate(pools):
        x = lif(time_conv(x, p, f"patch_embed.stages.{i}", padding=1))
        x = pool(x) if pooled else x
    x = x + lif(time_conv(x, p, "patch_embed.rpe", padding=1))
    x = x.flatten(-2).transpose(-1, -2)  # [T, B, N, D]
    T_, B, N, D = x.shape
    for b in range(depth):
        pre = f"blocks.{b}"
        q, k, v = (lif(linear_bn(x, p, f"{pre}.attn.{n}")).view(T_, B, N, heads, D // heads).transpose(2, 3)
                   for n in "qkv")
        a = (q @ k.transpose(-1, -2) @ v) * 0.125
        a = lif(a.transpose(2, 3).reshape(T_, B, N, D), v_th=0.5)
        x = x + lif(linear_bn(a, p, f"{pre}.attn.proj"))
        x = x + lif(linear_bn(lif(linear_bn(x, p, f"{pre}.mlp.fc1")), p, f"{pre}.mlp.fc2"))
    return F.linear(x.mean(2).mean(0), p["head.fc.weight"], p["head.fc.bias"])


def _compare(model, reference, x, shift=0.0):
    from spikeformers.neurons.monitor import FiringRateMonitor

    model = model.double()
    calibrate_bn(model, x, shift=shift)
    with FiringRateMonitor(model) as mon:
        model(x)
    silent = [n for n, r in mon.rates().items() if not 0.005 < r < 0.995]
    assert not silent, f"layers that do not fire a fair share: {silent}"  # else the comparison is vacuous
    p = {k: v.detach().clone() for k, v in model.state_dict().items()}
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    a, b = model(xa), reference(xb, p)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    w = torch.arange(1.0, a.shape[1] + 1, dtype=a.dtype)
    (a * w).sum().backward()
    (b * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-9, atol=1e-12)
    assert xa.grad.abs().sum() > 0  # the gradient reached the input through the surrogates


class _TimeFirst(torch.nn.Module):
    """`_compare` feeds `[B, ...]`: hand the module `[T, B, ...]`; `summed` reduces `[T, B, N, D]` to `[B, D]`."""

    def __init__(self, m, summed=False):
        super().__init__()
        self.m, self.summed = m, summed

    def forward(self, x):
        y = self.m(x.transpose(0, 1))
        return y.sum((0, 2)) if self.summed else y


def _compare_time_first(module, reference, x, summed=False, shift=0.0):
    """`_compare` for a module and a `reference(x, params)` that both take time-first `x`."""
    def ref(xb, p):
        y = reference(xb.transpose(0, 1), {k[2:]: v for k, v in p.items() if k.startswith("m.")})
        return y.sum((0, 2)) if summed else y

    _compare(_TimeFirst(module, summed), ref, x.transpose(0, 1).contiguous(), shift=shift)


def test_spikformer_equals_the_reference_in_logits_and_input_gradients():
    torch.manual_seed(0)
    model = create_model("spikformer_4_384", dim=32, num_heads=4, depth=2, num_classes=10, img_size=16, T=2)
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    _compare(model, lambda x, p: spikformer_reference(x, p, T=2, depth=2, heads=4), x)


def erode(x):
    """The official `Erode`: MaxPool3d(kernel (1, 3, 3), stride 1, padding (0, 1, 1)) on a 5-d tensor."""
    return F.max_pool3d(x, (1, 3, 3), 1, (0, 1, 1))


def sdt_reference(x, p, T, depth, heads, dvs=False):
    """Spike-driven Transformer (Yao et al. 2023; official v1 code's order): MS-SPS with a max-pool after
    every stage, stage 4 conv-BN-pool whose membrane is the shortcut of the LIF -> conv-BN position
    embedding; blocks with membrane shortcuts: X + BN(Linear(SDSA(LIF(X)))), SDSA = Q (.) LIF_0.5(sum_N
    K (.) V); X + BN(fc2(LIF(BN(fc1(LIF(X)))))); head: LIF of the token mean, Linear, mean over time."""
    x = x.unsqueeze(0).repeat(T, 1, 1, 1, 1) if x.dim() == 4 else x
    pools = (False, False, True, True) if dvs else (True, True, True, True)
    for i in range(3):
        y = lif(time_conv(x, p, f"patch_embed.stages.{i}", padding=1))
        x = pool(y) if pools[i] else y
    x = pool(time_conv(x, p, "patch_embed.stages.3", padding=1))
    x = x + time_conv(lif(x), p, "patch_embed.rpe", padding=1)
    side = x.shape[-1]
    x = x.flatten(-2).transpose(-1, -2)  # [T, B, N, D]
    T_, B, N, D = x.shape

    def grid_erode(t):  # [T, B, N, D] -> as the official code pools [T, B, C, H, W]
        return erode(t.transpose(2, 3).reshape(T_, B, D, side, side)).flatten(3).transpose(2, 3)

    for b in range(depth):
        pre = f"blocks.{b}"
        s = lif(x)
        q, k, v = (lif(linear_bn(s, p, f"{pre}.attn.{n}")) for n in "qkv")
        if dvs:
            k, v = grid_erode(k), grid_erode(v)
        q, k, v = (t.view(T_, B, N, heads, D // heads).transpose(2, 3) for t in (q, k, v))
        kv = k * v
        kv = lif((erode(kv) if dvs else kv).sum(-2, keepdim=True), v_th=0.5)
        a = q * kv
        a = (erode(a) if dvs else a).transpose(2, 3).reshape(T_, B, N, D)
        x = x + linear_bn(a, p, f"{pre}.attn.proj")
        x = x + linear_bn(lif(linear_bn(lif(x), p, f"{pre}.mlp.fc1")), p, f"{pre}.mlp.fc2")
    return F.linear(lif(x.mean(2)), p["head.fc.weight"], p["head.fc.bias"]).mean(0)


def test_sdt_equals_the_reference_in_logits_and_input_gradients():
    torch.manual_seed(0)
    model = create_model("sdt_8_512", dim=32, num_heads=4, depth=2, num_classes=10, img_size=32, T=2)
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    _compare(model, lambda x, p: sdt_reference(x, p, T=2, depth=2, heads=4), x)


QKFORMER_EMBEDS = {  # per patch embedding: pool flags of its conv stages, where its shortcut starts, its stride
    "imagenet": [((True, True, False), 1, 2), ((True, False), 0, 2), ((True, False), 0, 2)],
    "dvs": [((False, True, True, True), 2, 4), ((False, True), 0, 2)],
}


def qkformer_reference(x, p, T, depths, heads, embed="imagenet"):
    """QKFormer (Zhou et al. 2024), per-sample neurons: patch embeddings of conv-BN-pool-LIF stages (the
    pool first where it pools) plus a LIF(BN(1x1 strided conv)) shortcut from an earlier point; Q-K token
    attention LIF_0.5(sum_d Q) (.) K in all stages but the last, SSA in the last; spiking MLPs; head:
    Linear of the token and time mean."""
    x = x.unsqueeze(0).repeat(T, 1, 1, 1, 1) if x.dim() == 4 else x
    layouts = QKFORMER_EMBEDS[embed]

    def patch_embed(x, pe, pools, at, stride):
        feat = x
        for j, pooled in enumerate(pools):
            if j == at:
                feat = x
            y = time_conv(x, p, f"patch_embeds.{pe}.stages.{j}", padding=1)
            x = lif(pool(y) if pooled else y)
        return x + lif(time_conv(feat, p, f"patch_embeds.{pe}.shortcut", stride=stride))

    def mlp(x, pre):
        return lif(linear_bn(lif(linear_bn(x, p, f"{pre}.mlp.fc1")), p, f"{pre}.mlp.fc2"))

    for pe, layout in enumerate(layouts):
        x = patch_embed(x, pe, *layout)
        Tt, B, C, H, W = x.shape
        x = x.flatten(3).transpose(2, 3)  # [T, B, N, C]
        N, d = H * W, C // heads
        for j in range(depths[pe]):
            pre = f"stages.{pe}.{j}"
            if pe < len(layouts) - 1:  # Q-K token attention
                q, k = (lif(linear_bn(x, p, f"{pre}.attn.{n}")).view(Tt, B, N, heads, d) for n in "qk")
                a = (lif(q.sum(-1, keepdim=True), v_th=0.5) * k).reshape(Tt, B, N, C)
            else:  # SSA
                q, k, v = (lif(linear_bn(x, p, f"{pre}.attn.{n}")).view(Tt, B, N, heads, d).transpose(2, 3)
                           for n in "qkv")
                a = lif((q @ (k.transpose(-1, -2) @ v) * 0.125).transpose(2, 3).reshape(Tt, B, N, C), v_th=0.5)
            x = x + lif(linear_bn(a, p, f"{pre}.attn.proj"))
            x = x + mlp(x, pre)
        x = x.transpose(2, 3).reshape(Tt, B, C, H, W)
    return F.linear(x.flatten(3).mean(3).mean(0), p["head.fc.weight"], p["head.fc.bias"])


def test_qkformer_equals_the_reference_in_logits_and_input_gradients():
    torch.manual_seed(0)
    # 8 heads: with few channels per head the token attention (any Q spike in a head) still falls silent
    model = create_model("qkformer_10_384", dim=64, depths=(1, 2, 2), num_heads=8, num_classes=10, img_size=32, T=2)
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    _compare(model, lambda x, p: qkformer_reference(x, p, T=2, depths=(1, 2, 2), heads=8), x)


class _Ternary(torch.autograd.Function):
    """sign(z) where |z| >= 0.5, else 0; straight-through gradient on |z| <= 1 (Ternary Spike)."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.sign(z) * (z.abs() >= 0.5).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * (z.abs() <= 1).to(g.dtype)


def ternary(x, decay=0.25):
    """u_t = decay u_{t-1} + x_t; s = Ternary(u); u <- u (1 - |s|), the reset differentiated (Guo et al.)."""
    u, out = None, []
    for xt in x:
        u = xt if u is None else decay * u + xt
        s = _Ternary.apply(u)
        u = u * (1 - s.abs())
        out.append(s)
    return torch.stack(out)


def heads_of(x, h):
    T, B, N, D = x.shape
    return x.view(T, B, N, h, D // h).transpose(2, 3)  # [T, B, h, N, d]


def merged(x):
    T, B, h, N, d = x.shape
    return x.transpose(2, 3).reshape(T, B, N, h * d)


def bipolar_lif(x, v_th=1.0, tau=2.0):
    """Signed spikes sign(H) where |H| >= V_th, hard reset to 0 on either polarity (detached); the
    surrogate at |H| - V_th."""
    v, out = torch.zeros_like(x[0]), []
    for xt in x:
        h = v + (xt - v) / tau
        s = torch.sign(h).detach() * _Spike.apply(h.abs() - v_th, 4.0)
        v = h * (1 - s.abs().detach())
        out.append(s)
    return torch.stack(out)


def shiftmax(x):
    """2^(x - max) / 2^ceil(log2 sum): powers of two; the gradient is the base-2 softmax's (straight
    through the ceiling)."""
    p = torch.softmax(x * math.log(2.0), -1)
    num = torch.exp2(x - x.amax(-1, keepdim=True))
    exact = num / torch.exp2(torch.ceil(torch.log2(num.sum(-1, keepdim=True))))
    return p + (exact - p).detach()


def attention_reference(name, x, p, h):
    """Each attention from its paper's equations; the output projection is LIF(BN(Linear(.)))."""
    qkv = {n: linear_bn(x, p, n) for n in ("q", "k", "v") if f"{n}.linear.weight" in p}
    if name == "ssa":  # Spikformer
        q, k, v = (heads_of(lif(qkv[n]), h) for n in "qkv")
        a = lif(q @ k.transpose(-1, -2) @ v * 0.125, v_th=0.5)
    elif name == "sdsa":  # Spike-driven Transformer
        q, k, v = (heads_of(lif(qkv[n]), h) for n in "qkv")
        a = q * lif((k * v).sum(-2, keepdim=True), v_th=0.5)
    elif name in ("qk_token", "qk_channel"):  # QKFormer: a mask from row (token) or column (channel) sums of Q
        q, k = (heads_of(lif(qkv[n]), h) for n in "qk")
        a = lif(q.sum(-1 if name == "qk_token" else -2, keepdim=True), v_th=0.5) * k
    elif name == "a2os2a":  # binary Q, ReLU K, ternary V
        q, k, v = heads_of(lif(qkv["q"]), h), heads_of(torch.relu(qkv["k"]), h), heads_of(ternary(qkv["v"]), h)
        a = lif(q @ k.transpose(-1, -2) @ v, v_th=0.5)
    elif name == "bipolar":  # ternary Q, K (bipolar LIF), binary V, Shiftmax of Q K^T
        q, k, v = heads_of(bipolar_lif(qkv["q"]), h), heads_of(bipolar_lif(qkv["k"]), h), heads_of(lif(qkv["v"]), h)
        a = lif(shiftmax(q @ k.transpose(-1, -2)) @ v, v_th=0.5)
    elif name == "adaptive":  # firing rates of threshold-scaled LIFs, softmax over the non-zero scores
        T = x.shape[0]
        q, k, v = (heads_of(lif(qkv[n] / p[f"{n}_neuron.scale"]).sum(0, keepdim=True) / T, h) for n in "qkv")
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        keep = scores != 0
        some = keep.any(-1, keepdim=True)
        w = torch.softmax(scores.masked_fill(~keep & some, float("-inf")), -1) * some
        y = linear_bn(merged(w @ v), p, "proj").expand(T, -1, -1, -1)
        return lif(y)
    elif name == "softmax":
        q, k, v = (heads_of(qkv[n], h) for n in "qkv")
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
    elif name == "semm":  # spiking experts: E queries share one K and V, a spiking router gates them
        E = p["router.linear.weight"].shape[0]
        q = heads_of(lif(qkv["q"]), E)  # [T, B, E, N, d_e]
        k, v = lif(qkv["k"]).unsqueeze(2), lif(qkv["v"]).unsqueeze(2)
        r = lif(linear_bn(x, p, "router")).transpose(2, 3).unsqueeze(-1)  # [T, B, E, N, 1]
        a = (r * lif(q @ k.transpose(-1, -2) @ v * 0.125, v_th=1.0)).sum(2, keepdim=True)
    return lif(linear_bn(merged(a), p, "proj"))


@pytest.mark.parametrize("name", ["ssa", "sdsa", "qk_token", "qk_channel", "a2os2a", "bipolar", "semm", "adaptive",
                                  "softmax"])
def test_attention_equals_its_reference(name):
    from spikeformers import create_attention

    torch.manual_seed(0)
    attn = create_attention(name, dim=32, num_heads=4)
    x = torch.randn(2, 3, 6, 32, dtype=torch.float64)  # [T, B, N, D]
    # denser Q/K/V (BN shifted up) where the products must reach the attention neurons' thresholds
    _compare_time_first(attn, lambda x, p: attention_reference(name, x, p, 4), x, summed=True,
                        shift={"ssa": 1.0, "semm": 2.5}.get(name, 0.0))


def test_qkformer_dvs_layout_equals_the_reference_on_event_frames():
    torch.manual_seed(0)
    model = create_model("qkformer_2_256_dvs", dim=64, num_heads=8, img_size=32, T=3)
    x = torch.rand(3, 2, 2, 32, 32, dtype=torch.float64).round()  # [T, B, 2, H, W] event counts 0/1
    _compare_time_first(model, lambda x, p: qkformer_reference(x, p, T=3, depths=(1, 1), heads=8, embed="dvs"), x)


def test_sdt_dvs_with_erode_equals_the_reference_on_event_frames():
    torch.manual_seed(0)
    model = create_model("sdt_2_256_dvs", dim=32, num_heads=4, img_size=16, T=3)
    x = torch.rand(3, 2, 2, 16, 16, dtype=torch.float64).round()  # [T, B, 2, H, W] event counts 0/1
    _compare_time_first(model, lambda x, p: sdt_reference(x, p, T=3, depth=2, heads=4, dvs=True), x)
