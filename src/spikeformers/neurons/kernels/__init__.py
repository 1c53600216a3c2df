"""Fused neuron kernels (Triton). `dispatch(neuron, x)` returns the fused output or None (use the reference).

Rules (`neuron.backend`; "torch" never gets here):
- a CUDA tensor with Triton importable, a neuron type, surrogate and dtype (fp32/bf16/fp16) that a
  kernel covers: the kernel ("auto" and "triton");
- anything else with "auto": None, the plain PyTorch reference;
- anything else with "triton": an error that says why, except a CPU tensor under
  `TRITON_INTERPRET=1`, which runs the kernel in Triton's interpreter (how the CPU tests check it).

Nothing here imports Triton until a kernel is about to run; `import spikeformers` never does.
Design, saved tensors and measured speed: benchmarks/NOTES.md.
"""
from __future__ import annotations

import os
from typing import Optional

from torch import Tensor

__all__ = ["dispatch", "kernel_status", "triton_available", "interpreting"]

_TRITON: Optional[bool] = None  # cached: is triton importable?


def triton_available() -> bool:
    global _TRITON
    if _TRITON is None:
        try:
            import triton  # noqa: F401
        except ImportError:
            _TRITON = False
        else:
            _TRITON = True
    return _TRITON


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _refuse(neuron, why: str) -> None:
    raise RuntimeError(f"{type(neuron).__name__}(backend='triton'): {why}; use backend='auto' (kernel where one "
                       f"applies, else the PyTorch reference) or backend='torch'")


_OPS = None  # the launchers module, once imported (a per-call import statement costs host time)


def dispatch(neuron, x: Tensor) -> Optional[Tensor]:
    global _OPS
    strict = neuron.backend == "triton"
    if not x.is_cuda:
        if not strict:
            return None
        if not interpreting():
            _refuse(neuron, f"the Triton kernels need a CUDA tensor, got a {x.device.type} tensor "
                            "(TRITON_INTERPRET=1 runs them in Triton's CPU interpreter, for tests)")
    if _OPS is None:
        if not triton_available():
            if strict:
                _refuse(neuron, "triton cannot be imported")
            return None
        from . import ops  # imports triton

        _OPS = ops
    out = _OPS.run(neuron, x)
    if out is None and strict:
        _refuse(neuron, f"no kernel covers this neuron (type {type(neuron).__name__}, surrogate "
                        f"{type(getattr(neuron, 'surrogate', None)).__name__}, dtype {x.dtype}); kernels exist for "
                        "IFNode, LIFNode, PLIFNode, TernaryNode and ASNNode (spike mode) with the built-in surrogates, "
                        "in fp32/bf16/fp16")
    return out


def kernel_status() -> str:
    """One line for `spikeformers info`: which kernels exist and whether they would run here."""
    from importlib import metadata

    import torch

    try:
        version = metadata.version("triton")
    except metadata.PackageNotFoundError:
        return "reference PyTorch neurons only (triton is not installed)"
    covered = "if, lif, plif, ternary, asn (fp32/bf16/fp16, fused over T, forward and backward)"
    if not torch.cuda.is_available():
        return f"triton {version}: {covered}; inactive here (no CUDA device): reference PyTorch neurons on the CPU"
    return f"triton {version}: {covered}; active on CUDA for backend='auto'|'triton'"
