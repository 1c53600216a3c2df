"""Neuron benchmark: multi-step LIF forward + backward, ours vs SpikingJelly 2.0 vs PyTorch.

    spikeformers bench neuron [--T 4 8 16] [--sizes 6.3e6 38.5e6] [--dtypes fp32 bf16] [--out neuron.json]
    python benchmarks/neuron_kernel.py ...      (the same code)

Contenders, all the Spikformer LIF (tau 2, decay_input, hard reset to 0, sigmoid alpha 4, detach_reset):
  ours      `create_neuron("lif")` on CUDA: the fused Triton kernels (one launch each way)
  sj:<b>    SpikingJelly `LIFNode(step_mode="m")` with CUDA implementation <b> (auto/triton/torch; its
            native CUDA build is tried too); for bf16 also `sj-prec`, its Triton neuron-precision path
  torch     our reference: a plain PyTorch loop over T
  compile   `torch.compile` of that loop
Sizes count elements over T x N (the input is [T, size / T]). Each contender's forward+backward is
timed back to back (CUDA events, median of 5 rounds) and, where capturable, as CUDA-graph replays
(GPU time without launch gaps). Effective bandwidth = the bytes that must move / time, with
bytes = 4 x size x element size (read x and dL/dy, write y and dL/dx, each once), against the
measured device-to-device copy bandwidth. Ours moves 5 passes (x is read again in the backward,
which recomputes H) plus fp32 chunk checkpoints when T > 8: see benchmarks/NOTES.md.
"""
from __future__ import annotations

import argparse
import gc
from typing import Any, Callable, Dict, List, Optional

import torch

from ..neurons import create_neuron
from . import common
from .common import copy_bandwidth, graph_time_ms, provenance, require_cuda, sync, table, time_ms, write_record
from .sj import import_spikingjelly, neuron_backend, set_neuron_backend

__all__ = ["add_arguments", "run", "main"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16], help="time steps")
    p.add_argument("--sizes", type=float, nargs="+", default=[6.3e6, 38.5e6], help="elements over T x N")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES))
    p.add_argument("--contenders", nargs="+", default=["ours", "sj", "torch", "compile"],
                   choices=["ours", "sj", "torch", "compile"])
    p.add_argument("--sj-backends", nargs="+", default=["auto", "triton", "torch"],
                   help="SpikingJelly CUDA implementations to try (auto: its own choice; the record lists the "
                        "unavailable ones and why)")
    p.add_argument("--compile-T", type=int, nargs="*", default=None,
                   help="T values for the torch.compile contender (default: all; each shape compiles anew)")
    p.add_argument("--no-graphs", action="store_true", help="skip the CUDA-graph replay timings")
    p.add_argument("--min-ms", type=float, default=100.0, help="length of one timing round")
    p.add_argument("--out", default=None, help="JSON record path")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the code, measures nothing")


def _inputs(T: int, N: int, dtype: torch.dtype, sets: int):
    dev = common.DEVICE
    gen = torch.Generator(device=dev).manual_seed(0)
    xs = [(torch.randn(T, N, device=dev, generator=gen) * 1.5 + 0.5).to(dtype).requires_grad_() for _ in range(sets)]
    gs = [torch.randn(T, N, device=dev, generator=gen).to(dtype) for _ in range(sets)]
    return xs, gs


def _step_fn(module: Callable, xs, gs, before: Optional[Callable] = None) -> Callable[[], Any]:
    """forward + backward on rotating inputs (sets that fit in L2 would flatter the small size)."""
    i = [0]

    def fn():
        k = i[0] % len(xs)
        i[0] += 1
        if before is not None:
            before()
        y = module(xs[k])
        return torch.autograd.grad(y, xs[k], gs[k])

    return fn


def _contenders(names: List[str], sj_backends: List[str], dtype: torch.dtype, T: int, compile_T) -> List[Dict[str, Any]]:
    out = []
    if "ours" in names:
        out.append(dict(name="ours", make=lambda: create_neuron("lif", backend="triton").to(common.DEVICE)))
    if "sj" in names:
        ab = import_spikingjelly()
        if ab is not None:
            for b in sj_backends:
                out.append(dict(name=f"sj:{b}", sj_backend=b,
                                make=lambda: ab.neuron.LIFNode(step_mode="m", detach_reset=True).to(common.DEVICE),
                                before_factory=lambda m: m.reset))
            if dtype != torch.float32:
                out.append(dict(name="sj-prec", sj_backend="auto", make=lambda: _sj_precision_node(ab, dtype),
                                before_factory=lambda m: m.reset))
    if "torch" in names:
        out.append(dict(name="torch", make=lambda: create_neuron("lif", backend="torch").to(common.DEVICE)))
    if "compile" in names and (compile_T is None or T in compile_T):
        out.append(dict(name="compile", make=lambda: _compiled_reference(T, dtype)))
    return out


_COMPILED: Dict[Any, Any] = {}


def _compiled_reference(T: int, dtype: torch.dtype):
    """torch.compile of the reference loop, one module per (T, dtype); each size compiles anew (static
    shapes: with dynamic=True Dynamo 2.11 turns the surrogate's alpha into a symbolic float that the
    traced backward cannot lift, and the compile fails)."""
    if (T, dtype) not in _COMPILED:
        _COMPILED[(T, dtype)] = torch.compile(create_neuron("lif", backend="torch").to(common.DEVICE), dynamic=False)
    return _COMPILED[(T, dtype)]


