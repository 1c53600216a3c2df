"""The fused BatchNorm + LIF op (`layers/bn_fire.py`) against BatchNorm then the LIF kernel, at the BN -> neuron
shapes of a Spikformer-8-512 step at 224 x 224 (batch 32, T = 4, bf16), with a sweep of the fused kernels'
launch configuration (`bn_fire.CONFIG`). Every variant's spikes must equal the default's, and its input
gradient must match it. Time: forward + backward through autograd (BN's statistics and its input-gradient
kernel included, as in a step), the kernels' device time under the profiler (no launch overhead), mean
of 5 calls; "per step" weighs
each shape by how often a step runs it.

    python benchmarks/bn_fire_kernel.py [--out bn_fire.json] [--quick]
"""
import argparse
import itertools
import json
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from spikeformers.speed.common import provenance  # noqa: E402
from spikeformers.layers import bn_fire  # noqa: E402
from spikeformers.layers.batchnorm import BatchNorm1d  # noqa: E402
from spikeformers.neurons import LIFNode  # noqa: E402

# (name, rows per step, channels, calls per step): SPS stages at 224/112/56/28, then the 14 x 14 tokens
# (RPE, Q/K/V/proj and fc2 of 8 blocks: 49 calls at D = 512; fc1: 8 calls at 4D)
SHAPES = [("stem224", 32 * 224 * 224, 64, 1), ("stem112", 32 * 112 * 112, 128, 1), ("stem56", 32 * 56 * 56, 256, 1),
          ("stem28", 32 * 28 * 28, 512, 1), ("tok512", 32 * 196, 512, 49), ("tok2048", 32 * 196, 2048, 8)]
T = 4


def timed(fn, iters=5, by_kernel=None):
    """GPU time per call in ms: the kernels' device time under the profiler (no launch overhead). `by_kernel`:
    a dict that receives each kernel's time per call."""
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.self_device_time_total > 0]
    if by_kernel is not None:
        by_kernel.update({e.key[:40]: e.self_device_time_total / iters / 1e3 for e in events})
    return sum(e.self_device_time_total for e in events) / iters / 1e3


def case(R, C):
    gen = torch.Generator(device="cuda").manual_seed(C)
    x = torch.randn(T * R, C, device="cuda", generator=gen).to(torch.bfloat16).requires_grad_()
    gy = torch.randn(T * R, C, device="cuda", generator=gen).to(torch.bfloat16)
    bn, neuron = BatchNorm1d(C).cuda(), LIFNode().cuda()
    with torch.no_grad():
        bn.bias.fill_(0.5)

    def run():
        s = bn_fire.bn_fire(bn, neuron, x, (T, R, C))
        return s, torch.autograd.grad(s, x, gy.view(s.shape))[0]

    return x, run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="a few variants only")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bn_fire_kernel.py: needs a CUDA GPU (none found); nothing measured", file=sys.stderr)
        sys.exit(2)
    default = dict(bn_fire.CONFIG)
    grid = {"bwd_programs": [1024, 4096], "bwd_tile": [512, 1024], "bwd_block_c": [32, 64], "bwd_warps": [4, 8]}
    if args.quick:
        grid = {"bwd_programs": [1024, 2048], "bwd_tile": [512, 1024], "bwd_block_c": [64], "bwd_warps": [4, 8]}
    variants = [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    variants += [{"fwd_tile": t, "fwd_block_c": c, "fwd_warps": w} for t, c, w in
                 itertools.product([1024, 2048, 4096], [64, 128], [4, 8]) if not args.quick]
    rec = {"provenance": provenance(), "T": T, "default": default, "shapes": {}, "variants": []}
    results = {}
    for name, R, C, calls in SHAPES:
        x, run = case(R, C)
        bn_fire.ENABLED = False
        ku, kf = {}, {}
        unfused = timed(run, by_kernel=ku)
        bn_fire.ENABLED = True
        bn_fire.CONFIG.update(default)
        ref_s, ref_g = run()
        fused = timed(run, by_kernel=kf)
        rec["shapes"][name] = dict(rows=R, C=C, calls=calls, unfused_ms=unfused, fused_ms=fused, unfused_kernels=ku,
                                   fused_kernels=kf)
        print(f"{name:8s} R={R:8d} C={C:5d} x{calls:2d}: unfused {unfused:.3f} ms, fused (default) {fused:.3f} ms", flush=True)
        for label, k in (("unfused", ku), ("fused", kf)):
            print(f"    {label:8s} " + ", ".join(f"{n} {t:.3f}" for n, t in sorted(k.items(), key=lambda kv: -kv[1])))
        for i, v in enumerate(variants):
            bn_fire.CONFIG.update(default)
            bn_fire.CONFIG.update(v)
            s, g = run()
            ok = torch.equal(s, ref_s) and torch.allclose(g.float(), ref_g.float(), rtol=1e-2, atol=1e-2)
            results.setdefault(i, {})[name] = timed(run) if ok else float("nan")
            if not ok:
                print(f"  variant {v}: differs from the default", flush=True)
        del x, run
        torch.cuda.empty_cache()
    bn_fire.CONFIG.update(default)
    per_step = lambda ms: sum(ms[n] * c for n, _, _, c in SHAPES)  # noqa: E731
    base_u = per_step({n: r["unfused_ms"] for n, r in rec["shapes"].items()})
    base_f = per_step({n: r["fused_ms"] for n, r in rec["shapes"].items()})
    print(f"per step: unfused {base_u:.2f} ms, fused default {base_f:.2f} ms")
    for i, v in enumerate(variants):
        rec["variants"].append(dict(config=v, ms=results[i], per_step_ms=per_step(results[i])))
    for r in sorted(rec["variants"], key=lambda r: r["per_step_ms"])[:12]:
        print(f"  {r['per_step_ms']:7.2f} ms/step  {r['config']}  " +
              " ".join(f"{n}={r['ms'][n]:.3f}" for n, *_ in SHAPES))
    rec.update(per_step_unfused_ms=base_u, per_step_fused_default_ms=base_f)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rec, f, indent=1)


if __name__ == "__main__":
    main()
