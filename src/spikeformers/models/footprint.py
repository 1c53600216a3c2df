"""How much memory a model needs, known before any of it is allocated: the model is built on the meta device
(shapes without storage, milliseconds) and, for training, run once there on a batch of its input shape.

    meta_model("spikformer_tiny", {"dim": 30000})          # the layout, no memory
    weight_bytes(model)                                    # fp32 parameters and buffers
    training_bytes("spikformer_tiny", {"T": 4}, batch=64)  # {"params", "activations", "total"} in bytes
    available_memory(torch.device("cpu"))                  # bytes a new allocation may take, or None
    fits(need, device)                                     # None, or the bytes available when `need` exceeds them

Training keeps per parameter its fp32 weight, gradient and AdamW's two moments (16 bytes). Activations are
estimated as the sum of every leaf module's output over one forward pass (what backward keeps, within a
small factor: `tests/test_bad_inputs.py` compares it with the tensors autograd saves); they grow linearly
with the batch, the time steps and the number of blocks, so long and deep models are measured at a few
steps and blocks and extrapolated (a meta forward of 1,000 blocks takes most of a minute; two of 2 and 4
blocks, a fraction of a second). The estimate refuses only what cannot fit, so it errs on the generous side.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch
from torch import Tensor, nn

from .registry import create_model

__all__ = ["meta_model", "weight_bytes", "activation_bytes", "training_bytes", "available_memory", "fits",
           "gigabytes"]

#: options that load files or wrap the model: not part of its layout
_NOT_LAYOUT = ("checkpoint", "checkpoint_source")
#: time steps and blocks at which activations are measured; more are extrapolated from these
_MEASURED_T, _MEASURED_DEPTH = 4, (2, 4)


def meta_model(name: str, kwargs: Dict[str, Any]) -> nn.Module:
    """`create_model(name, **kwargs)` on the meta device, its errors as they are (ValueError for bad options);
    the global random state is left as it was."""
    kw = {k: v for k, v in kwargs.items() if k not in _NOT_LAYOUT}
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            return create_model(name, **kw)
    except (RuntimeError, OverflowError) as e:  # sizes whose product overflows torch's counts
        raise ValueError(f"{name} cannot be built with {kw} ({' '.join(str(e).split())[:200]})") from None


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers in fp32 (integer buffers at their own size)."""
    n = sum(p.numel() * 4 for p in model.parameters())
    return n + sum(b.numel() * (4 if b.is_floating_point() else b.element_size()) for b in model.buffers())


def _config(model: nn.Module) -> Any:
    return getattr(model, "cfg", None) or getattr(getattr(model, "model", None), "cfg", None)


def _example(model: nn.Module, batch: int) -> Optional[Tensor]:
    """A meta batch of the model's input shape, read from its config (None: the config does not say)."""
    cfg = _config(model)
    if cfg is None:
        return None
    if hasattr(cfg, "vocab_size") and hasattr(cfg, "block_size"):
        return torch.zeros(batch, cfg.block_size, dtype=torch.long, device="meta")
    if hasattr(cfg, "seq_len") and hasattr(cfg, "in_features"):
        return torch.zeros(batch, cfg.seq_len, cfg.in_features, device="meta")
    if hasattr(cfg, "img_size") and hasattr(cfg, "in_chans"):
        return torch.zeros(batch, cfg.in_chans, cfg.img_size, cfg.img_size, device="meta")
    return None


def activation_bytes(model: nn.Module, batch: int) -> Optional[int]:
    """Bytes of every leaf module's fp32 output over one training-mode forward of a meta batch; None when the
    model's input is unknown or its forward cannot run on the meta device."""
    x = _example(model, max(batch, 2))  # two samples at least: BatchNorm refuses one
    if x is None:
        return None
    total = [0]

    def count(module, inputs, out):
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, Tensor):
                total[0] += t.numel() * max(t.element_size(), 4 if t.is_floating_point() else 1)

    hooks = [m.register_forward_hook(count) for m in model.modules() if not any(True for _ in m.children())]
    was = model.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.train()(x)
    except Exception:  # an op without a meta kernel, a data-dependent shape: no estimate, no refusal
        return None
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return total[0] * batch // max(batch, 2)


def training_bytes(name: str, kwargs: Dict[str, Any], batch: int, amp: bool = False,
                   activations: bool = True) -> Dict[str, Any]:
    """Memory of one training step of `create_model(name, **kwargs)` on batches of `batch` samples: parameters
    with gradients and AdamW moments, plus activations (halved under bf16 autocast; None when unknown, or not
    asked for: recomputation keeps few of them)."""
    model = meta_model(name, kwargs)
    params = 16 * sum(p.numel() for p in model.parameters())
    act = _measured_activations(name, kwargs, model, batch) if activations else None
    if act is not None and amp:
        act //= 2
    return {"params": params, "activations": act, "total": params + (act or 0), "model": model}


def _measured_activations(name: str, kwargs: Dict[str, Any], model: nn.Module, batch: int) -> Optional[int]:
    """`activation_bytes` of the model, measured at no more than a few time steps and blocks: both loops run in
    Python, and activations are linear in each (identical blocks), so the rest is extrapolated exactly."""
    cfg = _config(model)
    steps, depth = getattr(cfg, "T", None), getattr(cfg, "depth", None)
    probe, scale = dict(kwargs), 1.0
    if isinstance(steps, int) and steps > _MEASURED_T:
        probe["T"], scale = _MEASURED_T, steps / _MEASURED_T
    if not isinstance(depth, int) or depth <= _MEASURED_DEPTH[1]:
        act = activation_bytes(model if probe == kwargs else meta_model(name, probe), batch)
        return None if act is None else int(act * scale)
    d1, d2 = _MEASURED_DEPTH
    a1 = activation_bytes(meta_model(name, {**probe, "depth": d1}), batch)
    a2 = activation_bytes(meta_model(name, {**probe, "depth": d2}), batch)
    if a1 is None or a2 is None:
        return None
    return int((a2 + (a2 - a1) * (depth - d2) / (d2 - d1)) * scale)


def available_memory(device: torch.device) -> Optional[int]:
    """Bytes a new allocation may take on `device`: free GPU memory, or the host's available memory (Linux's
    MemAvailable, else the free pages); None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits(need: int, device: torch.device) -> Optional[int]:
    """None when `need` bytes fit on `device` (or nothing is known), else the bytes available there."""
    free = available_memory(device)
    return None if free is None or need <= free else free


def gigabytes(n: int) -> str:
    """Bytes as a short decimal size: '8.6 GB', '1.6 TB', '12 MB'."""
    return f"{n / 1e12:.1f} TB" if n >= 1e12 else f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