def _sj_precision_node(ab, dtype):
    """SpikingJelly's fast low-precision neuron: state stored in `dtype`, fp32 arithmetic (Triton)."""
    from spikingjelly.activation_based.precision import prepare_model_for_precision

    node = ab.neuron.LIFNode(step_mode="m", detach_reset=True).to(common.DEVICE)
    storage = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    art = prepare_model_for_precision(node, common.DEVICE, {"mode": storage, "neuron_storage": storage})
    return art.model


def measure(T: int, size: float, dtype_name: str, args, copy_gbs: float) -> List[Dict[str, Any]]:
    dtype = DTYPES[dtype_name]
    N = int(round(size / T))
    numel = T * N
    elem = torch.finfo(dtype).bits // 8
    min_bytes = 4 * numel * elem
    chunks = -(-T // 8)
    ours_bytes = 5 * numel * elem + 2 * 4 * N * (chunks - 1)
    sets = max(1, min(4, int(-(-200e6 // (3 * numel * elem)))))  # rotate inputs through >= ~200 MB
    xs, gs = _inputs(T, N, dtype, sets)
    rows, sj_selected = [], False
    for c in _contenders(args.contenders, args.sj_backends, dtype, T, args.compile_T):
        rec: Dict[str, Any] = dict(contender=c["name"], T=T, N=N, numel=numel, dtype=dtype_name,
                                   min_bytes=min_bytes)
        fn = module = None
        try:
            if "sj_backend" in c:
                set_neuron_backend(c["sj_backend"])
                sj_selected = True
            module = c["make"]()
            before = c["before_factory"](module) if "before_factory" in c else None
            fn = _step_fn(module, xs, gs, before)
            fn()
            sync()
            if "sj_backend" in c and common.DEVICE.type == "cuda":
                rec["implementation"], rec["unavailable"] = neuron_backend(common.DEVICE, detail=True)
            rec.update(time_ms(fn, min_ms=args.min_ms))
            rec["gb_per_s"] = min_bytes / (rec["ms"] * 1e-3) / 1e9
            rec["frac_copy_bw"] = rec["gb_per_s"] / copy_gbs
            if c["name"] == "ours":
                rec["moved_bytes"] = ours_bytes
                rec["moved_gb_per_s"] = ours_bytes / (rec["ms"] * 1e-3) / 1e9
            if not args.no_graphs and c["name"] not in ("compile", "torch"):
                rec["graph_ms"] = graph_time_ms(fn)
        except Exception as e:  # a peer's backend can be missing on this machine: record, go on
            rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            print(f"  {c['name']}: {rec['error']}")
        rows.append(rec)
        print(f"  T={T} size={numel / 1e6:.1f}M {dtype_name} {c['name']:>10}: "
              + (f"{rec['ms']:.4f} ms" if "ms" in rec else "failed")
              + (f", graph {rec['graph_ms']:.4f} ms" if rec.get("graph_ms") else "")
              + (f" [{rec['implementation']}]" if "implementation" in rec else ""), flush=True)
        del fn, module
        gc.collect()
    if sj_selected:
        set_neuron_backend("auto")  # back to SpikingJelly's own choice
    del xs, gs
    if common.DEVICE.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def summarize(rows: List[Dict[str, Any]], copy_gbs: float) -> str:
    head = ["dtype", "size", "T", "ours ms", "SJ best ms", "SJ impl", "torch ms", "compile ms", "SJ/ours",
            "torch/ours", "compile/ours", "ours GB/s", "% copy", "ours graph ms", "SJ graph ms"]
    out = [head]
    keys = sorted({(r["dtype"], r["numel"], r["T"]) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    for dt, numel, T in keys:
        grp = {r["contender"]: r for r in rows if (r["dtype"], r["numel"], r["T"]) == (dt, numel, T) and "ms" in r}
        ours = grp.get("ours", {}).get("ms")
        sj = [r for k, r in grp.items() if k.startswith("sj")]
        best = min(sj, key=lambda r: r["ms"]) if sj else None
        sj_graph = [r["graph_ms"] for r in sj if r.get("graph_ms")]

        def ratio(r):
            return None if (r is None or ours is None) else r / ours

        t, c = grp.get("torch", {}).get("ms"), grp.get("compile", {}).get("ms")
        out.append([dt, f"{numel / 1e6:.1f}M", T, ours, best and best["ms"],
                    best and best.get("implementation", best["contender"]), t, c, ratio(best and best["ms"]),
                    ratio(t), ratio(c), grp.get("ours", {}).get("gb_per_s"),
                    (grp.get("ours", {}).get("frac_copy_bw") or 0) * 100 or None,
                    grp.get("ours", {}).get("graph_ms"), min(sj_graph) if sj_graph else None])
    return table(out) + f"\n(copy bandwidth {copy_gbs:.0f} GB/s, read + write; GB/s = 4 passes x size x element / time)"


def run(args) -> int:
    common.set_dry_run(args.dry_run)
    if args.dry_run:
        args.sizes, args.min_ms = [s * 1e-4 for s in args.sizes], 5.0
    msg = require_cuda("neuron")
    if msg:
        print(msg)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    copy_gbs = copy_bandwidth()
    print(f"device-to-device copy: {copy_gbs:.0f} GB/s (read + write)")
    rows: List[Dict[str, Any]] = []
    record = {"suite": "neuron", "provenance": provenance(), "copy_gb_per_s": copy_gbs, "args": vars(args),
              "rows": rows, "complete": False}
    for dtype_name in args.dtypes:
        for size in args.sizes:
            for T in args.T:
                rows += measure(T, size, dtype_name, args, copy_gbs)
                write_record(args.out, record, quiet=True)  # partial results survive a time limit
    record.update(complete=True, summary=summarize(rows, copy_gbs))
    write_record(args.out, record)
    print(record["summary"])
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="spikeformers bench neuron", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))
