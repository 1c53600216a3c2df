#!/usr/bin/env bash
# One GPU run (<= 9 minutes wall on one H100): GPU tests, then the neuron benchmark, then the model
# benchmark. Logs and JSON records go to "$OUT" (default ./bench_out); a short summary prints last.
#
#   bash benchmarks/gpu_session.sh                 # from the repository root
#   WHEELS=path/to/wheels bash benchmarks/gpu_session.sh   # first pip-installs spikingjelly + loguru from there
#
# Each stage has its own time limit, so a slow or failing stage cannot eat the others' time.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-./bench_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$PWD/.triton_cache}"
PY="${PYTHON:-python3}"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

if [ -n "${WHEELS:-}" ] && [ -d "$WHEELS" ]; then
  stamp "installing wheels from $WHEELS"
  "$PY" -m pip install --no-index --no-deps --quiet "$WHEELS"/*.whl 2>&1 | tail -3
fi

stamp "environment"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader 2>&1
  "$PY" - <<'EOF'
import importlib.metadata as md, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for d in ("triton", "spikingjelly", "loguru", "h5py"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "MISSING")
from spikeformers.kernels import kernel_status
print("kernels:", kernel_status())
EOF
} 2>&1 | tee "$OUT/env.txt"

stamp "1/3 GPU tests (pytest -m gpu)"
timeout 150 "$PY" -m pytest -m gpu -p no:cacheprovider tests/ --durations=8 > "$OUT/gpu_tests.log" 2>&1
echo "exit $?" >> "$OUT/gpu_tests.log"
tail -12 "$OUT/gpu_tests.log"

stamp "2/3 neuron benchmark"
timeout 170 "$PY" benchmarks/neuron_kernel.py --sj-backends auto torch --compile-T 4 --min-ms 40 \
  --out "$OUT/neuron.json" > "$OUT/neuron.log" 2>&1
echo "exit $?" >> "$OUT/neuron.log"

stamp "3/3 model benchmark"
timeout 190 "$PY" benchmarks/model_train.py --batches 64 128 --compile-batches 128 --steps 20 --warmup 4 --check-steps 20 \
  --out "$OUT/model.json" > "$OUT/model.log" 2>&1
echo "exit $?" >> "$OUT/model.log"

stamp "done; summary"
{
  echo "== env";  cat "$OUT/env.txt"
  echo "== gpu tests"; grep -E "passed|failed|error|exit" "$OUT/gpu_tests.log" | tail -4
  echo "== neuron (ms = forward+backward per call; ratios = their time / ours)"
  if grep -q "^dtype " "$OUT/neuron.log"; then sed -n '/^dtype /,$p' "$OUT/neuron.log" | cut -c1-200
  else tail -40 "$OUT/neuron.log" | cut -c1-200; fi
  echo "== model (training step; x best SJ = images/s over SpikingJelly's fastest setting at that batch)"
  if grep -q "^setting " "$OUT/model.log"; then sed -n '/^setting /,$p' "$OUT/model.log" | cut -c1-200
  else tail -30 "$OUT/model.log" | cut -c1-200; fi
} > "$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
