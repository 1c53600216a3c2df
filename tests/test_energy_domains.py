"""Measured input domains: from the values, for every attention in the zoo and Spikformer's residuals."""
import pytest
import torch

from spikeformers import create_model
from spikeformers.attention import create_attention, list_attentions
from spikeformers.energy import count_ops, tensor_stats

LOW = {"v_threshold": 0.1}  # untrained weights fire little at V_th = 1; this makes every path fire

B, b, i, t, r = "binary", "binary", "integer", "ternary", "real"
# Operand domains of each counted operation, per (attention, causal): {layer: {operand: domain}}.
# Product orders are fixed to (Q K^T) V where the attention has a choice (N = d in these shapes).
EXPECTED = {
    ("ssa", False): {"product.qk": {"q": B, "k": B}, "product.qk_v": {"qk": i, "v": B}},
    # causal: a decayed running K^T V (real; its decay is a leak, not an operation), charged per token
    ("ssa", True): {"product.kv": {"k": B, "v": B}, "product.q_kv": {"q": B, "kv": r}, "product.norm": {"y": r}},
    # A2OS2A: binary Q, ReLU (real) K, ternary V: the whole product is addition-only
    ("a2os2a", False): {"product.qk": {"q": B, "k": r}, "product.qk_v": {"qk": r, "v": t}},
    ("a2os2a", True): {"product.kv": {"k": r, "v": t}, "product.q_kv": {"q": B, "kv": r}, "product.norm": {"y": r}},
    ("softmax", False): {"product.qk": {"q": r, "k": r}, "product.softmax": {"scores": r},
                         "product.av": {"attn": r, "v": r}},
    ("softmax", True): {"product.qk": {"q": r, "k": r}, "product.softmax": {"scores": r},
                        "product.av": {"attn": r, "v": r}},
    # SDSA: masks and a column sum of spikes
    ("sdsa", False): {"kv_mask": {"a": B, "b": B}, "token_sum": {"x": B}, "q_mask": {"a": B, "b": B}},
    ("sdsa", True): {"kv_mask": {"a": B, "b": B}, "token_sum": {"x": B}, "q_mask": {"a": B, "b": B}},
    ("qk_token", False): {"q_sum": {"x": B}, "mask": {"a": B, "b": B}},
    ("qk_token", True): {"q_sum": {"x": B}, "mask": {"a": B, "b": B}},
    ("qk_channel", False): {"q_sum": {"x": B}, "mask": {"a": B, "b": B}},
    ("qk_channel", True): {"q_sum": {"x": B}, "mask": {"a": B, "b": B}},
    # bipolar: ternary Q K^T (integer scores), Shiftmax weights are powers of two (real) times binary V
    ("bipolar", False): {"product.qk": {"q": t, "k": t}, "product.shiftmax": {"scores": i},
                         "product.qk_v": {"attn": r, "v": B}},
    ("semm", False): {"product.qk": {"q": B, "k": B}, "product.qk_v": {"qk": i, "v": B}, "gate": {"a": B, "b": B},
                      "mix": {"x": B}},
    # adaptive: spike counts over T (a sum of spikes), then softmax attention on the rates (real)
    ("adaptive", False): {"count": {"x": B}, "product.qk": {"q": r, "k": r}, "product.av": {"attn": r, "v": r}},
}
KINDS = {"product.norm": "scale", "product.qk": "matmul", "product.qk_v": "matmul", "product.kv": "matmul", "product.q_kv": "matmul",
         "product.av": "matmul", "product.softmax": "softmax", "product.shiftmax": "shiftmax", "kv_mask": "hadamard",
         "q_mask": "hadamard", "mask": "hadamard", "gate": "hadamard", "token_sum": "sum", "q_sum": "sum", "mix": "sum",
         "count": "sum"}


