"""Bipolar (signed) LIF: hand-computed spikes of both polarities, symmetric surrogate gradient."""
import pytest
import torch

from spikeformers.neurons import create_neuron


def run(neuron, xs):
    state, spikes, vs = None, [], []
    for x in xs:
        s, state = neuron.step(torch.tensor([x], dtype=torch.float64), state)
        spikes.append(s.item())
        vs.append(state.item())
    return spikes, vs


def test_hand_computed_both_polarities():
    # H = V + (X - V)/2: 1.5 -> +1 (reset 0); -1.5 -> -1; -0.5 (stays); -0.5 + (-1.5 + 0.5)/2 = -1 -> -1; 0.25
    s, v = run(create_neuron("bipolar"), [3.0, -3.0, -1.0, -1.5, 0.5])
    assert s == [1, -1, 0, -1, 0]
    assert v == pytest.approx([0.0, 0.0, -0.5, 0.0, 0.25])


def test_soft_reset_moves_towards_zero():
    s, v = run(create_neuron("bipolar", v_reset=None, decay_input=False), [1.5, -3.0])
    # H1 = 1.5 -> +1, V = 0.5;  H2 = 0.5 - 0.25 - 3 = -2.75 -> -1, V = -1.75
    assert s == [1, -1] and v == pytest.approx([0.5, -1.75])


def test_gradient_is_the_surrogate_at_abs_membrane_minus_threshold():
    n = create_neuron("bipolar", surrogate="sigmoid", alpha=4.0)
    x = torch.tensor([[1.6, -1.6, 2.4, -2.4]], dtype=torch.float64, requires_grad=True)  # H = +-0.8, +-1.2
    y = n(x)
    assert y.tolist() == [[0.0, 0.0, 1.0, -1.0]]
    y.sum().backward()
    sg = n.surrogate.derivative(torch.tensor([-0.2, -0.2, 0.2, 0.2], dtype=torch.float64)) * 0.5  # dH/dx = 1/tau
    # positive on both sides: raising a negative membrane moves S from -1 towards 0
    torch.testing.assert_close(x.grad[0], sg)


def test_module_equals_step_loop_domain_and_validation():
    n = create_neuron("bipolar")
    assert n.domain == "ternary"
    x = torch.randn(6, 3, 5) * 3
    y = n(x)
    assert set(y.unique().tolist()) == {-1.0, 0.0, 1.0}
    state, outs = None, []
    for t in range(6):
        s, state = n.step(x[t], state)
        outs.append(s)
    assert torch.equal(y, torch.stack(outs))
    with pytest.raises(ValueError, match="v_reset"):
        create_neuron("bipolar", v_reset=-1.5)
    with pytest.raises(RuntimeError, match="Triton"):
        create_neuron("bipolar", backend="triton")(x)
