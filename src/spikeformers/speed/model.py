"""Model benchmark: a spiking transformer's training step, ours vs SpikingJelly 2.0's Spikformer.

    spikeformers bench model [--batches 64 128] [--settings ...] [--check-steps 20] [--out model.json]
    spikeformers bench model --model spikformer_8_512 --batches 32 --T 4       # ImageNet scale, 224 x 224
    spikeformers bench model --model spikformer_8_512 --batches 32 --inference # evaluation forwards
    python benchmarks/model_train.py ...       (the same code)

`--model` is any classification model of the zoo at its own input size (default `spikformer_4_384`,
CIFAR, whose peer is SpikingJelly's `spikformer_cifar10`). SpikingJelly's peer of a
`spikformer_<depth>_<dim>` model at 224 x 224 is its `Spikformer` with the same depth, width and heads
(patch 16, 1000 classes); other models (SDT, QKFormer) have no peer there and run ours alone.

Each setting trains on the same synthetic batches of the model's input shape (on the GPU):
forward, cross-entropy, backward, fused AdamW step. Reported: images/s over the timed steps (after
warm-up; compile time excluded), peak `torch.cuda.max_memory_allocated` over those steps.

Settings (`--settings`; SpikingJelly's are tried in each of its modes so its fastest one is the peer):
  ours-fp32, ours-bf16 (autocast), ours-bf16-nchw (no channels_last), ours-bf16-compile (torch.compile),
  ours-bf16-compile-cg (torch.compile with CUDA graphs: mode="reduce-overhead"),
  ours-bf16-reference (our PyTorch neurons instead of the kernels),
  ours-bf16-graph, ours-fp32-graph (forward + backward replayed as one CUDA graph: run.cuda_graph=true),
  ours-make-step (`spikeformers.train.make_step(model, optimizer, amp=bf16)` with its defaults: the
  one-call step for Python users, which graphs itself on CUDA),
  ours-bf16-unfused, ours-bf16-graph-unfused (BatchNorm and the neuron after it as two ops: the fusion's
  own A/B), ours-bf16-graph-packed (binary spikes saved as bits: run.memory=packed, the packing's own A/B),
  sj-fp32, sj-bf16 (plain autocast: its neurons fall back to PyTorch for bf16 state),
  sj-bf16-prec (its precision API: bf16 neuron state, Triton neurons), sj-fp32-torch (its PyTorch neurons)

Settings that change the result are stated in every row and set alike for every contender: TF32 for fp32
matmuls and convolutions (`--tf32 off on`, the default, runs each fp32 setting in both pairings: IEEE fp32
against IEEE fp32, TF32 against TF32; 16-bit settings run once) and cudnn.benchmark (`--cudnn-benchmark`,
default off). `x best SJ` compares with SpikingJelly's fastest setting of the same TF32 value and mode
(training or inference), `x SJ same` with its setting of the same precision. `--inference` times the
evaluation forward (eval mode, no grad): ours eager, ours replayed as CUDA graphs (`models/inference.py`, what
`spikeformers eval` runs on CUDA) and SpikingJelly's eval mode.

Same loss from the same start (`--check-steps N`, fp32, TF32 off): SpikingJelly's initial weights are
mapped into ours (bench/sj.py; its stem pools are moved after the LIF, the official order), both
train N steps on the same batches at a fixed learning rate, and the loss gap is compared with the
gap that a one-ulp perturbation of our initial weights opens (the run-to-run noise of a spiking
network, whose thresholds amplify rounding differences).
"""
from __future__ import annotations

import argparse
import functools
import gc
import re
import time
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from ..layers import bn_fire
from ..neurons import base as neuron_base
from ..models import create_model
from ..models.inference import InferenceGraph
from ..train.cuda_graph import GraphedStep
from ..train.fast_step import make_step
from . import common
from .common import peak_memory_gb, provenance, require_cuda, reset_peak_memory, sync, table, write_record
from ..models.convert import sj_to_ours, unmapped_parameters
from .sj import import_spikingjelly, match_pool_order, neuron_backend, set_neuron_backend

__all__ = ["SETTINGS", "add_arguments", "run", "main", "loss_check"]

