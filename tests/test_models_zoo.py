"""Model zoo: layers of the SDT / QKFormer backbones, parameter counts vs the papers, every attention x
backbone forward + backward, the membrane-shortcut property, ANN twins, input errors."""
import math

import pytest
import torch
from torch import nn

from spikeformers import count_parameters, create_model, list_models, model_info
from spikeformers.attention import list_attentions, unused_parameter_names
from spikeformers.cli import main
from spikeformers.layers import MSSPS, SPS, speds_stage, speds_stem
from spikeformers.models import SpikeDrivenTransformer
from spikeformers.neurons import neuron_factory

LIF = neuron_factory("lif")


# --- layers ---------------------------------------------------------------------------------------
def test_ms_sps_outputs_membrane_tokens_with_sps_parameters():
    torch.manual_seed(0)
    ms, sps = MSSPS(3, 32, 16, "0011", LIF), SPS(3, 32, 16, "0011", LIF)
    assert [(n, p.shape) for n, p in ms.named_parameters()] == [(n, p.shape) for n, p in sps.named_parameters()]
    y = ms(torch.rand(2, 3, 3, 16, 16))  # [T, B, C, H, W]
    assert y.shape == (2, 3, 16, 32)  # 16 / 4 = 4x4 tokens
    assert not torch.all((y == 0) | (y == 1))  # real membrane potentials, not spikes


@pytest.mark.parametrize("layout, side_in, sides", [("cifar", 16, (16, 8, 4)), ("imagenet", 32, (8, 4, 2))])
def test_speds_grids_widths_and_spike_sums(layout, side_in, sides):
    x = torch.rand(2, 1, 3, side_in, side_in)
    blocks = [speds_stem(3, 8, layout, LIF), speds_stage(16, layout, LIF), speds_stage(32, layout, LIF)]
    for blk, side, width in zip(blocks, sides, (8, 16, 32)):
        x = blk(x * 4)  # scaled so the neurons fire
        assert x.shape == (2, 1, width, side, side)
        assert set(x.unique().tolist()) <= {0.0, 1.0, 2.0}  # spikes + shortcut spikes
    assert blocks[0].shortcut.conv.stride == ((2, 2) if layout == "imagenet" else (1, 1))
    assert blocks[1].shortcut.conv.stride == (2, 2)


def test_speds_rejects_unknown_layout():
    with pytest.raises(ValueError, match="unknown SPEDS layout 'vit'"):
        speds_stem(3, 8, "vit", LIF)


# --- parameter counts vs the papers (meta device: no memory, instant) -----------------------------
EXACT = [  # from the official training logs / checkpoints (REFERENCES.md sections 3, 4, 11)
    ("sdt_8_768", {}, 66_339_144),
    ("qkformer_4_384", {}, 6_706_234),
    ("qkformer_4_384", {"num_classes": 100}, 6_740_884),
    ("qkformer_10_768", {}, 64_962_760),
    ("qkformer_2_256_dvs", {}, 1_504_138),  # CIFAR10-DVS, two stages, MLP ratio 1
]


@pytest.mark.parametrize("name, overrides, count", EXACT)
def test_exact_parameter_counts(name, overrides, count):
    assert count_parameters(name, **overrides) == count


