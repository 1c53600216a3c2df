"""Our 3x3/stride-2 max-pool kernels (kernels/triton_maxpool.py) against torch's channels_last max_pool2d, at the
pool shapes of Spikformer-8-512's patch splitting at 224 x 224 (T x batch = 128), with a sweep of the
kernels' tile sizes and warps. Forward and backward timed apart, bf16, CUDA events, median of 20.

    python benchmarks/pool_kernel.py             (needs CUDA; about a minute)
    python benchmarks/pool_kernel.py --n 64      (T x batch)
"""
import argparse
import itertools
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from spikeformers.kernels.launch import launch  # noqa: E402
from spikeformers.kernels.maxpool import BWD_BLOCKS as _BWD_BLOCKS, FWD_BLOCKS as _FWD_BLOCKS  # noqa: E402
from spikeformers.kernels.triton_maxpool import pool_backward, pool_forward  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=128)
args = ap.parse_args()
dev = "cuda"
SHAPES = [(64, 224), (128, 112), (256, 56), (512, 28)]  # (channels, side) of each pool's input
GEOM = dict(KH=3, KW=3, SH=2, SW=2, PH=1, PW=1)
CONFIGS = list(itertools.product((16, 32, 64, 128), (32, 64, 128), (4, 8)))  # BLOCK_P, BLOCK_C, warps


def ms(fn, reps=20):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def ours(x, g, bp, bc, warps):
    N, C, H, W = x.shape
    OH, OW = (H - 1) // 2 + 1, (W - 1) // 2 + 1
    y = torch.empty((N, C, OH, OW), dtype=x.dtype, device=dev, memory_format=torch.channels_last)
    idx = torch.empty_like(y, dtype=torch.int8)
    gx = torch.empty_like(x)
    blocks = dict(BLOCK_P=bp, BLOCK_C=bc)
    P, Q = N * OH * OW, N * H * W
    fwd = lambda: launch(pool_forward, (-(-P // bp), -(-C // bc)), (x, y, idx, P, H, W, OH, OW, C),  # noqa: E731
                         dict(GEOM, SAVE=True, **blocks), dict(num_warps=warps))
    bwd = lambda: launch(pool_backward, (-(-Q // bp), -(-C // bc)), (g, idx, gx, Q, H, W, OH, OW, C),  # noqa: E731
                         dict(GEOM, **blocks), dict(num_warps=warps))
    fwd(); bwd()
    return ms(fwd), ms(bwd), y, gx


def reference(x, g):
    xr = x.detach().requires_grad_()
    y, _ = F.max_pool2d_with_indices(xr, 3, 2, 1)
    y.backward(g)
    return y, xr.grad


print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, T x batch = {args.n}")
totals = {c: [0.0, 0.0] for c in CONFIGS}
torch_total = [0.0, 0.0]
copy_total = 0.0
for C, side in SHAPES:
    x = (torch.rand(args.n, C, side, side, device=dev) < 0.2).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    o = (side - 1) // 2 + 1
    g = torch.randn(args.n, C, o, o, device=dev, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    y_ref, gx_ref = reference(x, g)
    with torch.no_grad():
        t_fwd = ms(lambda: F.max_pool2d_with_indices(x, 3, 2, 1))
    _, ind = F.max_pool2d_with_indices(x, 3, 2, 1)
    t_bwd = ms(lambda: torch.ops.aten.max_pool2d_with_indices_backward(g, x, [3, 3], [2, 2], [1, 1], [1, 1], False, ind))
    t_copy = ms(lambda: x.clone())
    torch_total[0] += t_fwd; torch_total[1] += t_bwd; copy_total += t_copy
    print(f"[{args.n}, {C}, {side}, {side}]: torch fwd {t_fwd:.3f} bwd {t_bwd:.3f} ms; copy of the input {t_copy:.3f} ms")
    for c in CONFIGS:
        f, b, y, gx = ours(x, g, *c)
        assert torch.equal(y, y_ref), f"forward differs from torch at {c}"
        assert torch.allclose(gx.float(), gx_ref.float(), atol=1e-2, rtol=1e-2), f"backward differs from torch at {c}"
        totals[c][0] += f; totals[c][1] += b
fwd_now = (_FWD_BLOCKS["BLOCK_P"], _FWD_BLOCKS["BLOCK_C"], 4)  # the tiles kernels/maxpool.py uses (4 warps)
bwd_now = (_BWD_BLOCKS["BLOCK_P"], _BWD_BLOCKS["BLOCK_C"], 4)
now = totals[fwd_now][0], totals[bwd_now][1]
best_f = min(CONFIGS, key=lambda c: totals[c][0])
best_b = min(CONFIGS, key=lambda c: totals[c][1])
print(f"sum over the four pools (ms): torch fwd {torch_total[0]:.3f} bwd {torch_total[1]:.3f}; copies {copy_total:.3f}")
print(f"  ours as configured (fwd {fwd_now}, bwd {bwd_now}): fwd {now[0]:.3f} bwd {now[1]:.3f} "
      f"({sum(torch_total) / sum(now):.2f}x torch)")
print(f"  best fwd {best_f}: {totals[best_f][0]:.3f}; best bwd {best_b}: {totals[best_b][1]:.3f} "
      f"({sum(torch_total) / (totals[best_f][0] + totals[best_b][1]):.2f}x torch)")
for c in sorted(CONFIGS, key=lambda c: sum(totals[c]))[:8]:
    print(f"  BLOCK_P {c[0]:3d} BLOCK_C {c[1]:3d} warps {c[2]}: fwd {totals[c][0]:.3f} bwd {totals[c][1]:.3f}")
