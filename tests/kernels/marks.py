"""Markers of the kernel tests (this folder's conftest switches Triton's interpreter on without CUDA).

    @in_interpreter   # the kernels in Triton's CPU interpreter (no CUDA here)
    @gpu              # the compiled kernels on a CUDA device
"""
import pytest
import torch

from spikeformers.kernels import interpreting, triton_available

in_interpreter = pytest.mark.skipif(not (interpreting() and triton_available()),
                                    reason="the interpreter cases run where there is no CUDA device (conftest.py)")
gpu = pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
