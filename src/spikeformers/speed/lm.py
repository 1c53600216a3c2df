"""Language-model benchmark: training tokens/s of the spiking LM against its ANN twin, same shapes, and
generation tokens/s at batch 1.

    spikeformers bench lm [--dim 384 --depth 6 --heads 12 --seq-len 256 --batch 64] [--out lm.json]
    spikeformers bench lm --modes --generate 512              # generation only
    spikeformers bench lm --cpu --modes --generate 200 --dim 128 --depth 2 --heads 4 --seq-len 64  # the CPU recipe
    python benchmarks/lm_speed.py ...           (the same code)

Each setting trains on random byte windows on the GPU: forward, next-token cross-entropy, backward,
gradient clipping, fused AdamW step, in bf16 autocast, eager or replayed as one CUDA graph
(`run.cuda_graph=true`, `GraphedStep`). Reported: tokens/s over the timed steps (after warm-up),
peak memory, and each setting's tokens/s as a fraction of the ANN twin's in the same execution mode
(the issue's target for the spiking LM: >= 50 %).

Settings: twin (ReLU, causal softmax attention, T = 1), if-T4 (the default spiking LM: IF neurons with
soft reset, T = 4), lif-T4 (LIF with hard reset, every spiking transformer's neuron), ilif-D4 (integer
neurons, up to 4 spikes per step, T = 1: integer training, spike inference), spikegpt (SpikeGPT at the same width,
depth and context: `spikegpt_46m` with byte tokens; it has no heads).

Generation (`--generate N`): N new tokens after a 16-token prompt at batch 1, sampled (temperature 1) through
`stream` (`models/decode.py`), each step replayed as a CUDA graph ("graph") or eagerly ("eager"); tokens/s
over the N tokens, after one untimed warm-up stream (kernel compilation, the capture itself is timed).
"""
from __future__ import annotations

import argparse
import gc
import time
from typing import Any, Dict, List

import torch

from ..models import create_model
from ..tasks.lm import NextTokenLoss
from ..train.cuda_graph import GraphedStep
from . import common
from .common import peak_memory_gb, provenance, require_cuda, reset_peak_memory, sync, table, write_record
from ..train.step import forward_backward

__all__ = ["SETTINGS", "main", "run"]

SETTINGS: Dict[str, Dict[str, Any]] = {
    "twin": dict(twin="ann"),
    "if-T4": dict(T=4),
    "lif-T4": dict(T=4, neuron="lif"),
    "ilif-D4": dict(T=1, neuron="ilif", neuron_opts={"max_spikes": 4}),
    "spikegpt": dict(model="spikegpt_46m", vocab_size=256),
}


def build(name: str, args) -> torch.nn.Module:
    """Setting `name`'s model at the benchmark's sizes, on the benchmark's device."""
    setting = dict(SETTINGS[name])
    model = setting.pop("model", "spiking_lm")
    sizes = dict(dim=args.dim, depth=args.depth, block_size=args.seq_len)
    if model == "spiking_lm":
        sizes["num_heads"] = args.heads
    return create_model(model, **sizes, **setting).to(common.DEVICE)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--modes", nargs="*", default=["graph", "eager"], choices=["graph", "eager"],
                   help="training modes (none: generation only)")
    p.add_argument("--generate", type=int, default=0, help="also time generating this many tokens at batch 1")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=30, help="timed steps per setting")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (kernels compile here)")
    p.add_argument("--out", default=None, help="JSON record path")
    p.add_argument("--cpu", action="store_true", help="measure on the CPU at the given sizes (the tiny recipe's: "
                   "--dim 128 --depth 2 --heads 4 --seq-len 64); threads: torch's default")
    p.add_argument("--dry-run", action="store_true", help="a tiny model on the CPU: checks the code, measures nothing")


