"""A two-layer network with a known spike pattern: every count and pJ total computed by hand.

    x (analog, repeated over T=2) -> fc1 (4->3, no bias) -> LIF -> fc2 (3->2, no bias)

fc1 puts 4.0, 0.0 and 1.5 into the three LIF neurons at both steps (tau 2, V_th 1, hard reset):
neuron a: H = 2.0, 2.0 -> spikes 1, 1; neuron b: never; neuron c: H = 0.75, then 0.75 + (1.5 - 0.75)/2
= 1.125 -> spikes 0, 1. So fc2 sees 3 spikes out of 6 inputs: rate 1/2.
"""
import math

import pytest
import torch
from torch import nn

from spikeformers.energy import (LemaireCosts, count_ops, dense_energy, horowitz45, lemaire, qann_bits,
                                 qann_energy)
from spikeformers.neurons import LIFNode, ReLUNode


class TwoLayer(nn.Module):
    def __init__(self, neuron=LIFNode, residual=False):
        super().__init__()
        self.fc1 = nn.Linear(4, 3, bias=False)
        self.sn = neuron()
        self.fc2 = nn.Linear(3, 2, bias=False)
        self.residual = residual
        with torch.no_grad():
            self.fc1.weight.zero_()
            self.fc1.weight[0, 0], self.fc1.weight[2, 0] = 8.0, 3.0  # x[0] = 0.5 -> 4.0 and 1.5
            self.fc2.weight.fill_(1.0)

    def forward(self, x):  # x [T, B, 4]
        T = x.shape[0]
        s = self.sn(self.fc1(x.flatten(0, 1)).unflatten(0, (T, -1)))  # [T, B, 3]
        if self.residual:  # an integer input {1, 2}: spikes plus neuron a's spikes
            s = s + s[..., :1]
        return self.fc2(s.flatten(0, 1))


X = torch.tensor([0.5, 0.25, 0.0, 0.0]).expand(2, 1, 4)  # analog, identical at both steps


def test_counts_by_hand():
    c = count_ops(TwoLayer(), X)
    assert (c.T, c.batch_size, c.first_input_repeated) == (2, 1, True)
    fc1, sn, fc2 = c.layers
    assert c.raw[0].ops == 24  # 2 steps x 4 x 3, as it ran
    assert (fc1.kind, fc1.ops, fc1.domain, fc1.analog_first) == ("linear", 12, "real", True)
    assert (fc1.mac, fc1.ac) == (12, 0)  # measured: the input repeats over T -> counted once (24 / T)
    assert sn.kind == "neuron" and sn.geometry["elements"] == 6 and sn.output.nnz == 3 and sn.geometry["leaky"]
    assert (fc2.ops, fc2.domain, fc2.rate, fc2.ac, fc2.mac) == (12, "binary", 0.5, 6, 0)
    assert (c.total_mac, c.total_ac, c.neuron_updates) == (12, 6, 6)


@pytest.mark.parametrize("preset,e_mac,e_ac", [("fp32", 4.6, 0.9), ("fp16", 1.5, 0.4), ("int8", 0.23, 0.03),
                                               ("neuromorphic", 4.6, 0.077)])
def test_horowitz_presets_by_hand(preset, e_mac, e_ac):
    c = count_ops(TwoLayer(), X)
    e = horowitz45(c, preset)
    assert e.total == pytest.approx(12 * e_mac + 6 * e_ac, rel=1e-12)
    assert e.layers["fc1"] == {"mac": pytest.approx(12 * e_mac), "ac": 0}
    assert e.layers["fc2"] == {"mac": 0, "ac": pytest.approx(6 * e_ac)}
    assert horowitz45(c, "fp32").total == pytest.approx(60.6)  # 12 x 4.6 + 6 x 0.9


def test_flags_change_exactly_their_terms():
    c = count_ops(TwoLayer(), X)
    t = c.recount(first_layer_times_T=True)
    assert (t.layers[0].mac, t.layers[2].ac) == (24, 6)  # only the analog first layer changes
    assert horowitz45(t).total - horowitz45(c).total == pytest.approx(12 * 4.6)
    assert c.recount(first_layer_times_T=False).layers[0].mac == 12
    # an input that changes over T is charged at every step unless the flag says otherwise
    x2 = torch.stack([X[0], 2 * X[1]])
    c2 = count_ops(TwoLayer(), x2)
    assert c2.first_input_repeated is False and c2.layers[0].mac == 24
    assert c2.recount(first_layer_times_T=False).layers[0].mac == 12

    r = count_ops(TwoLayer(residual=True), X)  # fc2 input: t1 [2, 1, 1], t2 [2, 1, 2]: integer, sum 9
    assert r.layers[2].domain == "integer"
    assert (r.layers[2].mac, r.layers[2].ac) == (12, 0)  # strict binary: integers are MACs
    m2 = r.recount(multi_spike_max=2)
    assert (m2.layers[2].mac, m2.layers[2].ac) == (0, 12 * 9 / 6)  # a value n costs n ACs: 18
    assert m2.layers[0].mac == r.layers[0].mac  # nothing else changes
    assert horowitz45(m2).total - horowitz45(r).total == pytest.approx(18 * 0.9 - 12 * 4.6)
    assert r.recount(multi_spike_max=1).layers[2].mac == 12  # values up to 2 exceed k = 1


