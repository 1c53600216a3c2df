"""The one gate in front of every Triton kernel: may a kernel run on this tensor, and which module holds it.

A neuron asks `kernels_for(x, backend, op)`:
- a CUDA tensor with Triton importable: the op's module ("auto" and "triton");
- anything else with "auto": None, and the caller runs its plain PyTorch reference;
- anything else with "triton": an error that says why, except a CPU tensor under `TRITON_INTERPRET=1`,
  which runs the kernel in Triton's interpreter (how the CPU tests check them).
BatchNorm, max-pool and the attention product, whose "triton" backend falls back to torch where no kernel
applies, ask `usable(x, backend)` and then `load(op)`.

Nothing here imports Triton until a kernel is about to run, so `import spikeformers` never does. Each op
module is imported once and cached: an import statement per call costs host time on every launch.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Dict, Optional

from torch import Tensor

__all__ = ["OPS", "triton_available", "interpreting", "usable", "kernels_for", "load", "refuse", "kernel_status"]

#: the op modules of this package (each imports Triton): the name a caller asks for -> its module
OPS = ("neuron", "neuron_asn", "batchnorm", "bn_fire", "maxpool", "fused_product", "bitpack", "wkv")

_TRITON: Optional[bool] = None  # cached: is triton importable?
_MODULES: Dict[str, ModuleType] = {}


def triton_available() -> bool:
    global _TRITON
    if _TRITON is None:
        try:
            import triton  # noqa: F401  (optional dependency: only asked once a kernel may run)
        except ImportError:
            _TRITON = False
        else:
            _TRITON = True
    return _TRITON


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def refuse(who: str, why: str) -> None:
    """The error of a caller whose backend is "triton" when no kernel can run."""
    raise RuntimeError(f"{who}(backend='triton'): {why}; use backend='auto' (kernel where one applies, else the "
                       f"PyTorch reference) or backend='torch'")


def load(op: str) -> ModuleType:
    """The op's kernel module (imports Triton on first use), cached."""
    mod = _MODULES.get(op)
    if mod is None:
        if op not in OPS:
            raise ValueError(f"unknown kernel op {op!r}; valid ops: {', '.join(OPS)}")
        mod = _MODULES[op] = importlib.import_module(f"{__package__}.{op}")
    return mod


def usable(x: Tensor, backend: str) -> bool:
    """May a kernel run on `x` under `backend`: a CUDA tensor, or "triton" under the interpreter, and Triton
    importable. Never raises (layers whose "triton" backend falls back quietly ask this). The device is
    checked first: on the CPU nothing may import Triton."""
    return backend != "torch" and (x.is_cuda or (backend == "triton" and interpreting())) and triton_available()


def kernels_for(x: Tensor, backend: str, op: str, who: str = "") -> Optional[ModuleType]:
    """The op's kernel module when a kernel may run on `x` under `backend`, else None (the reference runs);
    with backend "triton", an error naming `who` instead of None. The device is checked first: on the CPU
    nothing may import Triton."""
    if backend == "torch":
        return None
    strict = backend == "triton"
    if not x.is_cuda:
        if not strict:
            return None
        if not interpreting():
            refuse(who or op, f"the Triton kernels need a CUDA tensor, got a {x.device.type} tensor "
                              "(TRITON_INTERPRET=1 runs them in Triton's CPU interpreter, for tests)")
    mod = _MODULES.get(op)
    if mod is not None:
        return mod
    if not triton_available():
        if strict:
            refuse(who or op, "triton cannot be imported")
        return None
    return load(op)


def kernel_status() -> str:
    """One line for `spikeformers info`: which kernels exist and whether they would run here."""
    from importlib import metadata

    import torch

    try:
        version = metadata.version("triton")
    except metadata.PackageNotFoundError:
        return "reference PyTorch neurons only (triton is not installed)"
    covered = ("if, lif, plif, ternary, asn (fp32/bf16/fp16, fused over T, forward and backward); BatchNorm, "
               "BatchNorm + neuron, max-pool, the Q(K^T V) attention product, RWKV's WKV recurrence")
    if not torch.cuda.is_available():
        return f"triton {version}: {covered}; inactive here (no CUDA device): reference PyTorch on the CPU"
    return f"triton {version}: {covered}; active on CUDA for backend='auto'|'triton'"
