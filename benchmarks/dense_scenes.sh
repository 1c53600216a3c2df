#!/usr/bin/env bash
# A dense recipe on fashion_mnist_scenes and its ANN twin, one after the other on one GPU, each within a
# budget of training minutes (benchmarks/budgeted_run.sh: two calibration epochs size the cosine schedule).
# The step is graphed (run.cuda_graph=true); a run whose capture fails is run again eagerly.
#   bash benchmarks/dense_scenes.sh det 3.5 2     # detector 3.5 min, its twin 2 min
#   bash benchmarks/dense_scenes.sh seg 3 1.5     # segmenter
# Records: $OUT/<kind>_<snn|ann>/ (metrics, summary, config, logs).
set -u
cd "$(dirname "$0")/.."
KIND=$1 SNN_MIN=$2 ANN_MIN=$3
OUT=${OUT:-./bench_out}
case $KIND in
  det) RECIPE=configs/fcos_detector_fashion_mnist_scenes.yaml ;;
  seg) RECIPE=configs/fpn_segmenter_fashion_mnist_scenes.yaml ;;
  *) echo "kind must be det or seg"; exit 2 ;;
esac
for pair in "snn:$SNN_MIN:" "ann:$ANN_MIN:twin=ann"; do
  IFS=: read -r name min extra <<< "$pair"
  run="runs/${KIND}_$name/run"
  echo "== $KIND $name: $min minutes"
  OUT="$OUT/${KIND}_$name" RUN=$run RECIPE=$RECIPE BUDGET=$min LIMIT=$(python3 -c "print($min + 1.2)") \
    bash benchmarks/budgeted_run.sh $extra run.cuda_graph=true "${@:4}" \
    || { rm -rf "$(dirname "$run")"; OUT="$OUT/${KIND}_$name" RUN=$run RECIPE=$RECIPE BUDGET=$min \
         LIMIT=$(python3 -c "print($min + 1.2)") bash benchmarks/budgeted_run.sh $extra "${@:4}"; }
done