def spikformer_count(D, L, classes, qkv_bias, in_chans=3, talking_heads=0):
    """REFERENCES.md section 11, written out independently of the library: SPS (four conv3x3 stages
    C -> D/8 -> D/4 -> D/2 -> D and the RPE conv, no bias, BN 2C each), per block the attention
    (3 x (D^2 + b D + 2D) for Q, K, V, then D^2 + D + 2D for the projection) and the MLP (4D^2 + 4D + 8D,
    4D^2 + D + 2D), an SDT block's unused talking-heads conv h^2, and the head D x classes + classes."""
    sps = in_chans * (D // 8) * 9 + (D // 8) * (D // 4) * 9 + (D // 4) * (D // 2) * 9 + (D // 2) * D * 9 + D * D * 9
    sps += 2 * (D // 8 + D // 4 + D // 2 + D + D)
    block = 3 * (D * D + qkv_bias * D + 2 * D) + (D * D + D + 2 * D) + (4 * D * D + 4 * D + 8 * D) + (4 * D * D + D + 2 * D)
    return sps + L * (block + talking_heads ** 2) + D * classes + classes


FORMULA = [  # (model, overrides, D, L, classes, qkv_bias, talking-heads h)
    ("spikformer_4_384", {}, 384, 4, 10, 1, 0), ("spikformer_4_384", {"num_classes": 100}, 384, 4, 100, 1, 0),
    ("spikformer_4_256", {}, 256, 4, 10, 1, 0), ("spikformer_2_384", {}, 384, 2, 10, 1, 0),
    ("spikformer_8_384", {}, 384, 8, 1000, 0, 0), ("spikformer_6_512", {}, 512, 6, 1000, 0, 0),
    ("spikformer_8_512", {}, 512, 8, 1000, 0, 0), ("spikformer_10_512", {}, 512, 10, 1000, 0, 0),
    ("spikformer_8_768", {}, 768, 8, 1000, 0, 0),
    ("sdt_2_512", {}, 512, 2, 10, 0, 8), ("sdt_2_512", {"num_classes": 100}, 512, 2, 100, 0, 8),
    ("sdt_8_384", {}, 384, 8, 1000, 0, 8), ("sdt_8_512", {}, 512, 8, 1000, 0, 8), ("sdt_8_768", {}, 768, 8, 1000, 0, 8),
]


@pytest.mark.parametrize("name, overrides, D, L, classes, bias, h", FORMULA, ids=lambda v: str(v))
def test_parameter_counts_equal_the_papers_formula_exactly(name, overrides, D, L, classes, bias, h):
    assert count_parameters(name, **overrides) == spikformer_count(D, L, classes, bias, talking_heads=h)


PUBLISHED = [n for n in list_models() if (model_info(n).get("published") or {}).get("params_m")]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_parameter_counts_are_the_exact_counts_rounded(name):
    """Papers print millions with two decimals; every exact count above rounds to what they print
    (Spikformer-4-384 on CIFAR-100, 9,359,380, prints as 9.32 in the paper, its CIFAR-10 count: docs/models.md)."""
    pub = model_info(name)["published"]
    assert set(pub) >= {"dataset", "top1", "params_m", "source"}
    n = count_parameters(name)
    assert round(n / 1e6, 2) == pub["params_m"] or math.floor(n / 1e4) / 100 == pub["params_m"], (n, pub)


def test_registered_imagenet_spikformers_are_the_published_five():
    names = [n for n in list_models("spikformer_*_*") if (model_info(n).get("published") or {}).get("dataset") == "ImageNet"
             and "semm" not in n]
    assert sorted(names) == sorted(["spikformer_8_384", "spikformer_6_512", "spikformer_8_512", "spikformer_10_512",
                                    "spikformer_8_768"])
    assert count_parameters("spikformer_4_384", num_classes=100) == 9_359_380


def test_zoo_contains_the_published_families():
    names = set(list_models())
    assert {"sdt_2_512", "sdt_8_384", "sdt_8_512", "sdt_8_768", "a2os2a_2_512", "a2os2a_8_512", "a2os2a_10_512",
            "qkformer_4_384", "qkformer_10_384", "qkformer_10_512", "qkformer_10_768", "spiking_lm"} <= names
    assert model_info("a2os2a_10_512")["published"]["source"] == "Guo et al., CVPR 2025"
    assert model_info("a2os2a_10_512")["published"]["top1"] == 78.66
    for n in ("a2os2a_2_512", "a2os2a_8_512", "a2os2a_10_512"):
        with torch.device("meta"):
            m = create_model(n)
        assert m.cfg.attention == "a2os2a" and isinstance(m, SpikeDrivenTransformer)


# --- every attention x every backbone: forward and backward at a tiny size ------------------------
ATTN = list_attentions()
TINY = dict(dim=32, num_heads=2, T=2, img_size=16, in_chans=3, num_classes=5)
BACKBONES = {  # backbone -> (builder, the override that swaps the attention, extra sizes)
    "spikformer": ("spikformer_tiny", "attention", dict(depth=2, pooling="0011")),
    "sdt": ("sdt_tiny", "attention", dict(depth=2, pooling="0011")),
    "qkformer_ssa_stage": ("qkformer_tiny", "attention", dict(depths=(1, 1, 1))),
    "qkformer_qk_stages": ("qkformer_tiny", "token_attention", dict(depths=(1, 1, 1))),
}


def images(B=2, side=16, seed=0):
    return torch.rand(B, 3, side, side, generator=torch.Generator().manual_seed(seed)) * 4


def check_finite_grads(model):
    unused = unused_parameter_names(model)
    for name, p in model.named_parameters():
        if name in unused:
            assert p.grad is None, name
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("attention", ATTN)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_attention_in_every_backbone_forward_backward(backbone, attention):
    builder, key, sizes = BACKBONES[backbone]
    torch.manual_seed(0)
    model = create_model(builder, **TINY, **sizes, **{key: attention})
    y = model(images())
    assert y.shape == (2, 5)
    y.square().sum().backward()
    check_finite_grads(model)
    assert model(images(B=1)[None].expand(2, 1, 3, 16, 16)).shape == (1, 5)  # temporal input [T, B, C, H, W]


@pytest.mark.parametrize("neuron", ["plif", "if"])
def test_published_layouts_take_other_neurons(neuron):
    for builder in ("sdt_tiny", "qkformer_tiny"):
        model = create_model(builder, neuron=neuron, T=2)
        model(torch.rand(2, 1, 8, 8)).sum().backward()
        check_finite_grads(model)


# --- membrane shortcut: every Linear/Conv after the first conv reads binary spikes ----------------
def linear_inputs(model, x):
    """{module name: its input} for every Linear/Conv, recorded with forward pre-hooks."""
    seen, hooks = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            hooks.append(mod.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[0].detach())))
    model(x)
    for h in hooks:
        h.remove()
    return seen


