#!/usr/bin/env bash
# ImageNet-scale training steps (224 x 224, bf16 and fp32, batch 32): Spikformer-8-512 against
# SpikingJelly 2.0's Spikformer of the same sizes, then SDT-8-512 and QKFormer-10-384 (ours alone: no
# SpikingJelly peer), at T = 4 and T = 8. Images/s and peak memory for every setting; JSON records in $OUT.
#   bash benchmarks/imagenet_scale.sh                  # all of it (about 6 minutes on an H100)
#   STAGES="spikformer4" bash benchmarks/imagenet_scale.sh
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-./bench_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$PWD/.triton_cache}"
PY="${PYTHON:-python3}"
OURS="ours-bf16 ours-fp32 ours-bf16-graph ours-fp32-graph ours-make-step"
SJ="sj-fp32 sj-bf16 sj-bf16-prec"
bench() {  # name model T settings...
  local name=$1 model=$2 T=$3; shift 3
  echo "== $name: $model, T = $T, batch 32"
  timeout 240 "$PY" benchmarks/model_train.py --model "$model" --T "$T" --batches 32 --steps 15 --warmup 4 \
    --settings "$@" --out "$OUT/$name.json" 2>&1 | grep -v "^\s*$"
}
for stage in ${STAGES:-spikformer4 spikformer8 sdt4 sdt8 qkformer4 qkformer8}; do
  case $stage in
    spikformer4) bench "$stage" spikformer_8_512 4 $OURS $SJ ;;
    spikformer8) bench "$stage" spikformer_8_512 8 ours-bf16 ours-bf16-graph $SJ ;;
    sdt4) bench "$stage" sdt_8_512 4 ours-bf16 ours-fp32 ours-bf16-graph ;;
    sdt8) bench "$stage" sdt_8_512 8 ours-bf16 ours-bf16-graph ;;
    qkformer4) bench "$stage" qkformer_10_384 4 ours-bf16 ours-fp32 ours-bf16-graph ;;
    qkformer8) bench "$stage" qkformer_10_384 8 ours-bf16 ours-bf16-graph ;;
    *) echo "unknown stage $stage" ;;
  esac
done
