"""Kernel tests. Without CUDA the kernels run in Triton's CPU interpreter: Triton reads TRITON_INTERPRET when a
kernel is defined, so it is switched on here, before any kernel module is imported (the library imports them
only when a kernel is about to run). With CUDA the compiled kernels run and the interpreter cases skip.

Only `backend="triton"` reaches a kernel on a CPU tensor: `backend="auto"` stays the PyTorch reference on
the CPU whatever this switch says, so the rest of the suite is unaffected by it.
"""
import os

import torch

if not torch.cuda.is_available():  # does not initialise CUDA
    os.environ.setdefault("TRITON_INTERPRET", "1")