BF16 = torch.bfloat16
SETTINGS: Dict[str, Dict[str, Any]] = {
    "ours-fp32": dict(impl="ours", amp=None),
    "ours-bf16": dict(impl="ours", amp=BF16),
    "ours-bf16-nchw": dict(impl="ours", amp=BF16, channels_last=False),
    "ours-bf16-compile": dict(impl="ours", amp=BF16, compile=True),
    "ours-bf16-compile-cg": dict(impl="ours", amp=BF16, compile=True, compile_mode="reduce-overhead"),
    "ours-bf16-reference": dict(impl="ours", amp=BF16, neuron_backend="torch"),
    "ours-bf16-graph": dict(impl="ours", amp=BF16, graph=True),
    "ours-fp32-graph": dict(impl="ours", amp=None, graph=True),
    "ours-make-step": dict(impl="ours", amp=BF16, make_step=True),
    "ours-bf16-unfused": dict(impl="ours", amp=BF16, fuse_bn=False),
    "ours-bf16-graph-unfused": dict(impl="ours", amp=BF16, graph=True, fuse_bn=False),
    "ours-bf16-graph-packed": dict(impl="ours", amp=BF16, graph=True, pack=True),
    "sj-fp32": dict(impl="sj", amp=None),
    "sj-bf16": dict(impl="sj", amp=BF16),
    "sj-bf16-prec": dict(impl="sj", precision="bf16"),
    "sj-fp32-torch": dict(impl="sj", amp=None, sj_backend="torch"),
    # inference: eval mode, no grad, the same batches (`--inference`)
    "ours-eval-fp32": dict(impl="ours", amp=None, eval=True),
    "ours-eval-bf16": dict(impl="ours", amp=BF16, eval=True),
    "ours-eval-bf16-graph": dict(impl="ours", amp=BF16, eval=True, graph=True),
    "sj-eval-fp32": dict(impl="sj", amp=None, eval=True),
    "sj-eval-bf16": dict(impl="sj", amp=BF16, eval=True),
    "sj-eval-bf16-prec": dict(impl="sj", precision="bf16", eval=True),
}
DEFAULT = ["ours-fp32", "ours-bf16", "ours-bf16-graph", "ours-fp32-graph", "ours-bf16-compile", "sj-fp32", "sj-bf16",
           "sj-bf16-prec"]
