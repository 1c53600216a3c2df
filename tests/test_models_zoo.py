"""Model zoo: layers of the SDT / QKFormer backbones, parameter counts vs the papers, every attention x
backbone forward + backward, the membrane-shortcut property, ANN twins, input errors."""
import pytest
import torch

from spikeformers.layers import MSSPS, SPS, speds_stage, speds_stem
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
