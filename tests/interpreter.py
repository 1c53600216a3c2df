"""Run a test file's `interp` cases in a child pytest with TRITON_INTERPRET=1: Triton reads the switch when
a kernel is defined, so it must be set before the kernels are imported (the kernel test files:
tests/test_kernels.py, tests/test_batchnorm.py, tests/test_fused_product.py, tests/test_maxpool.py).

    test_interpreter_cases = interpreter_parent(__file__)    # the parent test

    @in_interpreter                                          # runs only in the child
    def test_interp_...(): ...
"""
import os
import subprocess
import sys

import pytest
import torch

from spikeformers.neurons.kernels import interpreting, triton_available

in_interpreter = pytest.mark.skipif(not (interpreting() and triton_available()),
                                    reason="runs in the TRITON_INTERPRET=1 child of the file's interpreter test")
gpu = pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def run_interp_cases(test_file: str) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider", test_file, "-k", "interp"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def interpreter_parent(test_file: str):
    """The test that runs `test_file`'s `interp` cases in the child (skipped in the child itself)."""

    @pytest.mark.skipif(not triton_available(), reason="triton is not installed")
    def test_interpreter_cases():
        if interpreting():
            pytest.skip("already the interpreter child")
        run_interp_cases(test_file)

    return test_interpreter_cases
