"""Every Triton kernel of the library, behind one gate (`gate.py`).

Each op has its Triton kernels in `triton_<op>.py` and its tensor entry points (launchers, autograd
functions, `torch.library` custom ops for torch.compile) in `<op>.py`; the entry points take tensors
and plain numbers, never a module of the library: a neuron, BatchNorm or attention layer supplies its
own parameters. The plain PyTorch reference each kernel is tested against lives with its caller.

    mod = kernels_for(x, backend, "neuron", who="LIFNode")   # None: run the reference
    y = mod.lif(x, None, params)

Importing this package imports no Triton and initialises no CUDA.
"""
from .gate import OPS, interpreting, kernel_status, kernels_for, load, refuse, triton_available, usable

__all__ = ["OPS", "interpreting", "kernel_status", "kernels_for", "load", "refuse", "triton_available", "usable"]
