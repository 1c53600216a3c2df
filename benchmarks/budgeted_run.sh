#!/usr/bin/env bash
# Train a recipe within a fixed budget of training minutes, across commands of limited length (the GPU
# machines here run commands of at most 10 minutes; their disk survives between back-to-back calls).
# First call: two calibration epochs measure the epoch time (the second's, kernels compiled),
# schedule.epochs is sized so that the whole cosine schedule fits BUDGET minutes, and training starts.
# Every later call resumes the run and fits the schedule again to the minutes left, at the mean time of the
# last three epochs (the calibration can be off, e.g. when runs share a GPU): the cosine then continues from
# the current rate to its end at the new length. Each call stops (resumably) before LIMIT minutes and copies
# the run's records to $OUT.
#
#   RUN=runs/fmnist RECIPE=configs/spikformer_4_384_fashion_mnist.yaml BUDGET=17 LIMIT=9.3 \
#     bash benchmarks/budgeted_run.sh data.root=.data/fashion-mnist
set -eu
cd "$(dirname "$0")/.."
RUN=${RUN:?set RUN to the run folder}
RECIPE=${RECIPE:?set RECIPE to a configs/*.yaml}
BUDGET=${BUDGET:-25}  # minutes of training (epochs + their evaluations) for the whole schedule
LIMIT=${LIMIT:-9.3}   # minutes this command may take
OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$PWD/.triton_cache}"
mkdir -p "$OUT"
left() { "$PY" -c "print(max(0.5, $LIMIT - $SECONDS / 60 - ${1:-0}))"; }

if [ -f "$RUN/summary.json" ] && grep -q '"finished": true' "$RUN/summary.json"; then
  echo "== $RUN has finished its schedule"
elif [ -d "$RUN/checkpoint" ]; then
  EPOCHS=$("$PY" - "$RUN/metrics.jsonl" "$BUDGET" <<'EOF'
import json, sys
rec = [json.loads(line) for line in open(sys.argv[1])]
left = float(sys.argv[2]) * 60 - rec[-1]["elapsed_s"]  # training seconds left in the budget
recent = sum(r["epoch_time_s"] for r in rec[-3:]) / len(rec[-3:])
print(len(rec) + max(1, int(left // (1.02 * recent))))
EOF
)
  echo "== resuming $RUN: $EPOCHS epochs fit $BUDGET minutes at the recent epoch time"
  "$PY" -m spikeformers train resume="$RUN" schedule.epochs="$EPOCHS" run.max_minutes="$(left 0.8)" 2>&1 | tee -a "$OUT/train.log"
else
  echo "== calibration: two epochs of $RECIPE $*"
  CAL="$(dirname "$RUN")/calibration"
  rm -rf "$CAL"
  "$PY" -m spikeformers train "$RECIPE" "$@" schedule.epochs=2 run.out_dir="$(dirname "$CAL")" \
    run.name="$(basename "$CAL")" 2>&1 | tee "$OUT/calibration.log"
  EPOCHS=$("$PY" - "$CAL/metrics.jsonl" "$BUDGET" <<'EOF'
import json, sys
rec = [json.loads(line) for line in open(sys.argv[1])][-1]  # the second epoch: kernels already compiled
print(max(1, int(float(sys.argv[2]) * 60 // (1.02 * rec["epoch_time_s"]))))
EOF
)
  echo "== $EPOCHS epochs fit $BUDGET minutes (calibration epoch: see calibration.log)"
  "$PY" -m spikeformers train "$RECIPE" "$@" schedule.epochs="$EPOCHS" run.out_dir="$(dirname "$RUN")" \
    run.name="$(basename "$RUN")" run.max_minutes="$(left 0.8)" 2>&1 | tee "$OUT/train.log"
fi
for f in metrics.jsonl summary.json config.yaml provenance.json firing_rates.png; do
  [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"
done
echo "== $(wc -l < "$RUN/metrics.jsonl") epochs done; $(( SECONDS / 60 )) min $(( SECONDS % 60 )) s this call"
