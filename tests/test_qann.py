"""The quantized-ANN twin: activations take exactly 2^b values, the rounding is straight-through, the
step size learns, weights take at most 2^b - 1 values, and twin="qann" trains through the engine."""
import math

import pytest
import torch

from spikeformers import create_model, create_neuron
from spikeformers.layers.quantize import WeightQuant, quantize_weights
from spikeformers.neurons import quantize_levels
from spikeformers.train import load_config, train


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_activations_take_exactly_two_to_the_bits_values(bits):
    q = create_neuron("quant", bits=bits, init_max=2.0)
    x = torch.linspace(-3, 5, 20001)
    y = q(x)
    step = 2.0 / (2 ** bits - 1)
    levels = torch.unique(y)
    assert len(levels) == 2 ** bits
    torch.testing.assert_close(levels, torch.arange(2 ** bits, dtype=torch.float32) * step, atol=1e-6, rtol=0)
    torch.testing.assert_close(y, (x / step).round().clamp(0, 2 ** bits - 1) * step, atol=1e-6, rtol=0)


def test_rounding_is_straight_through_and_the_step_learns():
    q = create_neuron("quant", bits=3, init_max=7.0)  # step 1: levels 0..7
    x = torch.tensor([-1.0, 0.3, 2.6, 6.9, 9.0], requires_grad=True)
    y = q(x)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # inside [0, 7 s] the rounding passes the gradient
    # LSQ: dy/ds = round(x/s) - x/s inside, the top level L outside; scaled by 1 / sqrt(n L)
    want = ((0.0) + (0 - 0.3) + (3 - 2.6) + (7 - 6.9) + 7) / math.sqrt(5 * 7)
    assert q.step_size.grad.item() == pytest.approx(want, rel=1e-5)


def test_weights_take_at_most_two_to_the_bits_minus_one_values_and_pass_gradients():
    w = torch.randn(64, 32, requires_grad=True)
    wq = WeightQuant(4)(w)
    assert len(torch.unique(wq)) <= 15
    torch.testing.assert_close(wq.abs().max(), w.abs().max().detach())  # the largest weight is a level
    wq.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    m = quantize_weights(torch.nn.Linear(8, 4), 2)
    assert len(torch.unique(m.weight)) <= 3


def test_qann_twin_layout_and_bits():
    assert quantize_levels(4) == 3 and quantize_levels(1) == 1 and quantize_levels(8) == 4
    twin = create_model("spikformer_tiny", twin="qann", T=4)
    assert twin.cfg.T == 1 and twin.cfg.neuron == "quant" and twin.cfg.neuron_opts == {"bits": 3}
    assert twin.cfg.attention == "softmax"
    lm = create_model("spiking_lm_tiny", twin="qann", neuron="ilif", T=1)
    assert lm.cfg.neuron_opts == {"bits": 3}  # 1 step x up to 4 spikes: 0..4 needs 3 bits


def test_qann_trains_and_reports_its_own_energy(tmp_path):
    cfg = load_config(None, ["twin=qann", "model.weight_bits=8", "run.max_steps=3", "epochs=1", f"run.out_dir={tmp_path}",
                             "run.device=cpu"])
    s = train(cfg, progress=False)
    assert s["finished"] and 0 <= s["test_acc"] <= 1 and s["model_config"]["twin"] == "qann"
    assert s["energy"]["qann_uJ"] > 0
