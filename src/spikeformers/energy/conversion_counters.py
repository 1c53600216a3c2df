"""Counters of a converted network's accumulate-and-correct products (`models/conversion/products.py`): each term
of the increment is counted with its own operands, so a term driven by a spike train is event-driven and
the product of two running sums (the triple product's Q[t-1] dKV[t] or dS[t] V[t]) is charged as dense
multiply-accumulates, as an event-driven implementation would compute them.

    a (.) b        a[t] B[t]  (events: a)       A[t-1] b[t]  (events: b)
    Q K^T V, q_kv  k^T V, K^T v  (events: k, v)  q KV (events: q)     Q dKV (dense)
    Q K^T V, qk_v  q K^T, Q k^T  (events: q, k)  S v  (events: v)     dS V  (dense)

Converted Linear and conv layers hold an `nn.Linear` / `nn.Conv2d` that runs only on the steps with input,
counted by the library's own handlers; ST-BIF neurons are counted as every neuron (no leak).
"""
from __future__ import annotations

from ..models.conversion.products import AccumulatedHadamard, AccumulatedProduct, running_sums
from .counter import _Collector, register_counter
from .handlers import matmul

__all__ = []


@register_counter(AccumulatedHadamard)
def _accumulated_hadamard(c: _Collector, name: str, m: AccumulatedHadamard, inputs, out) -> None:
    a, b = inputs[:2]
    _, a_prev, B, _ = running_sums(a, b)
    n = out.numel()
    c.add(f"{name}.a_B", "hadamard", n, {"a": a, "B": B}, dict(out_numel=n))
    c.add(f"{name}.A_b", "hadamard", n, {"A": a_prev, "b": b}, dict(out_numel=n))


@register_counter(AccumulatedProduct)
def _accumulated_product(c: _Collector, name: str, m: AccumulatedProduct, inputs, out) -> None:
    q, k, v = inputs[:3]
    Q, Q_prev, K, K_prev, V, _ = running_sums(q, k, v)
    kt, Kt, Kt_prev = k.transpose(-2, -1), K.transpose(-2, -1), K_prev.transpose(-2, -1)
    if m.order_for(q.shape) == "q_kv":
        kv = Kt @ V
        d_kv = kt @ V + Kt_prev @ v
        matmul(c, f"{name}.kv_k", "k", kt, "V", V, kv.shape)
        matmul(c, f"{name}.kv_v", "K", Kt_prev, "v", v, kv.shape)
        matmul(c, f"{name}.q_kv", "q", q, "KV", kv, out.shape)
        matmul(c, f"{name}.Q_dkv", "Q", Q_prev, "dKV", d_kv, out.shape)
    else:
        d_s = q @ Kt + Q_prev @ kt
        s_prev = Q @ Kt - d_s
        matmul(c, f"{name}.qk_q", "q", q, "K", Kt, d_s.shape)
        matmul(c, f"{name}.qk_k", "Q", Q_prev, "k", kt, d_s.shape)
        matmul(c, f"{name}.S_v", "S", s_prev, "v", v, out.shape)
        matmul(c, f"{name}.dS_V", "dS", d_s, "V", V, out.shape)
