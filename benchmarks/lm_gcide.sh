#!/usr/bin/env bash
# The spiking LM and its ANN twin on GCIDE, one GPU, in commands of under 10 minutes:
#   1. training tokens/s of every setting, graphed bf16 (spikeformers bench lm), unless $OUT/lm_speed.json exists;
#   2. each run NAME:MINUTES given, with its whole cosine schedule sized from the measured tokens/s
#      (configs/spiking_lm_gcide.yaml, epochs of 500 batches): twin (the ANN twin), ilif (the recipe: integer
#      neurons, up to 4 spikes per step, T = 1), if (binary IF neurons over T = 4 steps);
#   3. a sample from each spiking run through step().
# Records (logs, metrics, summaries, samples) go to $OUT as one tarball plus the speed JSON.
#   GCIDE=.data/gcide OUT=bench_out bash benchmarks/lm_gcide.sh twin:2.5 ilif:3
# On two GPUs, one run each at once:
#   CUDA_VISIBLE_DEVICES=0 OUT=out/0 BENCH_SETTINGS=twin bash benchmarks/lm_gcide.sh twin:8 &
#   CUDA_VISIBLE_DEVICES=1 OUT=out/1 BENCH_SETTINGS=ilif-D4 bash benchmarks/lm_gcide.sh ilif:8
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-./bench_out}
GCIDE=${GCIDE:-/usr/share/dictd}
RUNS=${RUNS:-runs/lm_gcide}
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$PWD/.triton_cache}"
PY=${PYTHON:-python3}
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

if [ ! -f "$OUT/lm_speed.json" ]; then
  stamp "speed"
  timeout 200 "$PY" -m spikeformers bench lm --settings ${BENCH_SETTINGS:-twin if-T4 ilif-D4} --modes graph \
    --heads 6 --steps 15 --warmup 3 \
      --out "$OUT/lm_speed.json" 2>&1 | tail -6
fi
epochs() {  # epochs of 500 x 64 x 256 tokens that fit $2 minutes at the measured tokens/s of setting $1
  "$PY" - "$OUT/lm_speed.json" "$1" "$2" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
tps = next(r["tokens_per_s"] for r in rows if r["setting"] == sys.argv[2] and "tokens_per_s" in r)
print(max(1, int(float(sys.argv[3]) * 60 * tps * 0.88 // (500 * 64 * 256))))
PYEOF
}
train() {  # name minutes setting [overrides...]
  local name=$1 min=$2 setting=$3; shift 3
  local e; e=$(epochs "$setting" "$min" 2>/dev/null || echo 4)
  stamp "$name: $e epochs for $min minutes"
  timeout $(( ${min%.*} * 60 + 150 )) "$PY" -m spikeformers train configs/spiking_lm_gcide.yaml "$@" data.root="$GCIDE" \
    schedule.epochs="$e" run.out_dir="$RUNS" run.name="$name" run.max_minutes="$("$PY" -c "print($min * 1.3)")" run.cuda_graph=true 2>&1 | grep -v "^  " | tee "$OUT/$name.log"
}
for spec in "$@"; do
  name=${spec%%:*} min=${spec#*:}
  case $name in
    twin) train twin "$min" twin twin=ann ;;
    if) train if "$min" if-T4 neuron=if T=4 ;;
    ilif) train ilif "$min" ilif-D4 ;;
    *) echo "unknown run $name (twin, if, ilif)"; continue ;;
  esac
  if [ "$name" != twin ]; then
    timeout 60 "$PY" -m spikeformers generate "$RUNS/$name" --prompt "Horse, n. " --max-new-tokens 300 \
      --temperature 0.7 > "$OUT/sample_$name.txt" 2>&1
    cat "$OUT/sample_$name.txt"
  fi
done
tar czf "$OUT/lm_runs.tgz" --exclude=checkpoint "$RUNS" "$OUT"/*.log "$OUT"/sample_*.txt 2>/dev/null
stamp "done"
