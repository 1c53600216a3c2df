"""Our reference LIF/PLIF/IF give the same spikes and gradients as SpikingJelly's multi-step nodes."""
import pytest
import torch

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")

from spikeformers.neurons import create_neuron  # noqa: E402


def _compare(ours, theirs, shape, scale=1.5, dtype=torch.float64):
    torch.manual_seed(0)
    x = (torch.randn(*shape, dtype=dtype) * scale + 0.5)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    assert torch.equal(y1, y2)
    assert 0.05 < y1.mean() < 0.95  # the comparison exercised both firing and silence
    g = torch.randn_like(y1)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 8, 33), (8, 2, 3, 5, 5), (16, 64)])
def test_lif_defaults_equal_spikingjelly(shape):
    _compare(create_neuron("lif"), sj_neuron.LIFNode(step_mode="m", detach_reset=True), shape)


@pytest.mark.parametrize("kw,sj_kw", [
    (dict(v_reset=None), dict(v_reset=None)),
    (dict(detach_reset=False), dict(detach_reset=False)),
    (dict(decay_input=False, tau=3.0), dict(decay_input=False, tau=3.0)),
])
def test_lif_variants_equal_spikingjelly(kw, sj_kw):
    sj_kw = {"detach_reset": True, **sj_kw}
    _compare(create_neuron("lif", **kw), sj_neuron.LIFNode(step_mode="m", **sj_kw), (6, 4, 20))


def test_lif_atan_equals_spikingjelly():
    ours = create_neuron("lif", surrogate="atan", alpha=3.0)
    theirs = sj_neuron.LIFNode(step_mode="m", detach_reset=True, surrogate_function=sj_surrogate.ATan(alpha=3.0))
    _compare(ours, theirs, (5, 40))


def test_if_equals_spikingjelly():
    _compare(create_neuron("if"), sj_neuron.IFNode(step_mode="m", detach_reset=True), (6, 50), scale=0.6)


def test_plif_equals_spikingjelly_including_tau_gradient():
    ours = create_neuron("plif", tau=2.0).double()
    theirs = sj_neuron.ParametricLIFNode(init_tau=2.0, step_mode="m", detach_reset=True).double()
    _compare(ours, theirs, (6, 4, 20))
    torch.testing.assert_close(ours.w.grad, theirs.w.grad.reshape(ours.w.grad.shape))


SURROGATES = [("sigmoid", 4.0, "Sigmoid"), ("atan", 2.0, "ATan"), ("triangle", 1.0, "PiecewiseQuadratic"),
              ("rectangle", 1.0, "Rect")]


@pytest.mark.parametrize("name, alpha, sj_name", SURROGATES)
@pytest.mark.parametrize("v_reset", [0.0, None], ids=["hard", "soft"])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_equals_spikingjelly_for_every_shared_surrogate_reset_and_input_decay(name, alpha, sj_name, v_reset,
                                                                                  detach_reset, decay_input):
    ours = create_neuron("lif", surrogate=name, alpha=alpha, v_reset=v_reset, detach_reset=detach_reset,
                         decay_input=decay_input)
    theirs = sj_neuron.LIFNode(step_mode="m", v_reset=v_reset, detach_reset=detach_reset, decay_input=decay_input,
                               surrogate_function=getattr(sj_surrogate, sj_name)(alpha=alpha))
    _compare(ours, theirs, (6, 3, 17))


@pytest.mark.parametrize("tau", [1.5, 3.0])
def test_plif_with_another_initial_tau_equals_spikingjelly(tau):
    ours = create_neuron("plif", tau=tau, v_reset=None).double()
    theirs = sj_neuron.ParametricLIFNode(init_tau=tau, step_mode="m", detach_reset=True, v_reset=None).double()
    _compare(ours, theirs, (6, 4, 20))
    torch.testing.assert_close(ours.w.grad, theirs.w.grad.reshape(ours.w.grad.shape))


@pytest.mark.parametrize("v_reset", [0.0, None], ids=["hard", "soft"])
def test_bipolar_forward_equals_spikingjelly_ternary_lif(v_reset):
    """Same spikes as SJ 2.0's TernaryLIFNode. The gradients differ by design (docs/models.md): ours is
    the surrogate at |H| - V_th, SJ's the sum of the surrogates at H - V_th and -H - V_th."""
    torch.manual_seed(0)
    x = torch.randn(8, 4, 30, dtype=torch.float64) * 2
    ours = create_neuron("bipolar", v_reset=v_reset, detach_reset=True)
    theirs = sj_neuron.TernaryLIFNode(step_mode="m", v_reset=v_reset, detach_reset=True)
    a, b = ours(x), theirs(x)
    assert torch.equal(a, b)
    assert (a == 1).any() and (a == -1).any() and (a == 0).any()