def is_binary(t):
    return bool(((t == 0) | (t == 1)).all())


@pytest.mark.parametrize("attention", ["sdsa", "a2os2a", "ssa", "qk_token", "qk_channel"])
def test_sdt_every_matmul_input_after_the_first_conv_is_binary(attention):
    torch.manual_seed(0)
    model = create_model("sdt_tiny", **TINY, depth=2, pooling="0011", attention=attention)
    seen = linear_inputs(model, images())
    first = "patch_embed.stages.0.conv"
    assert not is_binary(seen.pop(first))  # the analog image (direct encoding)
    convs = {n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}
    assert set(seen) == convs - {first} - {n for n in convs if n.endswith("talking_heads")}  # all ran, but the unused conv
    for name, t in seen.items():
        assert is_binary(t), name
    assert sum(t.sum() > 0 for t in seen.values()) > len(seen) // 2  # the spikes are not all zero


def test_spikformer_and_qkformer_residuals_feed_integer_sums_to_linears():
    """Spike residuals (Spikformer, QKFormer) add spikes: later Q/K/V and MLP inputs hold small integers >= 2,
    which the energy counter charges as MACs (REFERENCES.md section 12)."""
    torch.manual_seed(0)
    for builder, key in (("spikformer_tiny", "blocks.1.attn.q.linear"), ("qkformer_tiny", "stages.2.0.attn.q.linear")):
        sizes = dict(depth=2, pooling="0011") if builder == "spikformer_tiny" else {}
        seen = linear_inputs(create_model(builder, **TINY, **sizes), images())
        t = seen[key]
        assert not is_binary(t) and torch.equal(t, t.round()) and t.max() >= 2, builder


# --- ANN twins ---------------------------------------------------------------------------------------
# Parameters the twin does not share with its spiking model, and why:
#  - spiking only: neuron parameters (PLIF `w`, learnable ternary amplitudes: the twin's ReLU has none) and
#    SDSA's talking-heads conv (unused in the official forward, kept for count parity);
#  - twin only: `attn.v` in QKFormer's Q-K stages. Q-K attention has no V; the twin keeps the same Q, K
#    and output projections and adds the V projection softmax needs (softmax(QK^T/sqrt(d)) V).
def shapes(model):
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


