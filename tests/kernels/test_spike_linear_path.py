"""On the training kernels' path, a LinearBN whose input is a neuron's spikes keeps them as bits
(layers/spike_linear.py, run.memory=packed): same outputs, gradients and BN statistics as with the input kept whole."""
import copy

import torch

from spikeformers.layers import time as time_layers
from spikeformers.layers.time import LinearBN
from spikeformers.neurons import LIFNode
from spikeformers.neurons.base import spikes_as_bits

from marks import in_interpreter  # noqa: E402  (tests/kernels/marks.py)


@in_interpreter
def test_spikes_into_linear_bn_are_kept_as_bits_with_the_same_result(monkeypatch):
    torch.manual_seed(0)
    layer = LinearBN(16, 24)
    layer.bn.backend = "triton"
    twin = copy.deepcopy(layer)
    calls = []
    real = time_layers.spike_linear
    monkeypatch.setattr(time_layers, "spike_linear", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(3, 2, 5, 16)
    results = []
    for lin, mark in ((layer, True), (twin, False)):
        src = x.clone().requires_grad_()
        with spikes_as_bits():  # run.memory=packed: the neuron tags its spikes as binary
            s = LIFNode(backend="triton")(src * 2)
        if not mark:
            s = s * 1.0  # the same values, untagged: the layer keeps them whole
        y = lin(s)
        y.backward(torch.ones_like(y))
        results.append((y, src.grad, lin.linear.weight.grad, lin.bn.running_var))
    assert calls == [1]
    for a, b in zip(*results):
        assert torch.equal(a, b)
