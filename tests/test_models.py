"""Spikformer zoo: published parameter counts, forward/backward over the registry, twins, input checks."""
import pytest
import torch

from spikeformers import count_parameters, create_model, list_models, model_info

# REFERENCES.md section 2/11: published counts (M)
PUBLISHED = {"spikformer_4_384": 9.32, "spikformer_4_256": 4.15, "spikformer_2_384": 5.76,
             "spikformer_8_384": 16.81, "spikformer_8_512": 29.68, "spikformer_8_768": 66.34}


@pytest.mark.parametrize("name,millions", sorted(PUBLISHED.items()))
def test_parameter_counts_match_papers(name, millions):
    assert abs(count_parameters(name) / 1e6 - millions) < 0.01


def test_spikformer_4_384_count_by_hand():
    D, C = 384, 10  # REFERENCES section 11 formulas
    sps = 3 * (D // 8) * 9 + (D // 8) * (D // 4) * 9 + (D // 4) * (D // 2) * 9 + (D // 2) * D * 9 + D * D * 9
    sps += 2 * (D // 8 + D // 4 + D // 2 + D + D)
    block = 3 * (D * D + D + 2 * D) + (D * D + D + 2 * D) + (4 * D * D + 4 * D + 8 * D) + (4 * D * D + D + 2 * D)
    assert count_parameters("spikformer_4_384") == sps + 4 * block + D * C + C


TINY = dict(dim=32, depth=1, num_heads=2, img_size=16, T=2)


@pytest.mark.parametrize("name", [n for n in list_models("spikformer_*") if model_info(n)["family"] == "spikformer"])
@pytest.mark.parametrize("attention", ["ssa", "a2os2a", "softmax"])
def test_forward_backward_every_parameter_gets_a_finite_gradient(name, attention):
    torch.manual_seed(0)
    model = create_model(name, attention=attention, **TINY)
    x = torch.rand(3, model.cfg.in_chans, 16, 16)
    logits = model(x)
    assert logits.shape == (3, model.cfg.num_classes)
    logits.logsumexp(1).sum().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_per_step_and_temporal_input():
    model = create_model("spikformer_tiny")
    x = torch.rand(2, 1, 8, 8)
    per_step = model(x, per_step=True)
    assert per_step.shape == (4, 2, 10)
    torch.testing.assert_close(per_step.mean(0), model(x))
    xt = torch.rand(6, 2, 1, 8, 8)  # already temporal (e.g. event frames): T from the input
    assert model(xt, per_step=True).shape == (6, 2, 10)


def test_ann_twin_has_same_layout_and_no_spikes():
    snn, ann = create_model("spikformer_4_384"), create_model("spikformer_4_384", twin="ann")
    assert [(n, p.shape) for n, p in snn.named_parameters()] == [(n, p.shape) for n, p in ann.named_parameters()]
    assert ann.cfg.T == 1 and ann.cfg.attention == "softmax" and ann.cfg.neuron == "relu"
    plif = create_model("spikformer_tiny", neuron="plif")
    extra = {n for n, _ in plif.named_parameters()} - {n for n, _ in create_model("spikformer_tiny").named_parameters()}
    assert extra and all(n.endswith(".w") for n in extra)  # only the neurons' own parameters differ


def test_overrides_swap_parts():
    m = create_model("spikformer_4_384", attention="a2os2a", neuron="plif", T=2, num_classes=7, img_size=28,
                     in_chans=1, encoder="rate")
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 7)
    assert type(m.blocks[0].attn).__name__ == "A2OS2A"
    assert m.model_args["attention"] == "a2os2a"


def test_bad_input_errors_are_one_line():
    model = create_model("spikformer_tiny")
    with pytest.raises(ValueError, match=r"expects images \[B, 1, 8, 8\] or \[T, B, 1, 8, 8\], got shape \(2, 3, 8, 8\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown model 'spikformer_9_999'; valid models: "):
        create_model("spikformer_9_999")
    with pytest.raises(ValueError, match="unknown option.*'depht'"):
        create_model("spikformer_tiny", depht=3)
    with pytest.raises(ValueError, match="unknown neuron"):
        create_model("spikformer_tiny", neuron="lifx")
    with pytest.raises(ValueError, match="pooling must be a string of 4"):
        create_model("spikformer_4_384", pooling="01")
    assert create_model("spikformer_tiny", img_size=28, pooling="1111").patch_embed.grid == 2  # 28-14-7-4-2


def test_import_does_not_initialise_cuda():
    import subprocess
    import sys

    code = "import spikeformers, torch; spikeformers.create_model('spikformer_tiny'); print(torch.cuda.is_initialized())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_command_line_text_is_read_by_field_type():
    m = create_model("spikformer_tiny", pooling="0011", dim="32", mlp_ratio="2", neuron_opts="{tau: 3.0}")
    assert (m.cfg.pooling, m.cfg.dim, m.cfg.mlp_ratio, m.cfg.neuron_opts) == ("0011", 32, 2.0, {"tau": 3.0})
    with pytest.raises(ValueError, match="'pooling' must be a string, got 11 \\(quote it in YAML\\)"):
        create_model("spikformer_tiny", pooling=11)
    with pytest.raises(ValueError, match="'dim' must be int, got 2.5"):
        create_model("spikformer_tiny", dim=2.5)
