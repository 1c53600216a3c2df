#!/usr/bin/env bash
# ANN-to-SNN conversion on Fashion-MNIST (GPU): QKFormer-4-384 trained as the QANN that keeps the spiking
# attention form (model.twin=qann_sa) and as the direct-trained SNN for the same minutes, then the QANN converted
# to its equivalent SNN at T = 4, 8, 16, 32, 64 (`spikeformers to-snn`). Writes runs under $OUT (default
# ./bench_out/conversion) and prints the three-way table (accuracy, firing rate, energy) last.
#   bash benchmarks/conversion_fashion_mnist.sh            # EPOCHS=8 (about 2 minutes each on an H100)
#   EXTRA="model.name=qkformer_tiny data=digits run.max_steps=2" EPOCHS=1 bash benchmarks/conversion_fashion_mnist.sh
#                                                          # the same steps in seconds on a CPU (a check)
set -eu
cd "$(dirname "$0")/.."
OUT="${OUT:-./bench_out}/conversion"
EPOCHS="${EPOCHS:-8}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
for run in qann:qann_sa snn:null; do
  "$PY" -m spikeformers train configs/qkformer_4_384_fashion_mnist.yaml model.twin=${run#*:} run.ema=null \
    schedule.epochs=$EPOCHS schedule.warmup_epochs=1 run.out_dir="$OUT" run.name=${run%%:*} ${EXTRA:-} -q
done
"$PY" -m spikeformers to-snn "$OUT/qann" --T 4 8 16 32 64 -q
"$PY" - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
snn = json.load(open(os.path.join(out, "snn", "summary.json")))
conv = json.load(open(os.path.join(out, "qann_snn.json")))
m = conv["metric"]
e = snn.get("energy") or {}
print(f"{'model':<22} {'T':>3} {m:>10} {'rate %':>7} {'45nm uJ':>9} {'memory uJ':>10}")
print(f"{'direct-trained SNN':<22} {4:>3} {snn[m]:>10.4f} {100 * snn['mean_firing_rate']:>7.2f} "
      f"{e.get('snn_uJ', float('nan')):>9.3f} {e.get('snn_lemaire_uJ', float('nan')):>10.3f}")
q = conv["qann"]
print(f"{'QANN (twin=qann_sa)':<22} {'-':>3} {q[m]:>10.4f} {'-':>7} {q.get('energy_45nm_uJ', float('nan')):>9.3f} "
      f"{q.get('energy_memory_uJ', float('nan')):>10.3f}")
for r in conv["snn"]:
    print(f"{'converted SNN':<22} {r['T']:>3} {r[m]:>10.4f} {100 * r['mean_firing_rate']:>7.2f} "
          f"{r['energy_45nm_uJ'] or float('nan'):>9.3f} {r['energy_memory_uJ'] or float('nan'):>10.3f}")
PY
