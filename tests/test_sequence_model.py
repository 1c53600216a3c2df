"""The sequence Spikformer: shapes, gradients to every parameter, the embedding, the parameter formula."""
import pytest
import torch

from spikeformers import count_parameters, create_model, list_models, model_info
from spikeformers.layers.sps1d import SPS1d, check_strides
from spikeformers.neurons.registry import neuron_factory

TINY = dict(dim=16, depth=1, num_heads=1, seq_len=12, in_features=3, T=2)  # one head: attention spikes at this size


@pytest.mark.parametrize("name", list_models("spikformer_seq_*"))
def test_forward_backward_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, **TINY, strides="0000", tokens=0)
    x = torch.rand(4, 12, 3) * 3  # strong input so every layer spikes
    out = model(x)
    assert out.shape == (4, 10)
    per_step = model(x, per_step=True)
    assert per_step.shape == (2, 4, 10) and torch.allclose(per_step.mean(0), out)
    temporal = torch.rand(3, 4, 12, 3) * 3  # [T, B, L, F] brings its own T
    assert model(temporal, per_step=True).shape == (3, 4, 10)
    model(x).square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} received no gradient"


def test_input_shape_errors():
    model = create_model("spikformer_seq_tiny", **TINY)
    with pytest.raises(ValueError, match=r"expects sequences \[B, 12, 3\] or \[T, B, 12, 3\]"):
        model(torch.zeros(4, 12, 2))
    with pytest.raises(ValueError, match="strides must be"):
        create_model("spikformer_seq_tiny", strides="011")
    with pytest.raises(ValueError, match="unknown option"):
        create_model("spikformer_seq_tiny", img_size=8)


def test_sps1d_lengths_tokens_and_values():
    assert check_strides("0111", 784) == 98 and check_strides("1111", 1024) == 64 and check_strides("0000", 40) == 40
    assert check_strides("0011", 41) == 11  # ceil halvings
    sps = SPS1d(2, 16, 20, "0100", neuron_factory("lif"), kernel_size=3)
    x = torch.rand(2, 5, 20, 2) * 4  # [T, B, L, F]
    tok = sps(x)
    assert tok.shape == (2, 5, 10, 16) and sps.num_tokens == 10
    assert set(tok.unique().tolist()) <= {0.0, 1.0, 2.0}  # spike + RPE spike
    pooled = SPS1d(2, 16, 20, "0000", neuron_factory("lif"), tokens=4)
    assert pooled(x).shape == (2, 5, 4, 16)
    with pytest.raises(ValueError, match="tokens must be in"):
        SPS1d(2, 16, 20, "0011", neuron_factory("lif"), tokens=6)


def _step_layout_params(D, L_in, F, classes, depth, k=5):
    """SPS1d with conv biases (STEP's nn.Conv1d default) + Spikformer blocks (REFERENCES section 11) + head."""
    chans = [F, D // 8, D // 4, D // 2, D]
    embed = sum(chans[i] * chans[i + 1] * k + 3 * chans[i + 1] for i in range(4)) + (D * D * 3 + 3 * D)
    attn = 3 * (D * D + D + 2 * D) + (D * D + D + 2 * D)
    mlp = (4 * D * D + 4 * D + 8 * D) + (4 * D * D + D + 2 * D)
    return embed + depth * (attn + mlp) + D * classes + classes


def test_published_size_matches_the_formula():
    assert count_parameters("spikformer_seq_4_384") == _step_layout_params(384, 784, 1, 10, 4)
    pub = model_info("spikformer_seq_4_384")["published"]
    assert pub["dataset"] == "sMNIST" and pub["top1"] == 98.84 and "psMNIST" in pub["others"]
    assert abs(pub["params_m"] - count_parameters("spikformer_seq_4_384") / 1e6) < 0.01
    assert count_parameters("spikformer_seq_4_384", seq_len=1024, in_features=3, strides="1111") == \
        _step_layout_params(384, 1024, 3, 10, 4)


def test_ann_twin_and_attention_swap():
    twin = create_model("spikformer_seq_tiny", **TINY, twin="ann")
    assert twin.cfg.T == 1 and twin.cfg.attention == "softmax"
    assert twin(torch.rand(2, 12, 3)).shape == (2, 10)
    a2 = create_model("spikformer_seq_tiny", **TINY, attention="a2os2a")
    assert a2(torch.rand(2, 12, 3)).shape == (2, 10)
