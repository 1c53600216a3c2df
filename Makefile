# Set-up and the two main jobs. `make train` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ARGS   ?=

# Without a GPU, install PyTorch's CPU build: a plain `pip install torch` would pull several GB
# of CUDA packages. With one (nvidia-smi present), install the default CUDA build. The CPU build comes
# from PyTorch's CPU index; where that index cannot be reached (it fails within seconds), from the
# configured index (a local wheel store, or a mirror that serves the CPU wheel).
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo yes)
TORCH_CPU_INDEX = https://download.pytorch.org/whl/cpu
PIP_QUIET = -q --disable-pip-version-check
ifeq ($(HAS_GPU),yes)
TORCH_INSTALL = $(BIN)/pip install $(PIP_QUIET) torch
else
TORCH_INSTALL = $(BIN)/pip install $(PIP_QUIET) --timeout 5 --retries 0 --index-url $(TORCH_CPU_INDEX) "torch==2.13.0" \
	|| $(BIN)/pip install $(PIP_QUIET) "torch==2.13.0"
endif

.PHONY: setup setup-test train test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(TORCH_INSTALL)
	$(BIN)/pip install -q --disable-pip-version-check -e ".[data,dense]"
	touch $@

# Test extras: pytest; SpikingJelly 2.0 (the equivalence tests' reference; installed without its
# torchvision/torchaudio requirements, which the neuron modules do not need) with loguru; Triton,
# whose interpreter runs the fused kernels on the CPU in the tests; pytest-xdist for two workers;
# Ray and submitit (the suite launchers' tests); TensorBoard (the logger's test); ONNX and onnxruntime
# (the export tests); Hypothesis (the fuzz tests of overrides, suite files and Hub folders).
$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/pip install -q --disable-pip-version-check pytest pytest-xdist hypothesis loguru "triton==3.6.0" -e ".[suite,loggers,export]"
	$(BIN)/pip install -q --disable-pip-version-check --no-deps "spikingjelly==2.0.0"
	touch $@

setup: $(BIN)/.installed
setup-test: $(BIN)/.installed-test

train: setup
	$(BIN)/spikeformers train $(ARGS)

# Two workers: the suite is many small single-threaded tests (see tests/conftest.py).
test: setup-test
	$(BIN)/pytest -q -n 2 $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
