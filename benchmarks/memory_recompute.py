"""Peak memory and step time of `run.memory=recompute` against the default path, over T.

Spikformer-4-384 at 32 x 32 (the issue's setting), one fresh process per setting.
CUDA: batch 64, bf16, the default step (`make_step`: graphed) with AdamW; peak = torch.cuda.max_memory_allocated
over the whole process: the warm-up steps, the graph's capture and 10 timed steps (a captured graph replays
in the memory it took at capture, so a peak counted only after capture would show the static tensors alone).
CPU (no CUDA, or --cpu): fp32, one training step; peak = growth of the process's peak resident memory during it
(ru_maxrss), which includes the gradients' first allocation (the same in both modes).

    python benchmarks/memory_recompute.py                         # CUDA if present
    python benchmarks/memory_recompute.py --cpu --batch 8         # about 3 minutes on 2 cores
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from spikeformers import create_model  # noqa: E402
from spikeformers.train import enable_recompute, make_step  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(T: int, mode: str, batch: int, cpu: bool) -> dict:
    torch.manual_seed(0)
    dev = "cpu" if cpu else "cuda"
    model = create_model("spikformer_4_384", T=T).to(dev)
    if mode == "recompute":
        enable_recompute(model)
    if dev == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=dev == "cuda")
    step = make_step(model, opt, amp=torch.bfloat16 if dev == "cuda" else None)
    x, y = torch.rand(batch, 3, 32, 32, device=dev), torch.randint(0, 10, (batch,), device=dev)
    if dev == "cpu":
        torch.set_num_threads(2)
        before = rss_mib()
        t = time.perf_counter()
        step(x, y)
        ms = (time.perf_counter() - t) * 1e3
        return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before, "ms": ms}
    for _ in range(3):
        step(x, y)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        step(x, y)
    torch.cuda.synchronize()
    return {"peak_mib": torch.cuda.max_memory_allocated() / 2**20, "ms": (time.perf_counter() - t) * 100,
            "device": torch.cuda.get_device_name()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--batch", type=int, default=None, help="default: 64 on CUDA, 8 on the CPU")
    p.add_argument("--cpu", action="store_true", help="measure on the CPU even where CUDA is present")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--child", nargs=2, metavar=("T", "MODE"), help=argparse.SUPPRESS)
    a = p.parse_args()
    cpu = a.cpu or not torch.cuda.is_available()
    batch = a.batch or (8 if cpu else 64)
    if a.child:
        print(json.dumps(child(int(a.child[0]), a.child[1], batch, cpu)))
        return 0
    rows = []
    for T in a.T:
        row = {"T": T}
        for mode in ("default", "recompute"):
            cmd = [sys.executable, os.path.abspath(__file__), "--child", str(T), mode, "--batch", str(batch)]
            # large blocks from mmap, returned when freed: the resident size then follows the live tensors
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
            out = subprocess.run(cmd + (["--cpu"] if cpu else []), capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"T={T} {mode} failed:\n{out.stderr[-2000:]}")
            row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        d, r = row["default"], row["recompute"]
        print(f"T={T:3d}  default {d['peak_mib']:8.0f} MiB {d['ms']:8.1f} ms   recompute {r['peak_mib']:8.0f} MiB "
              f"{r['ms']:8.1f} ms   memory x{r['peak_mib'] / d['peak_mib']:.2f}, time x{r['ms'] / d['ms']:.2f}", flush=True)
    first, last = rows[0], rows[-1]
    for mode in ("default", "recompute"):
        print(f"{mode}: peak at T={last['T']} / at T={first['T']} = {last[mode]['peak_mib'] / first[mode]['peak_mib']:.2f}")
    print(f"({'CPU, fp32' if cpu else rows[0]['default'].get('device', 'CUDA') + ', bf16, graphed step'}, batch {batch}, "
          f"Spikformer-4-384 at 32 x 32, torch {torch.__version__})")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"cpu": cpu, "batch": batch, "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