INFERENCE = ["ours-eval-fp32", "ours-eval-bf16", "ours-eval-bf16-graph", "sj-eval-fp32", "sj-eval-bf16", "sj-eval-bf16-prec"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="spikformer_4_384", help="our model, any zoo classifier (SpikingJelly's peer: "
                   "spikformer_4_384 at 32 x 32, spikformer_<depth>_<dim> at 224 x 224)")
    p.add_argument("--T", type=int, default=4, help="time steps (both models)")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    p.add_argument("--settings", nargs="+", default=None, choices=list(SETTINGS),
                   help=f"default: {' '.join(DEFAULT)}; with --inference: {' '.join(INFERENCE)}")
    p.add_argument("--inference", action="store_true", help="the evaluation forward (no grad) instead of training steps")
    p.add_argument("--tf32", nargs="+", default=["off", "on"], choices=["off", "on"],
                   help="TF32 for fp32 matmuls and convolutions, for every contender alike: each fp32 setting runs "
                        "once per value given (16-bit settings run once, under the first)")
    p.add_argument("--cudnn-benchmark", default="off", choices=["off", "on"],
                   help="torch.backends.cudnn.benchmark for every contender")
    p.add_argument("--compile-batches", type=int, nargs="*", default=None,
                   help="batches at which the *-compile settings run (default: all; each compiles anew, ~1 min)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per setting")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    p.add_argument("--check-steps", type=int, default=20, help="steps of the same-loss check (0: skip)")
    p.add_argument("--check-batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="fixed AdamW learning rate")
    p.add_argument("--out", default=None, help="JSON record path")
    p.add_argument("--dry-run", action="store_true", help="a tiny model on the CPU: checks the code, measures nothing")


TINY = dict(dim=48, num_heads=4, depth=1, T=2)  # --dry-run sizes (both models)


SPEC: Dict[str, Any] = {"model": "spikformer_4_384", "T": 4}  # what `run` benchmarks (set from its arguments)


def _ours(neuron_backend: str = "auto"):
    opts = {} if neuron_backend == "auto" else {"neuron_opts": {"backend": neuron_backend}}
    size = TINY if common.DEVICE.type == "cpu" else {"T": SPEC["T"]}
    return create_model(SPEC["model"], **opts, **size)


@functools.lru_cache(maxsize=None)
def _model_cfg(name: str, tiny: bool = False):
    """A zoo model's config (built once: an ImageNet-size model takes seconds to initialise)."""
    return create_model(name, **(TINY if tiny else {})).cfg


def _input_shape():
    """(channels, side, classes) of our model's input and output."""
    cfg = _model_cfg(SPEC["model"], common.DEVICE.type == "cpu")
    return cfg.in_chans, cfg.img_size, cfg.num_classes


def sj_peer(model: str) -> Optional[Dict[str, Any]]:
    """SpikingJelly `Spikformer` arguments with our `model`'s sizes, or None when it has no peer there."""
    m = re.fullmatch(r"spikformer_(\d+)_(\d+)", model)
    if model == "spikformer_4_384":
        return {"cifar10": True}
    if not m:
        return None
    cfg = _model_cfg(model)
    if cfg.img_size != 224:
        return None
    return dict(img_size_h=224, img_size_w=224, patch_size=16, num_classes=cfg.num_classes, embed_dims=cfg.dim,
                num_heads=cfg.num_heads, mlp_ratio=4.0, depths=cfg.depth)


def _sj_model():
    from spikingjelly.activation_based.model.spikformer import Spikformer, spikformer_cifar10

    if common.DEVICE.type == "cpu":
        return Spikformer(T=TINY["T"], in_channels=3, img_size_h=32, img_size_w=32, patch_size=4, num_classes=10,
                          embed_dims=TINY["dim"], num_heads=TINY["num_heads"], mlp_ratio=4.0, depths=TINY["depth"])
    peer = sj_peer(SPEC["model"])
    if peer is None:
        raise RuntimeError(f"SpikingJelly has no peer of {SPEC['model']}")
    return spikformer_cifar10(T=SPEC["T"]) if peer.get("cifar10") else Spikformer(T=SPEC["T"], in_channels=3, **peer)


def _trainer(setting: Dict[str, Any], lr: float, model=None):
    """(model, step(x, y) -> loss) for one setting; `model` overrides the freshly built one."""
    amp = setting.get("amp")
    if setting["impl"] == "ours":
        model = (model if model is not None else _ours(setting.get("neuron_backend", "auto"))).to(common.DEVICE)
        if setting.get("channels_last", True):
            model = model.to(memory_format=torch.channels_last)
        fwd = torch.compile(model, mode=setting.get("compile_mode")) if setting.get("compile") else model
        ctx: Callable = (lambda: torch.autocast(common.DEVICE.type, dtype=amp)) if amp else nullcontext
        logits = fwd
    else:
        ab = import_spikingjelly()
        if ab is None:
            raise RuntimeError("spikingjelly is not installed")
        set_neuron_backend(setting.get("sj_backend", "auto"))
        model = (model if model is not None else _sj_model()).to(common.DEVICE)
        ctx = (lambda: torch.autocast(common.DEVICE.type, dtype=amp)) if amp else nullcontext
        if setting.get("precision"):
            from spikingjelly.activation_based.precision import prepare_model_for_precision

            art = prepare_model_for_precision(model, common.DEVICE, {"mode": setting["precision"],
                                                              "neuron_storage": setting["precision"]})
            model, ctx = art.model, art.autocast_context
        reset = ab.functional.reset_net

        def logits(x, m=model):
            reset(m)
            return m(x).mean(0)  # its head returns per-step logits [T, B, classes]
        if setting.get("eval"):
            model.eval()
    if setting.get("eval"):
        model.eval()
        forward = InferenceGraph(model) if setting.get("graph") else logits

        @torch.no_grad()
        def infer(x, y):
            with ctx():
                return forward(x)

        return model, infer

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0,
                            fused=common.DEVICE.type == "cuda")

    if setting.get("make_step"):
        return model, make_step(model, opt, amp=amp)  # its defaults: graphed on CUDA

    if setting.get("graph"):
        graphed = GraphedStep(model, F.cross_entropy, amp)

        def step(x, y):
            loss, _ = graphed(x, y)  # gradients written by the replay; no zero_grad
            opt.step()
            return loss.clone()

        return model, step

    def step(x, y):
        with ctx():
            out = logits(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return model, step


def _batches(n: int, B: int, seed: int = 0):
    dev = common.DEVICE
    gen = torch.Generator(device=dev).manual_seed(seed)
    C, S, K = _input_shape()
    return [(torch.rand(B, C, S, S, device=dev, generator=gen),
             torch.randint(0, K, (B,), device=dev, generator=gen)) for _ in range(n)]


def _free() -> None:
    gc.collect()
    if common.DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def throughput(name: str, B: int, args, tf32: bool = False) -> Dict[str, Any]:
    setting = SETTINGS[name]
    rec: Dict[str, Any] = dict(setting=name, batch=B, tf32=tf32, cudnn_benchmark=args.cudnn_benchmark == "on")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = args.cudnn_benchmark == "on"
    bn_fire.ENABLED = setting.get("fuse_bn", True)
    neuron_base.PACK_SPIKES = setting.get("pack", False)
    try:
        model, step = _trainer(setting, args.lr)
        data = _batches(4, B)
        t0 = time.perf_counter()
        for i in range(args.warmup):
            step(*data[i % 4])
        sync()
        rec["warmup_s"] = time.perf_counter() - t0
        if setting["impl"] == "sj" and common.DEVICE.type == "cuda":
            rec["sj_neuron_impl"] = neuron_backend(common.DEVICE)
        graphed = (setting.get("graph") or setting.get("make_step")) and common.DEVICE.type == "cuda" \
            and not setting.get("eval")
        if graphed:
            _free()  # drop the warm-up's cached blocks: what stays reserved is live tensors + the graph's pool
        reset_peak_memory()
        t0 = time.perf_counter()
        for i in range(args.steps):
            loss = step(*data[i % 4])
        sync()
        dt = time.perf_counter() - t0
        # a graph's activations sit in its private pool, which max_memory_allocated does not see after
        # capture: count its reserved memory instead (an upper bound)
        peak = torch.cuda.max_memory_reserved() / 1e9 if graphed else peak_memory_gb()
        rec.update(images_per_s=args.steps * B / dt, step_ms=1e3 * dt / args.steps, peak_gb=peak)
        if not setting.get("eval"):
            rec["last_loss"] = float(loss)
    except Exception as e:  # OOM or a missing peer mode: record it, go on
        rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    finally:
        model = step = None
        bn_fire.ENABLED, neuron_base.PACK_SPIKES = True, False
        _free()
    print(f"  {name:>20} batch {B:4d} tf32 {'on ' if tf32 else 'off'}: " + (f"{rec['images_per_s']:8.0f} img/s, {rec['step_ms']:.1f} ms/step, "
                                              f"peak {rec['peak_gb'] or 0:.2f} GB" if "images_per_s" in rec else rec["error"])
          + (f" [SJ neurons: {rec['sj_neuron_impl']}]" if "sj_neuron_impl" in rec else ""), flush=True)
    return rec


def loss_check(steps: int, B: int, lr: float) -> Dict[str, Any]:
    """Loss after each of `steps` steps from the same start: SpikingJelly vs ours vs ours perturbed."""
    ab = import_spikingjelly()
    if ab is None:
        return {"error": "spikingjelly is not installed"}
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(0)
        sj = _sj_model()
        start = sj_to_ours(sj.state_dict(), _ours().state_dict())
        match_pool_order(sj)
        runs = {}
        for name in ("spikingjelly", "ours", "ours+1ulp", "ours-reference"):
            if name == "spikingjelly":
                model, setting = sj, dict(impl="sj", amp=None)
            else:
                model = _ours("torch" if name == "ours-reference" else "auto")
                state = dict(start)
                if name == "ours+1ulp":  # the noise yardstick: every weight moved by about one ulp
                    g = torch.Generator().manual_seed(1)
                    state = {k: (v * (1 + 2.0 ** -23 * torch.randint(0, 2, v.shape, generator=g) * 2 - 2.0 ** -23)
                                 if v.is_floating_point() and "running" not in k else v) for k, v in state.items()}
                model.load_state_dict(state)
                for k, p in model.named_parameters():
                    if k in unmapped_parameters(start):
                        p.requires_grad_(False)  # zero biases in front of BN: no SpikingJelly counterpart
                setting = dict(impl="ours", amp=None, channels_last=False)
            model, step = _trainer(setting, lr, model=model)
            data = _batches(steps, B, seed=123)
            runs[name] = [float(step(x, y)) for x, y in data]
            model = step = None
            _free()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32

    def gap(a, b):
        return max(abs(u - v) for u, v in zip(runs[a], runs[b]))

    out = {"steps": steps, "batch": B, "lr": lr, "losses": runs,
           "gap_sj_ours": gap("spikingjelly", "ours"), "gap_noise_1ulp": gap("ours", "ours+1ulp"),
           "gap_ours_reference": gap("ours", "ours-reference"),
           "first_step_gap": abs(runs["spikingjelly"][0] - runs["ours"][0])}
    out["within_noise"] = bool(out["first_step_gap"] < 1e-4
                               and out["gap_sj_ours"] <= 3 * max(out["gap_noise_1ulp"], out["gap_ours_reference"]) + 1e-4)
    return out


def summarize(rows: List[Dict[str, Any]], check: Optional[Dict[str, Any]]) -> str:
    head = ["setting", "batch", "TF32", "img/s", "ms/step", "peak GB", "x best SJ", "x SJ same", "note"]
    out = [head]
    for r in rows:
        sj_best = max((q.get("images_per_s", 0) for q in rows if q["batch"] == r["batch"]
                       and q["setting"].startswith("sj") and q.get("tf32") == r.get("tf32")
                       and bool(SETTINGS[q["setting"]].get("eval")) == bool(SETTINGS[r["setting"]].get("eval"))), default=0)
        # the SpikingJelly setting of the same precision and mode (fp32 vs fp32, bf16 vs bf16 autocast)
        twin = "sj-" + r["setting"].split("-", 1)[1].split("-graph")[0] if r["setting"].startswith("ours-") else None
        same = next((q.get("images_per_s") for q in rows if q["setting"] == twin and q["batch"] == r["batch"]
                     and q.get("tf32") == r.get("tf32")), None)
        ips = r.get("images_per_s")
        out.append([r["setting"], r["batch"], "on" if r.get("tf32") else "off", ips, r.get("step_ms"), r.get("peak_gb"),
                    (ips / sj_best) if (ips and sj_best) else None, (ips / same) if (ips and same) else None,
                    r.get("error", r.get("sj_neuron_impl", ""))[:60]])
    text = table(out)
    if check and "gap_sj_ours" in check:
        L = check["losses"]
        text += (f"\nsame-loss check ({check['steps']} steps, batch {check['batch']}, fp32, lr {check['lr']}): "
                 f"final loss SJ {L['spikingjelly'][-1]:.4f} / ours {L['ours'][-1]:.4f}; max gap SJ-ours "
                 f"{check['gap_sj_ours']:.2e}, noise (ours vs ours+1ulp) {check['gap_noise_1ulp']:.2e}, "
                 f"ours kernel vs reference {check['gap_ours_reference']:.2e}, first step {check['first_step_gap']:.1e} "
                 f"-> {'within noise' if check['within_noise'] else 'NOT within noise'}")
    elif check:
        text += f"\nsame-loss check: {check.get('error')}"
    return text


def run(args) -> int:
    common.set_dry_run(args.dry_run)
    if args.dry_run:
        args.batches, args.steps, args.warmup = [4], 2, 1
        args.check_steps, args.check_batch = min(args.check_steps, 3), 4
    msg = require_cuda("model")
    if msg:
        print(msg)
        return 2
    SPEC.update(model=args.model, T=args.T)
    if args.settings is None:
        args.settings = INFERENCE if args.inference else DEFAULT
    if sj_peer(args.model) is None:
        args.settings = [n for n in args.settings if SETTINGS[n]["impl"] == "ours"]
        print(f"SpikingJelly has no peer of {args.model}: ours alone")
    if args.model != "spikformer_4_384":
        args.check_steps = 0  # the same-loss check maps SpikingJelly's CIFAR weights into ours
    rows: List[Dict[str, Any]] = []
    record = {"suite": "model", "model": args.model, "T": args.T, "provenance": provenance(), "args": vars(args), "rows": rows, "complete": False}
    for B in args.batches:
        for name in args.settings:
            if SETTINGS[name].get("compile") and args.compile_batches is not None and B not in args.compile_batches:
                continue
            s = SETTINGS[name]
            fp32 = s.get("amp") is None and not s.get("precision")
            for tf32 in (args.tf32 if fp32 else args.tf32[:1]):  # TF32 changes fp32 matmuls only
                rows.append(throughput(name, B, args, tf32 == "on"))
                write_record(args.out, record, quiet=True)  # partial results survive a time limit
    record["loss_check"] = loss_check(args.check_steps, args.check_batch, args.lr) if args.check_steps else None
    record.update(complete=True, summary=summarize(rows, record["loss_check"]))
    write_record(args.out, record)
    print(record["summary"])
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="spikeformers bench model", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))
