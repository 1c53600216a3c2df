"""What each module costs: forward-hook handlers of the op counter, one per module type.

Each handler receives (collector, name, module, inputs, output) after the module ran and records one
or more `LayerCount`s: the dense MAC-equivalent ops of what ran and the tensors that fed it. Products
inside attention modules are recomputed here from the module's inputs (never inside `forward`) so the
intermediate operand (K^T V, Q K^T) is measured too.

    conv      k^2 H_out W_out C_in/groups C_out per image and step      (input "x")
    linear    in x out per token and step                               (input "x")
    matmul    M K N per [M, K] @ [K, N] product, in the order that ran  (both operands)
    hadamard  one op per output element (a mask when an operand is spikes)
    sum       L - 1 additions per line of L summed elements (AxisSum)
    softmax   3 per score (scale, exp, normalisation; SDT's table counts scale T^2 + softmax 2 T^2)
    shiftmax  3 per score, adds and shifts only (max, sum, power-of-two division)
    scale     1 multiply per element (a real score scale that cannot fold into a threshold); 4 per
              element for a LayerNorm/RMSNorm (per-token statistics: unlike BatchNorm it cannot fold
              into the weights at inference)
    leak      a leaky state that emits nothing (the causal attention's decaying K^T V): state updates
    neuron    elements x steps state updates; the spikes it emits
A spiking product's scale (SSA's 0.125) is not counted: it folds into the next neuron's threshold.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..attention.base import AttentionProduct, CausalLinearProduct, AxisSum, Hadamard, SoftmaxProduct
from ..attention.adaptive import NonzeroSoftmaxProduct
from ..attention.shiftmax import Shiftmax, ShiftmaxProduct, shiftmax
from ..layers.token_shift import TokenShift
from ..neurons.base import Neuron
from ..neurons.lif import IFNode
from .counter import _Collector, register_counter

__all__ = ["neuron_leaks"]


@register_counter(nn.Linear)
def _linear(c: _Collector, name: str, m: nn.Linear, inputs, out) -> None:
    x = inputs[0]
    rows = x.numel() // m.in_features
    c.add(name, "linear", rows * m.in_features * m.out_features, {"x": x},
          dict(rows=rows, in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None,
               weight_numel=m.weight.numel(), first_input=c.is_first_input(x), lead=tuple(x.shape[:2])))


@register_counter(nn.LayerNorm, nn.RMSNorm)
def _token_norm(c: _Collector, name: str, m: nn.Module, inputs, out: Tensor) -> None:
    x = inputs[0]
    c.add(name, "scale", 4 * x.numel(), {"x": x}, dict(scores=4 * x.numel(), lead=tuple(x.shape[:2])))


@register_counter(TokenShift)
def _token_shift(c: _Collector, name: str, m: TokenShift, inputs, out: Tensor) -> None:
    x = inputs[0]  # x + mu (x_prev - x): a subtraction, a multiply and an addition per element
    c.add(name, "scale", 2 * x.numel(), {"x": x}, dict(scores=2 * x.numel(), lead=tuple(x.shape[:2])))


@register_counter(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv(c: _Collector, name: str, m: nn.Module, inputs, out: Tensor) -> None:
    x = inputs[0]
    nd = len(m.kernel_size)
    images = x.shape[0] if x.dim() == nd + 2 else 1
    c.add(name, "conv", out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size), {"x": x},
          dict(images=images, c_in=m.in_channels, c_out=m.out_channels, kernel=tuple(m.kernel_size),
               stride=tuple(m.stride), in_shape=tuple(x.shape[-nd:]), out_shape=tuple(out.shape[-nd:]),
               groups=m.groups, bias=m.bias is not None, weight_numel=m.weight.numel(),
               first_input=c.is_first_input(x), lead=tuple(x.shape[:2])))


def matmul(c: _Collector, name: str, a_label: str, a: Tensor, b_label: str, b: Tensor, out_shape) -> None:
    """Count a @ b ([..., M, K] @ [..., K, N], broadcasting over the leading dims)."""
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    batches = math.prod(out_shape[:-2])
    c.add(name, "matmul", batches * M * K * N, {a_label: a, b_label: b},
          dict(rows=batches * M, m=M, k=K, n=N, out_numel=batches * M * N, lead=tuple(out_shape[:2])))


def elementwise(c: _Collector, name: str, kind: str, per_element: int, label: str, x: Tensor, n: int = None) -> None:
    n = x.numel() if n is None else n
    c.add(name, kind, per_element * n, {label: x}, dict(scores=n))


@register_counter(AttentionProduct)
def _attention_product(c: _Collector, name: str, m: AttentionProduct, inputs, out: Tensor) -> None:
    q, k, v = inputs[:3]
    kt = k.transpose(-2, -1)
    if m.order_for(q.shape) == "q_kv":
        kv = kt @ v  # [.., d, d_v]
        matmul(c, f"{name}.kv", "k", kt, "v", v, kv.shape)
        matmul(c, f"{name}.q_kv", "q", q, "kv", kv, out.shape)
    else:
        qk = q @ kt  # [.., N, N]
        matmul(c, f"{name}.qk", "q", q, "k", kt, qk.shape)
        matmul(c, f"{name}.qk_v", "qk", qk, "v", v, out.shape)


@register_counter(CausalLinearProduct)
def _causal_linear_product(c: _Collector, name: str, m: CausalLinearProduct, inputs, out: Tensor) -> None:
    """The recurrent (inference) form, per token: S_n = gamma S_{n-1} + k_n^T v_n (N outer products
    accumulated into the state; when the heads forget, the state's N d d_v decays are a leak, charged
    by the memory-aware model as a LIF membrane's), then y_n = q_n S_n
    (N vector-state products), then the per-head norm (4 operations per output element). The state
    operand is measured on the final state S_N (its values' domain), counted N times."""
    q, k, v = inputs[:3]
    lead, (N, d), dv = q.shape[:-2], q.shape[-2:], v.shape[-1]
    ops = math.prod(out.shape[:-2]) * N * d * dv
    lg = m.log_gamma()
    w = torch.ones(N, device=k.device, dtype=k.dtype) if lg is None else \
        torch.exp(lg.to(k.dtype)[:, None] * torch.arange(N - 1, -1, -1, device=k.device, dtype=k.dtype))  # [H, N]
    final = (k * w[..., None]).transpose(-2, -1) @ v  # S_N [.., d, d_v]
    c.add(f"{name}.kv", "matmul", ops, {"k": k, "v": v}, dict(out_numel=math.prod(lead) * d * dv))  # the state
    if lg is not None:  # the state decays every token: a leak, like a membrane's
        c.add(f"{name}.decay", "leak", 0.0, {}, dict(elements=ops))
    c.add(f"{name}.q_kv", "matmul", ops, {"q": q, "kv": c.stats(final).scaled(N)}, dict(out_numel=out.numel()))
    if m.normalize:
        elementwise(c, f"{name}.norm", "scale", 4, "y", out)


def _softmax_like(c: _Collector, name: str, q: Tensor, k: Tensor, v: Tensor, p: Tensor, s: Tensor, scores: int) -> None:
    d = q.shape[-1]
    rows, Nq, Nk = math.prod(q.shape[:-1]), q.shape[-2], k.shape[-2]
    c.add(f"{name}.qk", "matmul", scores * d, {"q": q, "k": k.transpose(-2, -1)},
          dict(rows=rows, m=Nq, k=d, n=Nk, out_numel=scores))
    elementwise(c, f"{name}.softmax", "softmax", 3, "scores", s, scores)
    c.add(f"{name}.av", "matmul", scores * v.shape[-1], {"attn": p, "v": v},
          dict(rows=rows, m=Nq, k=Nk, n=v.shape[-1], out_numel=math.prod(p.shape[:-1]) * v.shape[-1]))


@register_counter(SoftmaxProduct)
def _softmax_product(c: _Collector, name: str, m: SoftmaxProduct, inputs, out: Tensor) -> None:
    q, k, v = inputs[:3]
    Nq, Nk = q.shape[-2], k.shape[-2]
    causal = bool(getattr(m, "causal", False))
    # causal: query i sees keys 0..i, N(N+1)/2 scores per head instead of N^2
    scores = math.prod(q.shape[:-2]) * (Nq * (Nq + 1) // 2 if causal else Nq * Nk)
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        s = s.masked_fill(torch.ones(Nq, Nk, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
    p = torch.softmax(s, dim=-1)
    _softmax_like(c, name, q, k, v, p, s.masked_fill(torch.isinf(s), 0.0) if causal else s, scores)


@register_counter(NonzeroSoftmaxProduct)
def _nonzero_softmax_product(c: _Collector, name: str, m: NonzeroSoftmaxProduct, inputs, out: Tensor) -> None:
    q, k, v = inputs[:3]
    s = (q @ k.transpose(-2, -1)) * m.scale
    keep = s != 0
    top = s.masked_fill(~keep, float("-inf")).amax(-1, keepdim=True)
    e = torch.exp(s - torch.where(torch.isfinite(top), top, torch.zeros_like(top))) * keep
    p = e / e.sum(-1, keepdim=True).clamp_min(1.0)  # as the module: softmax over the non-zero scores
    _softmax_like(c, name, q, k, v, p, s, s.numel())


@register_counter(ShiftmaxProduct, covers_children=True)
def _shiftmax_product(c: _Collector, name: str, m: ShiftmaxProduct, inputs, out: Tensor) -> None:
    q, k, v = inputs[:3]
    kt = k.transpose(-2, -1)
    s = q @ kt  # [.., N, N] (integer for ternary Q, K)
    matmul(c, f"{name}.qk", "q", q, "k", kt, s.shape)
    if m.scale != 1.0:
        elementwise(c, f"{name}.scale", "scale", 1, "scores", s)
        s = s * m.scale
    elementwise(c, f"{name}.shiftmax", "shiftmax", 3, "scores", s)
    matmul(c, f"{name}.qk_v", "attn", shiftmax(s), "v", v, out.shape)  # powers of two x spikes: shifts


@register_counter(Shiftmax)
def _shiftmax(c: _Collector, name: str, m: Shiftmax, inputs, out: Tensor) -> None:
    elementwise(c, name, "shiftmax", 3, "scores", inputs[0])


@register_counter(Hadamard)
def _hadamard(c: _Collector, name: str, m: Hadamard, inputs, out: Tensor) -> None:
    a, b = inputs[:2]
    c.add(name, "hadamard", out.numel(), {"a": a, "b": b}, dict(out_numel=out.numel()))


@register_counter(AxisSum)
def _axis_sum(c: _Collector, name: str, m: AxisSum, inputs, out: Tensor) -> None:
    x = inputs[0]
    L = x.shape[m.dim]
    lines = x.numel() // L if L else 0
    c.add(name, "sum", lines * max(L - 1, 0), {"x": x}, dict(out_numel=out.numel()))


def neuron_leaks(m: nn.Module) -> bool:
    """Does the membrane decay each step (a multiply)? IF and a zero decay do not; LIF, PLIF, ASN,
    bipolar and ternary neurons do. Wrappers (homeostatic control) ask the neuron they wrap."""
    inner = getattr(m, "neuron", None)
    if isinstance(inner, Neuron):
        return neuron_leaks(inner)
    if isinstance(m, IFNode):
        return False
    decay = getattr(m, "decay", None)
    if isinstance(decay, (int, float)) and not isinstance(decay, bool):
        return decay != 0
    return True


@register_counter(Neuron, covers_children=True)
def _neuron(c: _Collector, name: str, m: Neuron, inputs, out: Tensor) -> None:
    x = inputs[0]
    if c.first_neuron_shape is None:
        c.first_neuron_shape = tuple(x.shape)
    if m.domain == "real":  # a ReLU/identity activation: no state, nothing to count
        return
    c.add(name, "neuron", 0.0, {}, dict(elements=x.numel(), leaky=neuron_leaks(m)), output=out)
    c.entries[name].steps = x.shape[0]  # neurons run over their own time axis
