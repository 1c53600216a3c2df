"""Adaptive spiking neuron: hand-computed dynamics, learnable time constants, integer mode and its
spike expansion, module == step loop."""
import pytest
import torch

from spikeformers.neurons import DOMAINS, create_neuron, expand_to_spikes


def run(neuron, xs):
    state, spikes, thetas, vs = None, [], [], []
    for x in xs:
        s, state = neuron.step(torch.tensor([x], dtype=torch.float64), state)
        spikes.append(s.item())
        vs.append(state[0].item())
        thetas.append(state[1].item())
    return spikes, vs, thetas


def test_hand_computed_dynamics():
    # k_m = 1/2, k_a = 1/4, dtheta = 0.5, theta0 = 1
    # t1: H = 2 >= 1 -> spike, v = 0, theta = 1 + 0.5 = 1.5
    # t2: H = 0, theta = 1 + 0.75 * 0.5 = 1.375;  t3: theta = 1.28125
    # t4: H = 1.1 < 1.28125 (a plain LIF would fire here), theta = 1.2109375
    # t5: H = 1.1 + (3 - 1.1) / 2 = 2.05 -> spike, theta = 1 + 0.75 * 0.2109375 + 0.5
    n = create_neuron("asn", tau_m=2.0, tau_a=4.0, delta_theta=0.5)
    s, v, th = run(n, [4.0, 0.0, 0.0, 2.2, 3.0])
    assert s == [1, 0, 0, 0, 1]
    assert v == pytest.approx([0.0, 0.0, 0.0, 1.1, 0.0])
    assert th == pytest.approx([1.5, 1.375, 1.28125, 1.2109375, 1.658203125])


@pytest.mark.parametrize("tau_a", [2.0, 4.0, 10.0])
def test_threshold_jumps_by_delta_and_relaxes_with_tau_a(tau_a):
    n = create_neuron("asn", tau_a=tau_a, delta_theta=0.3)
    xs = [5.0] + [0.0] * 6
    s, _, th = run(n, xs)
    assert s[0] == 1 and sum(s) == 1
    excess = [t - 1.0 for t in th]
    assert excess[0] == pytest.approx(0.3)  # rises by exactly delta_theta
    for a, b in zip(excess, excess[1:]):
        assert b == pytest.approx(a * (1 - 1 / tau_a))  # relaxes to theta0 with tau_a


def test_without_adaptation_it_is_the_lif():
    x = (torch.rand(6, 4, 7, dtype=torch.float64) * 3).requires_grad_(True)
    asn, lif = create_neuron("asn", delta_theta=0.0), create_neuron("lif")
    ya, yl = asn(x), lif(x)
    assert torch.equal(ya, yl)
    ga, = torch.autograd.grad(ya.sum(), x)
    gl, = torch.autograd.grad(yl.sum(), x)
    torch.testing.assert_close(ga, gl)


def test_time_constants_learn_per_channel():
    n = create_neuron("asn", channels=5, tau_m=3.0, tau_a=6.0)
    assert n.w_m.shape == (5,) and n.w_a.shape == (5,)
    assert torch.allclose(1 / n.k_m(), torch.full((5,), 3.0)) and torch.allclose(1 / n.k_a(), torch.full((5,), 6.0))
    x = torch.rand(8, 4, 5) * 4
    y = n(x)
    assert 0 < y.mean() < 1
    (y * torch.randn_like(y)).sum().backward()
    for p in (n.w_m, n.w_a):
        assert p.grad is not None and torch.isfinite(p.grad).all() and (p.grad != 0).all()
    with pytest.raises(ValueError, match="channels"):
        n(torch.rand(3, 4, 6))
    fixed = create_neuron("asn", learnable=False)
    assert list(fixed.parameters()) == [] and fixed(x).shape == x.shape


@pytest.mark.parametrize("mode", ["spike", "integer"])
def test_module_equals_step_loop_and_keeps_no_state(mode):
    n = create_neuron("asn", mode=mode, channels=5 if mode == "spike" else None)
    x = torch.randn(7, 3, 5) * 3
    y = n(x)
    state, outs = None, []
    for t in range(7):
        s, state = n.step(x[t], state)
        outs.append(s)
    assert torch.equal(y, torch.stack(outs))
    assert torch.equal(n(x), y)
    assert n.domain in DOMAINS and n.domain == ("binary" if mode == "spike" else "integer")


def test_integer_mode_rounds_clamps_and_passes_gradient_straight_through():
    n = create_neuron("asn", mode="integer", max_spikes=4)
    assert list(n.parameters()) == []
    x = torch.tensor([[-1.0, 0.4, 0.6, 2.5, 3.7, 9.0]], requires_grad=True)
    y = n(x)
    assert y.tolist() == [[0.0, 0.0, 1.0, 2.0, 4.0, 4.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 1.0, 1.0, 1.0, 0.0]]


@pytest.mark.parametrize("D", [1, 4, 7])
def test_integer_activation_equals_its_spike_expansion_through_a_linear_layer(D):
    torch.manual_seed(0)
    n = create_neuron("asn", mode="integer", max_spikes=D)
    a = n(torch.randn(3, 2, 10, 16, dtype=torch.float64) * D)  # integer activations [T, B, N, C]
    spikes = expand_to_spikes(a, D)  # [D, T, B, N, C]
    assert spikes.shape == (D, *a.shape) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(spikes.sum(0), a)
    fc = torch.nn.Linear(16, 8, bias=False).double()
    torch.testing.assert_close(fc(a), sum(fc(s) for s in spikes), rtol=1e-12, atol=1e-12)
    fcb = torch.nn.Linear(16, 8).double()  # with a bias, the bias is added once, not D times
    torch.testing.assert_close(fcb(a), sum(fcb(s) for s in spikes) - (D - 1) * fcb.bias, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="integers"):
        expand_to_spikes(a + 0.5, D)


def test_options_are_validated():
    for bad in (dict(tau_m=1.0), dict(tau_a=0.5), dict(delta_theta=-1.0), dict(mode="float"), dict(max_spikes=0),
                dict(channels=0), dict(learnable="yes")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            create_neuron("asn", **bad)
    with pytest.raises(ValueError, match="unknown option.*'tau'"):
        create_neuron("asn", tau=2.0)
