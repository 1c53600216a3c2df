"""Measured input domains: from the values, for every attention in the zoo and Spikformer's residuals."""
import pytest
import torch

from spikeformers import create_model
from spikeformers.attention import create_attention, list_attentions
from spikeformers.energy import count_ops, tensor_stats

LOW = {"v_threshold": 0.1}  # untrained weights fire little at V_th = 1; this makes every path fire

# Operand domains of each counted product, per attention: {layer suffix: {operand: domain}}.
EXPECTED = {
    "ssa": {"product.qk": {"q": "binary", "k": "binary"}, "product.qk_v": {"qk": "integer", "v": "binary"}},
    "a2os2a": {"product.qk": {"q": "binary", "k": "real"}, "product.qk_v": {"qk": "real", "v": "ternary"}},
    "softmax": {"product.qk": {"q": "real", "k": "real"}, "product.softmax": {"scores": "real"},
                "product.av": {"attn": "real", "v": "real"}},
}


def tokens(T=2, B=2, N=8, D=32, seed=0):
    """Integer tokens {0, 1, 2}, like Spikformer's residual stream."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (T, B, N, D), generator=g).float()


def test_every_attention_has_expectations():
    assert sorted(EXPECTED) == list_attentions()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attention_operand_domains(name):
    torch.manual_seed(0)
    attn = create_attention(name, 32, 4, neuron="lif", neuron_opts=LOW, order="qk_v") if name != "softmax" \
        else create_attention(name, 32, 4, neuron="lif", neuron_opts=LOW)
    c = count_ops(attn, tokens())
    got = {l.name: {k: s.domain for k, s in l.operands.items()} for l in c.layers if l.kind != "neuron"}
    for layer, want in EXPECTED[name].items():
        assert got[layer] == want, (name, layer)
        spiking = {k: s.rate for k, s in c.layer(layer).operands.items() if s.domain in ("binary", "ternary")}
        # event-driven on the sparsest spiking operand; dense (MAC) without one
        assert c.layer(layer).event == (min(spiking, key=spiking.get) if spiking else None), (name, layer)
    for proj in ("q.linear", "k.linear", "v.linear", "proj.linear"):
        assert proj in got  # the projections are counted too
    # the declared domains (read by docs and tests) agree with what the counter measured
    declared = getattr(attn, "domains", {})
    for label, dom in declared.items():
        for layer, ops in got.items():
            if label in ops and layer.startswith("product."):
                assert ops[label] == dom, (name, layer, label)


def test_spikformer_inputs_analog_binary_integer():
    torch.manual_seed(0)
    model = create_model("spikformer_tiny", depth=2, neuron_opts=LOW)
    c = count_ops(model, torch.rand(2, 1, 8, 8))
    dom = {l.name: l.domain for l in c.layers}
    assert dom["patch_embed.stages.0.conv"] == "real" and c.layer("patch_embed.stages.0.conv").analog_first
    assert dom["patch_embed.stages.1.conv"] == "binary" and dom["patch_embed.rpe.conv"] == "binary"
    for i in range(2):  # spike residuals: X0 = x + RPE in {0, 1, 2}, then sums of spikes
        for layer in ("attn.q.linear", "attn.k.linear", "attn.v.linear", "mlp.fc1.linear"):
            assert dom[f"blocks.{i}.{layer}"] == "integer", (i, layer)
            assert c.layer(f"blocks.{i}.{layer}").mac > 0 and c.layer(f"blocks.{i}.{layer}").ac == 0
        assert dom[f"blocks.{i}.attn.proj.linear"] == "binary" and dom[f"blocks.{i}.mlp.fc2.linear"] == "binary"
    assert dom["head.fc"] == "real"  # mean over tokens
    # multi-spike counting turns the small residual integers into accumulates
    k = int(max(c.layer(f"blocks.{i}.mlp.fc1.linear").operands["x"].vmax for i in range(2)))
    m = c.recount(multi_spike_max=k)
    assert m.layer("blocks.1.mlp.fc1.linear").ac > 0 and m.layer("blocks.1.mlp.fc1.linear").mac == 0
    assert m.total_mac < c.total_mac


@pytest.mark.parametrize("values,domain,bits", [
    ([0.0, 1.0, 1.0, 0.0], "binary", 1), ([0.0, 0.5, 0.5], "binary", 1),  # amplitude folds into weights
    ([-1.0, 0.0, 1.0], "ternary", 2), ([0.0, 1.0, 2.0, 5.0], "integer", 3), ([-3.0, 1.0], "integer", 3),
    ([0.1, 0.7], "real", None), ([0.0, 0.0], "binary", 1),
])
def test_tensor_domains(values, domain, bits):
    s = tensor_stats(torch.tensor(values))
    assert (s.domain, s.bits) == (domain, bits)
    assert s.rate == sum(v != 0 for v in values) / len(values)


def test_domains_merge_over_calls():
    a, b = tensor_stats(torch.tensor([0.0, 1.0])), tensor_stats(torch.tensor([2.0, 0.0]))
    assert a.domain == b.domain == "binary" and a.merge(b).domain == "integer"
    assert tensor_stats(torch.empty(3, device="meta")).domain == "unknown"
