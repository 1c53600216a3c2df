"""Data-parallel scaling: Spikformer-4-384 training images/s on 1 vs N GPUs at equal global batch.

    spikeformers bench ddp [--gpus 1 2] [--global-batch 128] [--out ddp.json]
    python benchmarks/ddp_scaling.py ...        (the same code)

Each GPU count runs `torchrun --standalone --nproc_per_node=N -m spikeformers.speed.ddp --worker`:
the engine's `Distributed` (NCCL, one process per GPU, DDP), bf16 autocast, channels_last, fused
kernels, synthetic CIFAR-shaped batches, the global batch split evenly across ranks. `--cuda-graph`:
each rank replays its forward+backward as a CUDA graph and the gradients are all-reduced after it,
as the engine does with run.cuda_graph=true. Rank 0 prints
one `DDP_RESULT {json}` line; the launcher collects them and prints the scaling table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional
from ..models import create_model
from ..train.distributed import Distributed
from ..train.cuda_graph import GraphedStep
from .common import provenance, table, write_record

__all__ = ["main"]


def _worker(args) -> int:
    import torch
    import torch.nn.functional as F


    dist = Distributed.from_env("cuda")
    device = dist.device if dist.world_size > 1 else torch.device("cuda")
    torch.manual_seed(0)
    model = create_model(args.model).to(device).to(memory_format=torch.channels_last)
    train_model = model if args.cuda_graph else dist.wrap(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    if args.cuda_graph:  # what the engine does with run.cuda_graph=true under torchrun

        dist.broadcast_module(model)
        graphed = GraphedStep(model, F.cross_entropy, torch.bfloat16)
        params, buffers = [p for p in model.parameters() if p.requires_grad], list(model.buffers())
    B = args.global_batch // dist.world_size
    gen = torch.Generator(device=device).manual_seed(dist.rank)
    data = [(torch.rand(B, 3, 32, 32, device=device, generator=gen), torch.randint(0, 10, (B,), device=device, generator=gen))
            for _ in range(4)]

    def step(i):
        x, y = data[i % 4]
        if args.cuda_graph:
            dist.broadcast_tensors(buffers)
            graphed(x, y)
            dist.average_gradients(params)
            opt.step()
            return
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = train_model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    torch.cuda.synchronize()
    if dist.world_size > 1:
        torch.distributed.barrier()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if dist.world_size > 1:
        t = torch.tensor([dt], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        dt = float(t)
    if dist.is_main:
        print("DDP_RESULT " + json.dumps({"gpus": dist.world_size, "global_batch": args.global_batch,
                                          "cuda_graph": args.cuda_graph,
                                          "images_per_s": args.steps * args.global_batch / dt, "step_ms": 1e3 * dt / args.steps,
                                          "peak_gb": torch.cuda.max_memory_allocated(device) / 1e9}), flush=True)
    dist.close()
    return 0


def _launch(args) -> int:
    import torch


    have = torch.cuda.device_count()
    if have == 0:
        print("spikeformers bench ddp: needs CUDA GPUs (none found); nothing measured")
        return 2
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    results: List[Dict[str, Any]] = []
    for n in args.gpus:
        if n > have:
            print(f"  {n} GPUs: only {have} here, skipped")
            continue
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m",
               "spikeformers.speed.ddp", "--worker", "--global-batch", str(args.global_batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--model", args.model] + (["--cuda-graph"] if args.cuda_graph else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DDP_RESULT ")]
        if proc.returncode or not lines:
            print(f"  {n} GPUs failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            results.append({"gpus": n, "error": proc.stderr[-500:]})
            continue
        results.append(json.loads(lines[-1][len("DDP_RESULT "):]))
        print(f"  {n} GPU(s): {results[-1]['images_per_s']:.0f} img/s", flush=True)
    base = next((r["images_per_s"] for r in results if r.get("gpus") == 1 and "images_per_s" in r), None)
    rows = [["GPUs", "global batch", "img/s", "ms/step", "peak GB/GPU", "speedup", "efficiency"]]
    for r in results:
        ips = r.get("images_per_s")
        sp = ips / base if (ips and base) else None
        rows.append([r["gpus"], args.global_batch, ips, r.get("step_ms"), r.get("peak_gb"), sp, sp / r["gpus"] if sp else None])
    summary = table(rows)
    write_record(args.out, {"suite": "ddp", "provenance": provenance(), "args": vars(args), "rows": results, "summary": summary})
    print(summary)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="spikeformers bench ddp", description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    p.add_argument("--global-batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--model", default="spikformer_4_384")
    p.add_argument("--cuda-graph", action="store_true",
                   help="replay each rank's forward+backward as a CUDA graph, then all-reduce (run.cuda_graph=true)")
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--out", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    return _worker(args) if args.worker else _launch(args)


if __name__ == "__main__":
    sys.exit(main())
