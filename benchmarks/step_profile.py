"""Where the GPU time of one training step goes, by kernel family (default: Spikformer-4-384, bf16, batch 64).

    python benchmarks/step_profile.py            (needs CUDA; a diagnostic, not a peer benchmark: NOTES.md)
    python benchmarks/step_profile.py --by-op    (also: aten ops with their input shapes, by GPU time)
    python benchmarks/step_profile.py --model spikformer_8_512 --batch 32 --fp32 [--sj]   # ImageNet scale, fp32
    python benchmarks/step_profile.py --host     (also: the eager step's host time, by Python function)
    python benchmarks/step_profile.py --unfused  (BatchNorm and the neuron after it as two ops: the fusion's A/B)
                                                 (--sj: SpikingJelly's Spikformer of the same sizes instead of ours)
    python benchmarks/step_profile.py --T 16     (more time steps; --dtypes: each layer's output dtype)
    python benchmarks/step_profile.py --model spikformer_8_512 --batch 32 --eval   (the evaluation forward, no grad)
    python benchmarks/step_profile.py --lm if-T4 (the spiking LM of configs/spiking_lm_gcide.yaml, 6 x 384, batch
                                                 64 x 256 bytes; a `spikeformers bench lm` setting: twin, if-T4, ...)
"""
import os
import sys
from collections import defaultdict

import argparse

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from spikeformers.layers import bn_fire  # noqa: E402
from spikeformers.models import create_model  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="spikformer_4_384"); ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--fp32", action="store_true"); ap.add_argument("--sj", action="store_true")
ap.add_argument("--by-op", action="store_true")
ap.add_argument("--T", type=int, default=None, help="time steps (default: the model's)")
ap.add_argument("--eval", action="store_true", help="the evaluation forward (eval mode, no grad) instead of a step")
ap.add_argument("--dtypes", action="store_true", help="also: each module's output dtype and shape in one forward")
ap.add_argument("--lm", default=None, help="a `spikeformers bench lm` setting: profile that language model instead")
ap.add_argument("--host", action="store_true", help="also: where the eager step's host time goes (cProfile)")
ap.add_argument("--unfused", action="store_true", help="BatchNorm and the neuron after it as two ops (layers/bn_fire.py off)")
args = ap.parse_args()
if args.lm and (args.sj or args.T):
    ap.error("--lm profiles a `bench lm` setting as it is (its T included); it takes neither --sj nor --T")
if args.sj and (args.eval or args.dtypes):
    ap.error("--sj profiles SpikingJelly's training step: no --eval or --dtypes")
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as bench model does
torch.backends.cudnn.benchmark = True
torch.manual_seed(0)
bn_fire.ENABLED = not args.unfused
dev = "cuda"
kw = {} if args.T is None else {"T": args.T}
if args.lm:
    from types import SimpleNamespace  # noqa: E402
    from spikeformers.speed import lm  # noqa: E402
    lm_sizes = SimpleNamespace(dim=384, depth=6, heads=6, seq_len=256)
if args.sj:
    from spikeformers.speed import model as bm  # noqa: E402
    from spikingjelly.activation_based import functional as sjf  # noqa: E402
    bm.SPEC.update(model=args.model, T=args.T or 4); sjm = bm._sj_model().to(dev)
    m = lambda x: (sjf.reset_net(sjm), sjm(x).mean(0))[1]  # noqa: E731
    params = sjm.parameters()
else:
    if args.lm:
        m = lm.build(args.lm, lm_sizes)
    else:
        m = create_model(args.model, **kw).to(dev).to(memory_format=torch.channels_last)
    params = m.parameters()
    if args.eval:
        m.eval()
opt = torch.optim.AdamW(params, lr=1e-3, fused=True)
cfg = create_model(args.model, **kw).cfg if args.sj else m.cfg
if args.lm:  # random bytes, next-token targets
    ids = torch.randint(0, cfg.vocab_size, (args.batch, cfg.block_size + 1), device=dev)
    x, y = ids[:, :-1], ids[:, 1:].flatten()
