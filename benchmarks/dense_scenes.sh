#!/usr/bin/env bash
# The dense recipes on fashion_mnist_scenes and their ANN twins in parallel, job i on GPU i % GPUS (default
# 4: each on its own GPU), each within the same budget of training minutes (benchmarks/budgeted_run.sh: two calibration epochs size
# the cosine schedule). Default settings: the step is graphed (run.cuda_graph=auto).
#   bash benchmarks/dense_scenes.sh 7 data.root=.data/fashion-mnist      # 4 GPUs: seg/det x snn/ann
#   JOBS="seg:snn" bash benchmarks/dense_scenes.sh 20                    # one of them, on GPU 0
#   GPUS=1 bash benchmarks/dense_scenes.sh 6                             # all four at once on GPU 0
#   JOBS="seg:snn seg:snn:model.T=2" bash benchmarks/dense_scenes.sh 20   # a third field: overrides of that job,
#   JOBS="seg:snn:model.neuron=ilif+model.T=1" bash benchmarks/dense_scenes.sh 20   # several joined by +
# Runs that share a GPU calibrate side by side; a second calibration epoch that overlaps a neighbour's start-up
# runs faster than the shared epochs after it; each resuming call
# fits the schedule again to the minutes left (budgeted_run.sh).
# Records: $OUT/<kind>_<snn|ann>/ (calibration and training logs, metrics, summary, config).
set -u
cd "$(dirname "$0")/.."
BUDGET=$1; shift
OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# the 60,000 training scenes are built once (about a minute), before the runs read them from the cache
"$PY" -c "import sys; from spikeformers.data import create_dataset; print(create_dataset('fashion_mnist_scenes', \
  root=sys.argv[1] or None, train=60000))" "$(printf '%s\n' "$@" | sed -n 's/^data.root=//p')"
gpu=0
for job in ${JOBS:-seg:snn det:snn seg:ann det:ann}; do
  IFS=: read -r kind twin override <<< "$job"
  read -ra overrides <<< "${override//+/ }"  # split at +, no globbing
  recipe=configs/fpn_segmenter_fashion_mnist_scenes.yaml
  [ "$kind" = det ] && recipe=configs/fcos_detector_fashion_mnist_scenes.yaml
  extra=""; [ "$twin" = ann ] && extra="twin=ann"
  name=${kind}_$twin${override:+_$(tr -c 'A-Za-z0-9.\n' - <<< "$override")}  # seg_snn_model.T-2, seg_snn_model.neuron-ilif-model.T-1
  mkdir -p "$OUT/$name"
  CUDA_VISIBLE_DEVICES=$((gpu % ${GPUS:-4})) OUT="$OUT/$name" RUN="runs/$name/run" RECIPE=$recipe BUDGET=$BUDGET \
    LIMIT=${LIMIT:-$("$PY" -c "print($BUDGET + 2.3)")} bash benchmarks/budgeted_run.sh $extra "${overrides[@]}" "$@" \
    > "$OUT/$name/console.log" 2>&1 &
  gpu=$((gpu + 1))
done
wait
for d in "$OUT"/*_*/; do echo "== $d"; tail -3 "$d/console.log"; done