# Lemaire et al. by hand: int8 mul 0.2 pJ, adds linear between 0.03 (8 bit) and 0.1 (32 bit),
# multipliers linear in a*b between 0.2 (8x8) and 3.1 (32x32), through 0 below 8x8.
# SRAM per access: 1.09e-5 * words * bits + 13.2 pJ. Weights 8 bit, potentials 16 bit, image 8 bit.
def ram(words, bits):
    return 1.09e-5 * words * bits + 13.2


ADD16 = 0.03 + (16 - 8) * 0.07 / 24
MUL8x8, MUL16x16, MUL2x8 = 0.2, 0.2 + 2.9 * (256 - 64) / 960, 0.2 * 16 / 64
FIFO = 1000


def test_lemaire_by_hand():
    e = lemaire(count_ops(TwoLayer(), X), LemaireCosts())
    fc1 = {  # analog first layer, counted once: 1 row of 4 inputs, 12 MACs (Eq 2.1, 4, 6.2f, 12)
        "ops": 12 * (MUL8x8 + ADD16), "addr": 12 * ADD16, "mem_in": 4 * ram(4, 8),
        "mem_weights": 12 * ram(12, 8), "mem_bias": 0, "mem_pot": 0, "mem_out": 3 * ram(3, 16)}
    sn = {  # 6 updates (2 steps x 3 neurons), 3 spikes: leak MAC (1.3), update + reset ACC (1.4), Eq 9/14, 13
        "ops": 6 * (MUL16x16 + ADD16) + (6 + 3) * ADD16, "addr": 0, "mem_in": 0, "mem_weights": 0,
        "mem_bias": 0, "mem_pot": 2 * 6 * ram(3, 16), "mem_out": 3 * ram(FIFO, 1)}
    fc2 = {  # 3 input spikes x 2 outputs (Eq 2.4, 17.2, 5, 8f, 10/15)
        "ops": 6 * ADD16, "addr": 6 * ADD16, "mem_in": 3 * ram(FIFO, 1), "mem_weights": 6 * ram(6, 8),
        "mem_bias": 0, "mem_pot": 2 * 6 * ram(2, 16), "mem_out": 0}
    for name, want in (("fc1", fc1), ("sn", sn), ("fc2", fc2)):
        assert e.layers[name] == pytest.approx(want, rel=1e-12), name
    assert e.total == pytest.approx(sum(sum(d.values()) for d in (fc1, sn, fc2)), rel=1e-12)
    assert e.total == pytest.approx(735.89, abs=0.01)
    # charging the first layer at both steps doubles exactly its terms (its memories hold one step either way)
    e2 = lemaire(count_ops(TwoLayer(), X, first_layer_times_T=True), LemaireCosts())
    assert e2.layers["fc1"] == pytest.approx({k: 2 * v for k, v in fc1.items()}, rel=1e-12)
    assert e2.layers["sn"] == e.layers["sn"] and e2.layers["fc2"] == e.layers["fc2"]


def test_qann_and_dense_twin_by_hand():
    twin = TwoLayer(neuron=ReLUNode)  # same weights, ReLU, T = 1
    tc = count_ops(twin, X[:1])
    assert (tc.T, tc.total_ops, tc.total_mac, tc.total_ac) == (1, 18, 18, 0)
    assert dense_energy(tc, "fp32").total == pytest.approx(18 * 4.6)
    assert qann_bits(2) == 2 and qann_bits(4) == 3 and qann_bits(1) == 1
    q = qann_energy(tc, T=2, weight_bits=8)  # 2-bit activations, 8-bit weights, the same memory model
    fc1 = 12 * (MUL8x8 + ADD16) + 12 * ADD16 + 4 * ram(4, 8) + 12 * ram(12, 8) + 3 * ram(3, 2)
    fc2 = 6 * (MUL2x8 + ADD16) + 6 * ADD16 + 3 * ram(3, 2) + 6 * ram(6, 8) + 2 * ram(2, 2)
    assert q.layers["fc1"]["mem_out"] == pytest.approx(3 * ram(3, 2))
    assert q.total == pytest.approx(fc1 + fc2, rel=1e-12)
    q4 = qann_energy(tc, T=2, weight_bits=4)  # weight bits change the multipliers and weight reads only
    d = q.total - q4.total
    want = (12 * (MUL8x8 - 0.2 * 32 / 64) + 12 * (ram(12, 8) - ram(12, 4))
            + 6 * (MUL2x8 - 0.2 * 8 / 64) + 6 * (ram(6, 8) - ram(6, 4)))
    assert d == pytest.approx(want, rel=1e-9)


def test_bank_memory_and_bitwidth_interpolation():
    c = LemaireCosts(memory="bank")
    assert c.e_ram(10 ** 9, 8) == pytest.approx(10 * 8 / 64)  # 10 pJ per 64-bit word, any size
    d = LemaireCosts()
    assert d.e_add(8) == pytest.approx(0.03) and d.e_add(32) == pytest.approx(0.1) and d.e_add(4) == pytest.approx(0.015)
    assert d.e_mul(8, 8) == pytest.approx(0.2) and d.e_mul(32, 32) == pytest.approx(3.1)
    assert d.e_mul(1, 8) == pytest.approx(0.2 / 8)
    with pytest.raises(ValueError, match="memory"):
        LemaireCosts(memory="dram")
    assert math.isclose(ram(1000, 1), 13.2109)
