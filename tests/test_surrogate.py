"""Surrogate gradients against float64 finite differences of their smooth primitives."""
import math

import pytest
import torch

from spikeformers.neurons import create_neuron, create_surrogate, heaviside, list_surrogates

CASES = [("sigmoid", None), ("sigmoid", 2.5), ("atan", None), ("atan", 3.0), ("triangle", None), ("triangle", 2.0),
         ("rectangle", None), ("rectangle", 0.5), ("ste", None)]


@pytest.mark.parametrize("name,alpha", CASES)
def test_derivative_matches_finite_difference_of_primitive(name, alpha):
    s = create_surrogate(name, alpha)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    # avoid the kinks of the piecewise surrogates, where the derivative is one-sided
    if name in ("triangle", "rectangle"):
        a = s.alpha
        kinks = torch.tensor([0.0, 1 / a, -1 / a] if name == "triangle" else [0.5 / a, -0.5 / a], dtype=torch.float64)
        x = x[(x[:, None] - kinks[None]).abs().min(1).values > 1e-3]
    h = 1e-6
    fd = (s.primitive(x + h) - s.primitive(x - h)) / (2 * h)
    torch.testing.assert_close(s.derivative(x), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,alpha", CASES)
def test_heaviside_forward_is_step_and_backward_is_derivative(name, alpha):
    s = create_surrogate(name, alpha)
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    y = heaviside(x, s)
    assert torch.equal(y, (x >= 0).double())
    g = torch.randn_like(x)
    (y * g).sum().backward()
    torch.testing.assert_close(x.grad, g * s.derivative(x.detach()))


def test_known_closed_forms():
    x = torch.tensor([0.0, 0.5], dtype=torch.float64)
    # sigmoid alpha 4 at 0: 4 * 0.25 = 1; atan alpha 2 at 0: 1
    assert create_surrogate("sigmoid").derivative(x)[0].item() == pytest.approx(1.0)
    assert create_surrogate("atan").derivative(x)[0].item() == pytest.approx(1.0)
    s = 1 / (1 + math.exp(-2.0))
    assert create_surrogate("sigmoid").derivative(x)[1].item() == pytest.approx(4 * s * (1 - s))
    assert create_surrogate("atan", 2.0).derivative(x)[1].item() == pytest.approx(1 / (1 + (math.pi / 2) ** 2))


def test_alpha_set_by_user_reaches_the_neuron_gradient():
    n = create_neuron("lif", surrogate="atan", alpha=3.0, tau=2.0)
    assert n.surrogate.alpha == 3.0
    x = torch.full((1, 1), 1.6, dtype=torch.float64, requires_grad=True)  # H = 0.8, H - Vth = -0.2
    n(x).sum().backward()
    expected = 0.5 * (3.0 / 2 / (1 + (math.pi / 2 * 3.0 * -0.2) ** 2))  # dH/dx = 1/tau
    assert x.grad.item() == pytest.approx(expected)


def test_each_neuron_owns_its_surrogate():
    a, b = create_neuron("lif"), create_neuron("lif")
    assert a.surrogate is not b.surrogate


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="valid surrogates: atan, rectangle, sigmoid, ste, triangle"):
        create_surrogate("relu")
    with pytest.raises(ValueError, match="alpha"):
        create_surrogate("sigmoid", -1.0)
    with pytest.raises(ValueError, match="'ste' takes no alpha"):
        create_surrogate("ste", 2.0)
    assert list_surrogates() == ["atan", "rectangle", "sigmoid", "ste", "triangle"]
