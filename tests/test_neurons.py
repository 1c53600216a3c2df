"""Neuron dynamics step by step on hand-made inputs, module == functional step, option validation."""
import pytest
import torch

from spikeformers.neurons import DOMAINS, create_neuron, list_neurons


def run_states(neuron, xs):
    """Spikes and membrane potentials after each step, through the explicit-state API."""
    state, spikes, states = None, [], []
    for x in xs:
        s, state = neuron.step(torch.tensor([x], dtype=torch.float64), state)
        spikes.append(s.item())
        states.append(state.item())
    return spikes, states


def test_lif_hand_computed():
    # H1 = 1.5/2 = 0.75; H2 = 0.75 + (0.5 - 0.75)/2 = 0.625; H3 = 0.625 + (1 - 0.625)/2 = 0.8125;
    # H4 = 0.8125 + (3 - 0.8125)/2 = 1.90625 -> spike, reset to 0; H5 = 0 + 2.2/2 = 1.1 -> spike
    s, v = run_states(create_neuron("lif"), [1.5, 0.5, 1.0, 3.0, 2.2])
    assert s == [0, 0, 0, 1, 1]
    assert v == pytest.approx([0.75, 0.625, 0.8125, 0.0, 0.0])


def test_lif_soft_reset_and_no_decay_input():
    s, v = run_states(create_neuron("lif", v_reset=None), [3.0, 0.0])
    assert s == [1, 0] and v == pytest.approx([0.5, 0.25])  # H1 = 1.5 -> 1.5 - 1 = 0.5; H2 = 0.25
    s, v = run_states(create_neuron("lif", decay_input=False), [0.8, 0.8])
    assert s == [0, 1] and v == pytest.approx([0.8, 0.0])  # H2 = 0.8 - 0.4 + 0.8 = 1.2


def test_if_hand_computed():
    s, v = run_states(create_neuron("if"), [0.6, 0.6, 0.6, -0.2])
    assert s == [0, 1, 0, 0] and v == pytest.approx([0.6, 0.0, 0.6, 0.4])


def test_ternary_hand_computed():
    # u1 = .3; u2 = .25*.3 + .3 = .375; u3 = .09375 - .7 = -.60625 -> -1, reset; u4 = .1; u5 = .025 + 2 -> +1
    s, u = run_states(create_neuron("ternary"), [0.3, 0.3, -0.7, 0.1, 2.0])
    assert s == [0, 0, -1, 0, 1]
    assert u == pytest.approx([0.3, 0.375, 0.0, 0.1, 0.0])


def test_ternary_gradient_is_clamp_straight_through_and_amplitude():
    n = create_neuron("ternary", v_threshold=2.0, amplitude=0.5, learnable_amplitude=True)
    x = torch.tensor([[0.5, 1.5, -3.0, 2.5]], requires_grad=True)  # u / Vth = .25, .75, -1.5, 1.25
    y = n(x)
    assert y.tolist() == [[0.0, 0.5, -0.5, 0.5]]
    y.sum().backward()
    # d s/d x = amplitude * 1[|u/Vth| <= 1] / Vth
    assert x.grad.tolist() == [[0.25, 0.25, 0.0, 0.0]]
    assert n.amplitude.grad.item() == pytest.approx(1.0)  # s in {0, 1, -1, 1}: sum = 1


def test_plif_learns_tau():
    n = create_neuron("plif", tau=3.0)
    assert torch.sigmoid(n.w).item() == pytest.approx(1 / 3)
    x = torch.rand(6, 10) * 3
    n(x).sum().backward()
    assert n.w.grad is not None and torch.isfinite(n.w.grad)


@pytest.mark.parametrize("name", ["if", "lif", "plif", "ternary", "relu", "identity"])
def test_module_equals_step_loop_and_keeps_no_state(name):
    n = create_neuron(name)
    x = torch.randn(7, 3, 5) * 2
    y = n(x)
    state, outs = None, []
    for t in range(7):
        s, state = n.step(x[t], state)
        outs.append(s)
    assert torch.equal(y, torch.stack(outs))
    assert torch.equal(n(x), y)  # a second call starts from rest again


@pytest.mark.parametrize("name", ["if", "lif", "plif", "ternary"])
def test_output_domain_and_dtype(name):
    n = create_neuron(name)
    assert n.domain in DOMAINS
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        y = n(torch.randn(4, 50, dtype=dtype) * 3)
        assert y.dtype == dtype
        allowed = {0.0, 1.0} if n.domain == "binary" else {-1.0, 0.0, 1.0}
        assert set(y.unique().tolist()) <= allowed


def test_option_validation_names_the_option():
    with pytest.raises(ValueError, match="unknown option.*'taux'.*valid options:.*tau"):
        create_neuron("lif", taux=3.0)
    with pytest.raises(ValueError, match="unknown neuron 'lifx'; valid neurons: "):
        create_neuron("lifx")
    with pytest.raises(ValueError, match="tau must be > 1"):
        create_neuron("lif", tau=0.5)
    with pytest.raises(ValueError, match="v_threshold"):
        create_neuron("lif", v_threshold=-1)
    with pytest.raises(ValueError, match="v_reset"):
        create_neuron("lif", v_reset=2.0)
    with pytest.raises(ValueError, match="backend"):
        create_neuron("lif", backend="cupy")
    with pytest.raises(ValueError, match="decay"):
        create_neuron("ternary", decay=1.5)
    assert {"if", "lif", "plif", "ternary", "relu"} <= set(list_neurons())


def test_shape_error_is_clear():
    with pytest.raises(ValueError, match=r"time-first tensor \[T, \.\.\.\]"):
        create_neuron("lif")(torch.randn(5))
