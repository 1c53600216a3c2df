"""The counter reproduces the published formulas from given firing rates (REFERENCES.md sections 2, 8.1).

Spikingformer's SSA cost per block for the Q (K^T V) order is T H N d_h^2 (min(fr_K, fr_V) + fr_Q). The
counter counts each product separately and makes it event-driven on its sparsest spiking operand:
K^T V ([d, N] x [N, d], N d^2 per head and step) streams the sparser of K and V -> min(fr_K, fr_V);
Q (K^T V) multiplies binary Q with the integer matrix K^T V -> only Q's spikes are events -> fr_Q.
"""
import pytest
import torch
from torch import nn

from spikeformers import create_model
from spikeformers.attention import AttentionProduct
from spikeformers.energy import count_ops, count_twin


class Product(nn.Module):
    def __init__(self, order):
        super().__init__()
        self.product = AttentionProduct(0.125, order)

    def forward(self, qkv):
        return self.product(*qkv)


def spikes(shape, rate, seed):
    """Binary spikes at exactly `rate`, at random places."""
    x = torch.zeros(shape).view(-1)
    g = torch.Generator().manual_seed(seed)
    x[torch.randperm(x.numel(), generator=g)[: int(rate * x.numel())]] = 1.0
    return x.view(shape)


T, B, H, N, d = 2, 1, 2, 8, 4
Q, K, V = (spikes((T, B, H, N, d), r, i) for i, r in enumerate((1 / 4, 1 / 2, 1 / 8)))


def test_ssa_q_kv_order_is_spikingformer_formula():
    c = count_ops(Product("q_kv"), (Q, K, V), batch_size=B)
    kv, q_kv = c.layer("product.kv"), c.layer("product.q_kv")
    assert (kv.event, kv.domain, q_kv.event, q_kv.domain) == ("v", "binary x binary", "q", "binary x integer")
    assert kv.ops == q_kv.ops == T * H * N * d * d
    assert c.total_ac == T * H * N * d ** 2 * (min(1 / 2, 1 / 8) + 1 / 4)  # exact, no rounding
    assert c.total_mac == 0


def test_ssa_qk_v_order():
    # (Q K^T) V, Spikformer's CIFAR code: T H N^2 d (min(fr_Q, fr_K) + fr_V)
    c = count_ops(Product("qk_v"), (Q, K, V), batch_size=B)
    assert (c.layer("product.qk").event, c.layer("product.qk_v").event) == ("q", "v")
    assert c.total_ac == T * H * N ** 2 * d * (min(1 / 4, 1 / 2) + 1 / 8)


def test_given_rates_at_imagenet_scale_without_a_forward():
    """Spikformer-8-768 at 224 px counted on the meta device (shapes only), firing rates supplied."""
    with torch.device("meta"):
        model = create_model("spikformer_8_768")
    c = count_ops(model, torch.empty(1, 3, 224, 224, device="meta"))
    assert (c.T, c.batch_size) == (4, 1)
    Tm, Hm, Nm, dm = 4, 12, 14 * 14, 768 // 12
    rates, want = {}, 0.0
    for i in range(8):
        fq, fk, fv = 0.1 + 0.01 * i, 0.2 - 0.01 * i, 0.15
        p = f"blocks.{i}.attn.product"
        rates.update({f"{p}.kv:k": fk, f"{p}.kv:v": fv, f"{p}.q_kv:q": fq})
        want += Tm * Hm * Nm * dm ** 2 * (min(fk, fv) + fq)
    rates["blocks.0.mlp.fc1.linear"] = 0.25
    r = c.with_rates(rates)
    ssa = sum(l.ac for l in r.layers if ".attn.product." in l.name)
    assert ssa == pytest.approx(want, rel=1e-12)
    fc1 = r.layer("blocks.0.mlp.fc1.linear")  # SOP = fr x T x FLOPs
    assert fc1.ac == pytest.approx(0.25 * Tm * Nm * 768 * 3072) and fc1.mac == 0
    with pytest.raises(ValueError, match="no layer operand"):
        c.with_rates({"blocks.0.attn.nothing": 0.1})


def test_ann_transformer_8_512_flops():
    """REFERENCES section 2: ANN Transformer-8-512 (T=1, 224 px) has 8.33 G FLOPs.

    Measured on the ANN twin: Conv + Linear 8.257 G MACs (0.9 % below 8.33 G: the layers a
    thop/ptflops-style counter hooks); + attention products 0.315 G and softmax 0.007 G = 8.579 G (3 % above).
    """
    with torch.device("meta"):
        twin = create_model("spikformer_8_512", twin="ann")
    c = count_twin(twin, torch.empty(1, 3, 224, 224, device="meta"))
    conv_linear = sum(l.ops for l in c.layers if l.kind in ("conv", "linear"))
    assert conv_linear == 8_256_671_744
    assert abs(conv_linear / 8.33e9 - 1) < 0.01
    attn = sum(l.ops for l in c.layers if l.kind in ("matmul", "softmax"))
    assert attn == 8 * (2 * 8 * 196 * 196 * 64 + 3 * 8 * 196 * 196)  # QK^T, AV; scale + softmax
    assert c.total_ops == pytest.approx(8.579e9, rel=1e-3)
    assert c.total_mac == c.total_ops and c.total_ac == 0  # every op of the dense twin is a MAC