else:
    x = torch.rand(args.batch, cfg.in_chans, cfg.img_size, cfg.img_size, device=dev)
    y = torch.randint(0, cfg.num_classes, (args.batch,), device=dev)
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=not args.fp32), torch.set_grad_enabled(not args.eval):
        out = m(x)
    if args.eval:
        return
    loss = F.cross_entropy(out.float().flatten(0, -2), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
if args.dtypes:  # which dtype each layer hands on under autocast (a fp32 output costs twice the bytes)
    seen = {}
    hooks = [mod.register_forward_hook(lambda mod, i, o, n=n: seen.setdefault(n, o)) for n, mod in m.named_modules()
             if n and (n.count(".") <= 2 or n.split(".")[1] == "0")]  # the first block in full, the others' top
    step()
    for hk in hooks:
        hk.remove()
    for n, o in list(seen.items())[:60]:
        print(f"  {n:40s} {str(o.dtype) if torch.is_tensor(o) else type(o).__name__:16s} "
              f"{tuple(o.shape) if torch.is_tensor(o) else ''}")
for _ in range(5): step()
torch.cuda.synchronize()
if args.host:  # the eager step's host time: wall time per step, then the functions that spend it
    import cProfile, pstats, time  # noqa: E401
    t0 = time.perf_counter()
    for _ in range(5): step()
    host = (time.perf_counter() - t0) / 5  # the host may run ahead of the GPU: launch time, not step time
    torch.cuda.synchronize()
    print(f"host time per eager step (launching only): {1e3 * host:.1f} ms; "
          f"with the GPU: {1e3 * (time.perf_counter() - t0) / 5:.1f} ms")
    pr = cProfile.Profile(); pr.enable()
    for _ in range(3): step()
    pr.disable(); torch.cuda.synchronize()
    pstats.Stats(pr).sort_stats("tottime").print_stats(30)
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(3): step()
    torch.cuda.synchronize()
fam = defaultdict(float); total = 0.0
rows = []
for e in prof.key_averages():
    t = e.self_device_time_total if hasattr(e, "self_device_time_total") else e.self_cuda_time_total
    if t <= 0: continue
    n = e.key.lower(); total += t
    k = ("gemm/conv" if any(s in n for s in ("gemm", "cutlass", "sm90", "conv", "xmma", "cublas", "nvjet")) else
         "batchnorm" if ("batch_norm" in n or "bn_" in n or "batchnorm" in n or "welford" in n
                         or n.startswith(("partial_sums", "finalize_", "affine"))) else  # ours: kernels/triton_batchnorm.py
         "layernorm" if "layer_norm" in n else
         "attention (flash)" if ("flash" in n or "fmha" in n) else
         "bn+neuron (ours)" if n.startswith("bn_lif_") else  # kernels/triton_bn_fire.py
         "neuron (ours)" if ("lif_" in n or "ternary_" in n or "asn_" in n) else
         "wkv (ours)" if n.startswith("wkv_") else
         "copy/transpose" if ("copy" in n or "transpose" in n or "contiguous" in n) else
         "elementwise" if ("elementwise" in n or "vectorized" in n or "unrolled" in n) else
         "reduce" if "reduce" in n else "optimizer" if ("adam" in n or "multi_tensor" in n) else "other")
    fam[k] += t; rows.append((t, e.key[:110], e.count))
print(f"GPU time per {'forward' if args.eval else 'step'}: {total / 3 / 1e3:.2f} ms")
for k, v in sorted(fam.items(), key=lambda kv: -kv[1]):
    print(f"  {k:16s} {v / 3 / 1e3:7.2f} ms  {100 * v / total:5.1f} %")
for t, k, c in sorted(rows, reverse=True)[:30]:
    print(f"  {t / 3 / 1e3:7.3f} ms  x{c // 3:4d}  {k}")
if args.by_op:  # which op and shape launched the copies and reductions
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        step()
        torch.cuda.synchronize()
    ops = [e for e in prof.key_averages(group_by_input_shape=True) if e.key.startswith("aten::")]
    print("aten ops by GPU time, one step:")
    for e in sorted(ops, key=lambda e: -e.self_device_time_total)[:40]:
        print(f"  {e.self_device_time_total / 1e3:7.3f} ms  x{e.count:3d}  {e.key} {str(e.input_shapes)[:120]}")