@pytest.mark.parametrize("builder", ["spikformer_tiny", "sdt_tiny", "qkformer_tiny", "spiking_lm_tiny"])
def test_twin_has_the_same_layout_except_documented_parameters(builder):
    opts = {} if builder == "spiking_lm_tiny" else dict(TINY, num_classes=5)
    spiking = create_model(builder, neuron="plif", **opts)
    twin = create_model(builder, twin="ann", **opts)
    assert twin.cfg.T == 1 and twin.cfg.neuron == "relu" and twin.cfg.attention == "softmax"
    s, t = shapes(spiking), shapes(twin)
    only_spiking = {n for n in set(s) - set(t) if not n.endswith(".w")}  # PLIF's w: a neuron parameter
    assert all(n.endswith(".w") for n in set(s) - set(t) - only_spiking)
    assert any(n.endswith(".w") for n in s)
    if builder == "sdt_tiny":
        assert only_spiking == {f"blocks.{i}.attn.talking_heads.weight" for i in range(spiking.cfg.depth)}
    elif builder == "spiking_lm_tiny":  # the causal product's learned decay and per-head norm
        assert only_spiking == {f"blocks.{i}.attn.product.{p}" for i in range(spiking.cfg.depth)
                                for p in ("decay_logit", "norm_weight", "norm_bias")}
    else:
        assert only_spiking == set()
    only_twin = set(t) - set(s)
    if builder == "qkformer_tiny":
        assert twin.cfg.token_attention == "softmax"
        assert only_twin == {f"stages.{i}.{j}.attn.v.{p}" for i in (0, 1) for j in range(spiking.cfg.depths[i])
                             for p in ("linear.weight", "bn.weight", "bn.bias")}
    else:
        assert only_twin == set()
    assert all(s[n] == t[n] for n in set(s) & set(t))


@pytest.mark.parametrize("builder", ["spikformer_tiny", "sdt_tiny", "qkformer_tiny"])
def test_twin_runs_with_one_step_and_real_activations(builder):
    twin = create_model(builder, twin="ann", **TINY)
    x = images()
    assert twin(x).shape == (2, 5) and twin(x, per_step=True).shape == (1, 2, 5)


# --- input errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", ["sdt_tiny", "qkformer_tiny"])
def test_bad_input_shapes_are_one_line_value_errors(builder):
    model = create_model(builder)
    for bad in (torch.rand(2, 3, 8, 8), torch.rand(1, 8, 8), torch.rand(2, 2, 1, 8, 9)):
        with pytest.raises(ValueError, match=r"expects images \[B, 1, 8, 8\]") as e:
            model(bad)
        assert "\n" not in str(e.value)


def test_bad_options_are_value_errors_naming_them():
    with pytest.raises(ValueError, match="unknown option.*'heads'"):
        create_model("sdt_tiny", heads=3)
    with pytest.raises(ValueError, match="depths must be 3"):
        create_model("qkformer_tiny", depths=(1, 2))
    with pytest.raises(ValueError, match="embed must be one of"):
        create_model("qkformer_tiny", embed="vit")
    with pytest.raises(ValueError, match="img_size must be a multiple of 16"):
        create_model("qkformer_tiny", embed="imagenet", img_size=24)
    with pytest.raises(ValueError, match="pooling must be"):
        create_model("sdt_tiny", pooling="011")


def test_attention_override_drops_the_variants_attention_options():
    m = create_model("sdt_tiny", attention="ssa")  # sdt_tiny's talking_heads=True belongs to sdsa
    assert m.cfg.attention_opts == {} and type(m.blocks[0].attn).__name__ == "SSA"
    m = create_model("sdt_tiny", attention_opts={"talking_heads": False})
    assert not hasattr(m.blocks[0].attn, "talking_heads")


# --- the `models` command ---------------------------------------------------------------------------
def test_models_command_lists_every_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    assert "66.339" in out and "a2os2a" in out and "Guo et al., CVPR 2025" in out and "qk_token+ssa" in out