def tokens(T=2, B=2, N=8, D=32, seed=0):
    """Integer tokens {0, 1, 2}, like Spikformer's residual stream."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (T, B, N, D), generator=g).float()


def build(name, causal):
    opts = dict(neuron="lif", neuron_opts=LOW)
    if causal:
        opts["causal"] = True
    elif name in ("ssa", "a2os2a", "semm"):
        opts["order"] = "qk_v"
    if name == "bipolar":
        opts["bipolar_opts"] = LOW
    return create_attention(name, 32, 4, **opts)


def test_every_attention_has_expectations():
    from spikeformers.attention import ATTENTIONS

    want = {(n, c) for n in list_attentions() for c in (False, True) if not c or ATTENTIONS.get(n).supports_causal}
    assert set(EXPECTED) == want


@pytest.mark.parametrize("name,causal", sorted(EXPECTED))
def test_attention_operand_domains(name, causal):
    torch.manual_seed(0)
    attn = build(name, causal)
    c = count_ops(attn, tokens())
    got = {l.name: {k: s.domain for k, s in l.operands.items()} for l in c.layers if l.kind != "neuron"}
    for layer, want in EXPECTED[(name, causal)].items():
        assert got[layer] == want, (name, layer)
        assert c.layer(layer).kind == KINDS[layer]
        spiking = {k: s.rate for k, s in c.layer(layer).operands.items() if s.domain in ("binary", "ternary")}
        if c.layer(layer).kind in ("matmul", "hadamard", "sum"):  # event-driven on the sparsest spiking operand
            assert c.layer(layer).event == (min(spiking, key=spiking.get) if spiking else None), (name, layer)
    assert {n for n in got if n.endswith(".linear")} >= {"q.linear", "k.linear", "proj.linear"}
    assert all(l.ops > 0 for l in c.synaptic)
    # the attention's declared q/k/v domains agree with what the counter measured on its products
    for label, dom in getattr(attn, "domains", {}).items():
        seen = [ops[label] for layer, ops in got.items() if label in ops and layer.startswith("product.")]
        assert all(d == dom for d in seen), (name, label, seen)


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


def test_backbones_residual_semantics():
    """REFERENCES 12.1: SDT adds membrane potentials (every synaptic input binary), QKFormer adds spikes
    (integer inputs, MACs under the strict rule); the language model's residual stream carries the real
    embedding, and its first layers are the Q/K/V projections that read the repeated embedding."""
    torch.manual_seed(0)
    c = count_ops(create_model("sdt_tiny", neuron_opts=LOW), torch.rand(2, 1, 8, 8))
    syn = [l for l in c.layers if l.kind in ("conv", "linear", "matmul", "hadamard")]
    assert [l.name for l in syn if l.domain not in ("binary", "binary x binary")] == ["patch_embed.stages.0.conv"]
    assert c.total_mac == c.layer("patch_embed.stages.0.conv").mac

    c = count_ops(create_model("qkformer_tiny", neuron_opts=LOW), torch.rand(2, 1, 8, 8))
    assert c.layer("stages.0.0.attn.q.linear").domain == "integer" and c.layer("stages.0.0.mlp.fc2.linear").domain == "binary"

    # the language model reads its residual stream through norms and neurons: every Linear but the head
    # (after the mean over T) sees spikes, and the causal attention's decaying K^T V is a leak
    lm = create_model("spiking_lm_tiny", neuron_opts=LOW)
    c = count_ops(lm, torch.randint(0, 64, (2, 16)))
    assert not [l.name for l in c.layers if l.analog_first]
    linear = [l for l in c.layers if l.kind == "linear"]
    assert [l.name for l in linear if l.domain != "binary"] == ["head"]
    assert c.layer("head").steps == 1 and c.layer("head").mac == c.layer("head").ops  # after the mean over T
    assert c.layer("blocks.0.attn.product.q_kv").operands["kv"].domain == "real"  # the decayed running K^T V
    leak = c.layer("blocks.0.attn.product.decay")
    assert leak.kind == "leak" and leak.ac == leak.mac == 0 and leak not in c.synaptic
    assert c.layer("blocks.0.norm1").kind == "scale" and c.layer("blocks.0.norm1").mac == 4 * 16 * 32 * 2  # N D T
