"""Memory-aware analytical energy model of Lemaire et al. (ICONIP 2022, arXiv 2210.13107).

E(layer) = E_ops + E_addr + E_mem, with memory split into inputs/spikes, weights, biases, membrane
potentials and outputs. Equation numbers below are the paper's (as implemented in the authors'
group code, LEAT-EDGE/qualia-plugin-snn `EnergyEstimationMetric`).

Operation energies (Horowitz, 45 nm): int32 add 0.1 pJ, mul 3.1 pJ; int8 add 0.03, mul 0.2. Other
widths interpolate: adders linearly in the width (through 0 below 8 bits), multipliers linearly in
the product of the operand widths a*b (quadratic in width, through 0 below 8x8). MAC = mul + add,
ACC = add. SRAM access (the ICONIP fit of Horowitz's 8 KiB, 32 KiB and 1 MiB SRAMs):
    E_RAM(n, bits) = 1.09e-5 * n * bits + 13.2 pJ per access to a memory of n words of `bits` bits
or ("bank", T. Louis) 10 pJ per 64-bit access to 8 KiB banks: 10 * bits / 64 pJ per word.

Per image, with theta_in the input events (spikes, or unit events of multi-spikes) and theta_out
the spikes a neuron emits; "per step" memories hold one time step of one image:

  Event-driven conv:   ACC  theta_in*ceil(Hk/S)*ceil(Wk/S)*C_out                         (1.4, synapses)
                       addr MAC 2*theta_in (16.2), ACC theta_in*Hk*Wk (16.3)
                       reads: inputs theta_in from the FIFO (5), weights theta_in*C_out*Hk*Wk (7f),
                       biases T*C_out*H_out*W_out (7s); potentials read and written
                       theta_in*C_out*Hk*Wk each (9, 14: synaptic part)
  Event-driven FC:     ACC theta_in*N_out (2.4, the code's correction of the article's N_in*N_out)
                       addr ACC theta_in*N_out (17.2); reads inputs theta_in (5), weights theta_in*N_out
                       (8f), biases T*N_out (7s); potentials read and written theta_in*N_out (10, 15)
  Dense ("formal") conv: MAC C_out*H_out*W_out*C_in*Hk*Wk (1.1), bias ACC C_out*H_out*W_out (1.2);
                       reads inputs = weights = #MAC (3, 6.1f), biases C_out*H_out*W_out (6.1s);
                       writes C_out*H_out*W_out (11); addressing ACC C_in*H_in*W_in + C_out*H_out*W_out
                       + C_out*Hk*Wk (the group's code)
  Dense FC:            MAC N_in*N_out (2.1), bias ACC N_out (2.2); reads inputs N_in (4), weights
                       N_in*N_out (6.2f), biases N_out (6.2s); writes N_out (12); addressing ACC
                       N_in*N_out (the group's code)            -- all per token and per time step
  Spiking neuron:      leak MAC T*N (1.3, LIF only); ACC T*N (1.4, per-step update) + theta_out
                       (1.4, reset); potentials read and written T*N each (9, 14: per-step part);
                       spikes written theta_out to the FIFO (13)
Activation x activation products (attention matmuls, masks) follow the FC equations with the second
operand in the role of the weights (read from activation memory). Sums (AxisSum) add each input (each
event, for spikes) into an accumulator. Softmax, Shiftmax and score scalings cost their operations
(MACs; adds for Shiftmax) plus one read and one write of each score. Non-spiking activations (ReLU)
are free: their layer's output write covers them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Dict, Optional

from .counter import LayerCount, OpCounts
from .horowitz import Energy
from .stats import TensorStats

__all__ = ["LemaireCosts", "lemaire", "qann_bits"]


def _interp(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    if x <= x0:
        return y0 * x / x0  # through 0
    if x >= x1:
        return y1 * x / x1  # proportional beyond the last point
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


@dataclass(frozen=True)
class LemaireCosts:
    """Bit widths and energy constants of the memory-aware model.

    Args:
        weight_bits: weights (b; 8 by default, as the QANN baseline).
        state_bits: membrane potentials, biases, accumulators and their adds.
        real_bits: real-valued activations (the image, non-spiking paths such as A2OS2A's ReLU K).
        act_bits: activations of a formal (ANN) network between layers; None: real_bits.
        fifo_size: words in the spike FIFO of each layer (1000, Lemaire's experiments).
        memory: "iconip" (linear SRAM fit, the paper) or "bank" (10 pJ per 64-bit access).
    """

    weight_bits: int = 8
    state_bits: int = 16
    real_bits: int = 8
    act_bits: Optional[int] = None
    fifo_size: int = 1000
    memory: str = "iconip"
    e_add8: float = 0.03
    e_add32: float = 0.1
    e_mul8: float = 0.2
    e_mul32: float = 3.1

    def __post_init__(self):
        for k in ("weight_bits", "state_bits", "real_bits", "fifo_size"):
            if not isinstance(getattr(self, k), int) or getattr(self, k) < 1:
                raise ValueError(f"LemaireCosts: {k} must be a positive integer, got {getattr(self, k)!r}")
        if self.act_bits is not None and (not isinstance(self.act_bits, int) or self.act_bits < 1):
            raise ValueError(f"LemaireCosts: act_bits must be a positive integer or None, got {self.act_bits!r}")
        if self.memory not in ("iconip", "bank"):
            raise ValueError(f"LemaireCosts: memory must be 'iconip' or 'bank', got {self.memory!r}")

    def e_add(self, bits: float) -> float:
        return _interp(bits, 8, self.e_add8, 32, self.e_add32)

    def e_mul(self, a_bits: float, b_bits: float) -> float:
        return _interp(a_bits * b_bits, 64, self.e_mul8, 1024, self.e_mul32)

    def e_mac(self, a_bits: float, b_bits: float) -> float:
        return self.e_mul(a_bits, b_bits) + self.e_add(self.state_bits)

    def e_ram(self, words: float, bits: float) -> float:
        """pJ per access of one `bits`-bit word in a memory of `words` words."""
        if self.memory == "bank":
            return 10.0 * bits / 64.0
        return 1.09e-5 * words * bits + 13.2


def qann_bits(T: int) -> int:
    """Activation bits of the quantized ANN that carries as much information as T binary steps."""
    return max(1, math.ceil(math.log2(T + 1)))


class _Ctx:
    def __init__(self, costs: LemaireCosts, formal: bool, first: Optional[str]):
        self.c, self.formal, self.first = costs, formal, first

    def bits(self, layer: LayerCount, label: str) -> float:
        """Width of an operand read densely: measured for spikes and integers, configured otherwise."""
        if layer.name == self.first:
            return self.c.real_bits  # the input image
        if self.formal:
            return self.c.act_bits or self.c.real_bits
        bits = layer.operands[label].bits
        return bits if bits is not None else self.c.real_bits


def _events(s: TensorStats) -> float:
    return s.numel * s.events_per_element


def _per_step(total: float, layer: LayerCount) -> float:
    return total / layer.steps if layer.steps else total


def _linear(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    c, g = ctx.c, l.geometry
    n_in, n_out, rows = g["in_features"], g["out_features"], g["rows"]
    w_mem, b_mem = c.e_ram(g["weight_numel"], c.weight_bits), c.e_ram(n_out, c.state_bits)
    out_words = _per_step(rows, l) * n_out
    bias_reads = rows * n_out if g["bias"] else 0.0  # 6.2s / 7s: once per output, token and step
    if l.event is not None:
        s = l.operands[l.event]
        theta = _events(s)
        syn = theta * n_out  # 2.4 (synaptic term)
        return {
            "ops": syn * c.e_add(c.state_bits),
            "addr": theta * n_out * c.e_add(c.state_bits),  # 17.2
            "mem_in": theta * c.e_ram(c.fifo_size, s.bits),  # 5
            "mem_weights": theta * n_out * w_mem,  # 8f
            "mem_bias": bias_reads * b_mem,
            "mem_pot": 2 * syn * c.e_ram(out_words, c.state_bits),  # 10 + 15 (synaptic part)
            "mem_out": 0.0,
        }
    in_bits = ctx.bits(l, "x")
    out_bits = (c.act_bits or c.real_bits) if ctx.formal else c.state_bits
    return {
        "ops": l.ops * c.e_mac(in_bits, c.weight_bits) + bias_reads * c.e_add(c.state_bits),  # 2.1, 2.2
        "addr": l.ops * c.e_add(c.state_bits),
        "mem_in": rows * n_in * c.e_ram(_per_step(rows, l) * n_in, in_bits),  # 4
        "mem_weights": l.ops * w_mem,  # 6.2f
        "mem_bias": bias_reads * b_mem,  # 6.2s
        "mem_pot": 0.0,
        "mem_out": rows * n_out * c.e_ram(out_words, out_bits),  # 12
    }


def _conv(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    c, g = ctx.c, l.geometry
    k = math.prod(g["kernel"])
    in_sz, out_sz = math.prod(g["in_shape"]), math.prod(g["out_shape"])
    c_in, c_out, images = g["c_in"], g["c_out"], g["images"]
    out_el = images * c_out * out_sz
    w_mem, b_mem = c.e_ram(g["weight_numel"], c.weight_bits), c.e_ram(c_out, c.state_bits)
    bias_reads = out_el if g["bias"] else 0.0  # 6.1s / 7s
    if l.event is not None:
        s = l.operands[l.event]
        theta = _events(s)
        k_s = math.prod(math.ceil(kk / ss) for kk, ss in zip(g["kernel"], g["stride"]))
        syn = theta * k_s * c_out  # 1.4 (synaptic term)
        touched = theta * c_out * k  # 7f, 9, 14
        return {
            "ops": syn * c.e_add(c.state_bits),
            "addr": 2 * theta * c.e_mac(c.state_bits, c.state_bits) + theta * k * c.e_add(c.state_bits),  # 16.2, 16.3
            "mem_in": theta * c.e_ram(c.fifo_size, s.bits),  # 5
            "mem_weights": touched * w_mem,  # 7f
            "mem_bias": bias_reads * b_mem,  # 7s
            "mem_pot": 2 * touched * c.e_ram(c_out * out_sz, c.state_bits),  # 9 + 14 (synaptic part)
            "mem_out": 0.0,
        }
    in_bits = ctx.bits(l, "x")
    out_bits = (c.act_bits or c.real_bits) if ctx.formal else c.state_bits
    return {
        "ops": l.ops * c.e_mac(in_bits, c.weight_bits) + bias_reads * c.e_add(c.state_bits),  # 1.1, 1.2
        "addr": images * (c_in * in_sz + c_out * out_sz + c_out * k) * c.e_add(c.state_bits),
        "mem_in": l.ops * c.e_ram(c_in * in_sz, in_bits),  # 3
        "mem_weights": l.ops * w_mem,  # 6.1f
        "mem_bias": bias_reads * b_mem,  # 6.1s
        "mem_pot": 0.0,
        "mem_out": out_el * c.e_ram(c_out * out_sz, out_bits),  # 11
    }


def _product(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    """Activation x activation (matmul, Hadamard): the FC equations, the other operand as 'weights'."""
    c = ctx.c
    labels = list(l.operands)
    out_numel = l.geometry.get("out_numel", l.ops)
    out_words = _per_step(out_numel, l)
    if l.event is not None:
        s = l.operands[l.event]
        other = next(k for k in labels if k != l.event)
        o = l.operands[other]
        theta = _events(s)
        fan = l.ops / s.numel if s.numel else 0.0  # outputs each event touches (N_out of an FC)
        return {
            "ops": theta * fan * c.e_add(c.state_bits),  # 2.4
            "addr": theta * fan * c.e_add(c.state_bits),  # 17.2
            "mem_in": theta * c.e_ram(c.fifo_size, s.bits),  # 5
            "mem_weights": theta * fan * c.e_ram(_per_step(o.numel, l), ctx.bits(l, other)),  # 8f
            "mem_bias": 0.0,
            "mem_pot": 2 * theta * fan * c.e_ram(out_words, c.state_bits),  # 10 + 15: accumulators
            "mem_out": 0.0,
        }
    a, b = labels
    ba, bb = ctx.bits(l, a), ctx.bits(l, b)
    sa = l.operands[a]
    out_bits = (c.act_bits or c.real_bits) if ctx.formal else c.state_bits
    return {
        "ops": l.ops * c.e_mac(ba, bb),  # 2.1
        "addr": l.ops * c.e_add(c.state_bits),
        "mem_in": sa.numel * c.e_ram(_per_step(sa.numel, l), ba),  # 4
        "mem_weights": l.ops * c.e_ram(_per_step(l.operands[b].numel, l), bb),  # 6.2f
        "mem_bias": 0.0,
        "mem_pot": 0.0,
        "mem_out": out_numel * c.e_ram(out_words, out_bits),  # 12
    }


def _elementwise(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    """softmax / scale (MACs) and shiftmax (adds and shifts) over the scores, each read and written once."""
    c = ctx.c
    n = l.geometry["scores"]
    words = _per_step(n, l)
    e_op = c.e_add(c.state_bits) if l.kind == "shiftmax" else c.e_mac(c.state_bits, c.state_bits)
    return {"ops": l.ops * e_op, "addr": 0.0, "mem_in": n * c.e_ram(words, c.state_bits), "mem_weights": 0.0,
            "mem_bias": 0.0, "mem_pot": 0.0, "mem_out": n * c.e_ram(words, c.state_bits)}


def _sum(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    """Additions into accumulators: every input element (or event) read and added once."""
    c = ctx.c
    s = l.operands["x"]
    out_numel = l.geometry["out_numel"]
    acc = c.e_ram(_per_step(out_numel, l), c.state_bits)
    if l.event is not None:
        theta = _events(s)
        return {"ops": theta * c.e_add(c.state_bits), "addr": theta * c.e_add(c.state_bits),  # 2.4, 17.2 (fan-out 1)
                "mem_in": theta * c.e_ram(c.fifo_size, s.bits), "mem_weights": 0.0, "mem_bias": 0.0,
                "mem_pot": 2 * theta * acc, "mem_out": 0.0}  # 5; accumulator read + write (10, 15)
    bits = ctx.bits(l, "x")
    return {"ops": l.ops * c.e_add(c.state_bits), "addr": 0.0, "mem_in": s.numel * c.e_ram(_per_step(s.numel, l), bits),
            "mem_weights": 0.0, "mem_bias": 0.0, "mem_pot": 0.0, "mem_out": out_numel * acc}


def _neuron(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    c = ctx.c
    n = l.geometry["elements"]  # T * N per image
    theta_out = _events(l.output)
    pot = c.e_ram(_per_step(n, l), c.state_bits)
    leak = n * c.e_mac(c.state_bits, c.state_bits) if l.geometry["leaky"] else 0.0  # 1.3
    return {
        "ops": leak + (n + theta_out) * c.e_add(c.state_bits),  # 1.4: per-step update + reset
        "addr": 0.0, "mem_in": 0.0, "mem_weights": 0.0, "mem_bias": 0.0,
        "mem_pot": 2 * n * pot,  # 9 + 14 (per-step part)
        "mem_out": theta_out * c.e_ram(c.fifo_size, l.output.bits or 1),  # 13
    }


def _leak(ctx: _Ctx, l: LayerCount) -> Dict[str, float]:
    """A bank of leaky integrators that emits nothing (the causal attention's decaying state): the
    leak multiply and the read and write of each element, as a neuron's membrane (1.3, 9 + 14)."""
    c = ctx.c
    n = l.geometry["elements"]
    return {"ops": n * c.e_mac(c.state_bits, c.state_bits), "addr": 0.0, "mem_in": 0.0, "mem_weights": 0.0,
            "mem_bias": 0.0, "mem_pot": 2 * n * c.e_ram(_per_step(n, l), c.state_bits), "mem_out": 0.0}


_KINDS = {"leak": _leak, "linear": _linear, "conv": _conv, "matmul": _product, "hadamard": _product, "sum": _sum,
          "softmax": _elementwise, "shiftmax": _elementwise, "scale": _elementwise, "neuron": _neuron}


def lemaire(counts: OpCounts, costs: Optional[LemaireCosts] = None, *, formal: bool = False) -> Energy:
    """Energy per image (pJ, split into ops/addr/memory components) of counted layers.

    formal=True treats the network as a (quantized) ANN: every input dense, activations of
    `costs.act_bits` bits (the QANN baseline; see `energy.twin.qann_energy`).
    """
    costs = costs or LemaireCosts()
    first = next((l.name for l in counts.layers if l.analog_first), None)
    ctx = _Ctx(costs, formal, first)
    e = Energy("lemaire" if not formal else f"lemaire:formal a{costs.act_bits or costs.real_bits}w{costs.weight_bits}")
    for l in counts.layers:
        if formal and l.event is not None:
            l = replace(l, event=None, mac=l.ops, ac=0.0)
        e.layers[l.name] = _KINDS[l.kind](ctx, l)
    return e