def measure(name: str, mode: str, args) -> Dict[str, Any]:
    dev = common.DEVICE
    model = build(name, args)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, fused=dev.type == "cuda")
    loss_fn, amp = NextTokenLoss(), torch.bfloat16 if dev.type == "cuda" else None
    g = torch.Generator(device=dev).manual_seed(0)
    batches = [torch.randint(0, 256, (args.batch, args.seq_len + 1), device=dev, generator=g) for _ in range(4)]
    if mode == "graph":
        step = GraphedStep(model, loss_fn, amp, grad_clip=1.0)

        def train_step(i: int) -> None:
            step(batches[i % 4][:, :-1], batches[i % 4][:, 1:])
            opt.step()
    else:

        def train_step(i: int) -> None:
            opt.zero_grad(set_to_none=True)
            forward_backward(model, batches[i % 4][:, :-1], batches[i % 4][:, 1:], loss_fn, amp, 1.0, params)
            opt.step()

    for i in range(args.warmup):
        train_step(i)
    sync()
    reset_peak_memory()
    t0 = time.perf_counter()
    for i in range(args.steps):
        train_step(i)
    sync()
    dt = time.perf_counter() - t0
    rec = {"setting": name, "mode": mode, "tokens_per_s": args.steps * args.batch * args.seq_len / dt,
           "step_ms": 1e3 * dt / args.steps, "peak_gb": peak_memory_gb(),
           "parameters": sum(p.numel() for p in model.parameters())}
    del model, opt, batches
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return rec


def measure_generation(name: str, graph: bool, args) -> Dict[str, Any]:
    dev = common.DEVICE
    model = build(name, args).eval()
    prompt = torch.randint(0, 256, (1, 16), device=dev, generator=torch.Generator(device=dev).manual_seed(0))
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        for timed in (False, True):
            gen = torch.Generator(device=dev).manual_seed(0)
            sync()
            t0 = time.perf_counter()
            n = sum(1 for _ in model.stream(prompt, args.generate, generator=gen, graph=graph))
            sync()
            dt = time.perf_counter() - t0
    rec = {"setting": name, "mode": "generate-" + ("graph" if graph else "eager"), "tokens_per_s": n / dt,
           "ms_per_token": 1e3 * dt / n}
    del model
    gc.collect()
    return rec


def run(args) -> Dict[str, Any]:
    record: Dict[str, Any] = {"suite": "lm", "provenance": {**provenance(), "device_type": common.DEVICE.type,
                                                            "threads": torch.get_num_threads()},
                              "args": vars(args), "rows": []}
    for mode in args.modes:
        for name in args.settings:
            try:
                rec = measure(name, mode, args)
            except Exception as e:  # one failing setting must not cost the others their rows
                rec = {"setting": name, "mode": mode, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            record["rows"].append(rec)
            print(f"  {name:>8} {mode:>5}: " + (f"{rec['tokens_per_s']:10,.0f} tokens/s, {rec['step_ms']:.1f} ms/step, "
                                               f"peak {rec['peak_gb'] or 0:.2f} GB" if "error" not in rec else rec["error"]),
                  flush=True)
            write_record(args.out, record, quiet=True)
    graphs = (True, False) if common.DEVICE.type == "cuda" else (False,)  # no CUDA graphs on the CPU
    for graph in (graphs if args.generate else ()):
        for name in args.settings:
            try:
                rec = measure_generation(name, graph, args)
            except Exception as e:  # noqa: BLE001 - as above
                rec = {"setting": name, "mode": "generate", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            record["rows"].append(rec)
            print(f"  {name:>8} {rec['mode']}: " + (f"{rec['tokens_per_s']:8,.0f} tokens/s at batch 1"
                                                    if "error" not in rec else rec["error"]), flush=True)
            write_record(args.out, record, quiet=True)
    rows: List[List[Any]] = [["setting", "mode", "tokens/s", "ms/step", "peak GB", "x twin"]]
    for r in record["rows"]:
        twin = next((q.get("tokens_per_s") for q in record["rows"] if q["setting"] == "twin" and q["mode"] == r["mode"]),
                    None)
        tps = r.get("tokens_per_s")
        r["of_twin"] = tps / twin if tps and twin else None
        rows.append([r["setting"], r["mode"], tps, r.get("step_ms"), r.get("peak_gb"), r["of_twin"]])
    write_record(args.out, record)
    print(table(rows))
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="spikeformers bench lm", description=__doc__.split("\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    common.set_dry_run(args.dry_run or args.cpu)
    if args.dry_run:
        args.dim, args.depth, args.heads, args.seq_len, args.batch, args.steps, args.warmup = 32, 1, 2, 16, 2, 2, 1
        args.modes, args.generate = ["eager"], min(args.generate, 20)
    msg = require_cuda("lm")
    if msg:
        print(msg)
        return 2
    run(args)
    return 0
