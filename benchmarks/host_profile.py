"""Host time of one neuron forward+backward and of one Triton launch (tiny input: the GPU never waits).

    python benchmarks/host_profile.py      (needs CUDA; SpikingJelly optional)
"""
import cProfile
import io
import os
import pstats
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from spikeformers.neurons import create_neuron  # noqa: E402
from spikeformers.kernels import neuron as ops  # noqa: E402

dev = "cuda"
T, N = 4, 4096
x = torch.randn(T, N, device=dev, requires_grad=True)
g = torch.randn(T, N, device=dev)

def host_us(fn, n=3000):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    host = (time.perf_counter() - t) / n * 1e6
    torch.cuda.synchronize()
    return host

ours = create_neuron("lif", backend="triton").to(dev)
def f_ours():
    return torch.autograd.grad(ours(x), x, g)
def f_base():
    return torch.autograd.grad(x * 1.0, x, g)
res = {}
res["baseline mul + autograd.grad"] = host_us(f_base)
res["ours lif fwd+bwd"] = host_us(f_ours)
y = torch.empty_like(x)
d = ops._dummy(x)
OPTS = dict(BLOCK=1024, num_warps=4, enable_fp_fusion=False)
def f_launch():
    ops.lif_fwd_kernel[(4,)](x, y, d, y, N, T, 1, 0, 0.5, 1.0, 0.0, KIND=1, K_PTR=False, SOFT=False, C=4, **OPTS)
res["one lif_fwd_kernel[grid](...) launch"] = host_us(f_launch)
k = ops.lif_fwd_kernel[(4,)](x, y, d, y, N, T, 1, 0, 0.5, 1.0, 0.0, KIND=1, K_PTR=False, SOFT=False, C=4, **OPTS)
stream = torch.cuda.current_stream().cuda_stream
args = (x, y, d, y, N, T, 1, 0, 0.5, 1.0, 0.0, 1, False, False, 4, 1024)
def f_direct():
    k.run(4, 1, 1, stream, k.function, k.packed_metadata, None, None, None, *args)
res["same kernel via CompiledKernel.run"] = host_us(f_direct)
from spikeformers.kernels.launch import launch  # noqa: E402
res["same kernel via launch()"] = host_us(lambda: launch(ops.lif_fwd_kernel, (4,), (x, y, d, y, N, T, 1, 0, 0.5, 1.0, 0.0), dict(KIND=1, K_PTR=False, SOFT=False, C=4, BLOCK=1024), dict(num_warps=4, enable_fp_fusion=False)))
res["torch.empty_like"] = host_us(lambda: torch.empty_like(x))
try:
    from spikingjelly.activation_based import neuron as sj_neuron
    sj = sj_neuron.LIFNode(step_mode="m", detach_reset=True).to(dev)
    def f_sj():
        sj.reset()
        return torch.autograd.grad(sj(x), x, g)
    res["SpikingJelly LIFNode fwd+bwd"] = host_us(f_sj)
except Exception as e:
    res["sj"] = repr(e)
for kk, v in res.items():
    print(f"{kk:45s} {v if isinstance(v, str) else f'{v:8.1f} us'}")
pr = cProfile.Profile(); pr.enable()
for _ in range(2000):
    f_ours()
pr.disable(); torch.cuda.synchronize()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(25); print(s.getvalue()[:5000])
