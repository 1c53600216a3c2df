#!/usr/bin/env bash
# The LM table on GCIDE, one GPU, in commands of under 10 minutes:
#   1. training tokens/s of the runs' settings, graphed bf16 (spikeformers bench lm), unless
#      $OUT/lm_speed.json exists or every such run has its rate in TPS_<name> (tokens/s; e.g. TPS_twin=759504);
#   2. each run NAME:MINUTES given, with its whole cosine schedule sized from its tokens/s (epochs of 500
#      batches of 64 x 256 bytes). A run with no bench setting (lif, asn, distill, gpt) and no
#      TPS_<name> is timed first by a short calibration run (2 epochs of 40 batches). Runs, all at the sizes of
#      configs/spiking_lm_gcide.yaml (6 x 384):
#        twin      the spiking LM's ANN twin
#        ilif      the integer recipe (up to 4 spikes per step, T = 1)
#        binary    binary IF neurons with soft reset over T = 4 steps (the binary recipe)
#        lif       binary LIF neurons with hard reset over T = 4 steps (every spiking transformer's neuron)
#        asn       the adaptive spiking neuron over T = 4 steps
#        distill   binary, taught by the finished twin run (KL on the logits, weight 0.3, temperature 1)
#        spikegpt  SpikeGPT (configs/spikegpt_gcide.yaml)
#        gpt       a plain softmax GPT (benchmarks/softmax_gpt.py)
#   3. a sample from each spiking run through step().
# Records (logs, metrics, summaries, samples) go to $OUT as one tarball plus the speed JSON.
#   GCIDE=.data/gcide OUT=bench_out bash benchmarks/lm_gcide.sh twin:2.5 binary:2.5 spikegpt:2.5 gpt:2.5
# EXTRA="overrides" go to every run (a CPU check of the script: tiny sizes, TPS_<name> given).
# On two GPUs, one run each at once:
#   CUDA_VISIBLE_DEVICES=0 OUT=out/0 BENCH_SETTINGS=twin bash benchmarks/lm_gcide.sh twin:8 &
#   CUDA_VISIBLE_DEVICES=1 OUT=out/1 BENCH_SETTINGS=ilif-D4 bash benchmarks/lm_gcide.sh ilif:8
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./bench_out}
GCIDE=${GCIDE:-/usr/share/dictd}
RUNS=${RUNS:-runs/lm_gcide_$(date +%Y%m%d_%H%M%S)}  # new per call: a run name never meets an old run
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$PWD/.triton_cache}"
PY=${PYTHON:-python3}
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

setting_of() {  # the `spikeformers bench lm` setting that measures run $1's speed (none: calibrate)
  case $1 in twin) echo twin ;; ilif) echo ilif-D4 ;; binary) echo if-T4 ;; spikegpt) echo spikegpt ;; *) echo "" ;; esac
}
need_speed=""  # the bench settings of the runs given without TPS_<name>
for spec in "$@"; do
  v="TPS_${spec%%:*}" setting=$(setting_of "${spec%%:*}")
  [ -n "$setting" ] && [ -z "${!v:-}" ] && need_speed="$need_speed $setting"
done
if [ ! -f "$OUT/lm_speed.json" ] && [ -n "$need_speed" ]; then
  stamp "speed"
  timeout 200 "$PY" -m spikeformers bench lm --settings ${BENCH_SETTINGS:-$need_speed} --modes graph \
    --heads 6 --steps 15 --warmup 3 \
      --out "$OUT/lm_speed.json" 2>&1 | tail -6
fi
tps() {  # training tokens/s of run $1 with overrides $2...: TPS_$1, else the speed JSON, else a calibration run
  local name=$1 v="TPS_$1" setting rate; shift; setting=$(setting_of "$name")
  if [ -n "${!v:-}" ]; then echo "${!v}"; return; fi
  if [ -n "$setting" ] && [ -f "$OUT/lm_speed.json" ]; then  # a speed JSON without this setting: calibrate
    rate=$("$PY" - "$OUT/lm_speed.json" "$setting" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
print(next((r["tokens_per_s"] for r in rows if r["setting"] == sys.argv[2] and "tokens_per_s" in r), ""))
PYEOF
    ) && [ -n "$rate" ] && { echo "$rate"; return; }
  fi
  timeout 300 "${CMD[@]}" "$@" task.options.batches_per_epoch=40 schedule.epochs=2 schedule.warmup_epochs=0 \
    run.out_dir="$RUNS" run.name="calibration_$name" -q > "$OUT/calibration_$name.log" 2>&1 &&
  "$PY" -c "import json, sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['tokens_per_s'])" \
    "$RUNS/calibration_$name/metrics.jsonl"
}
train() {  # name minutes [overrides...]: CMD with the overrides, its whole schedule sized to the minutes
  local name=$1 min=$2 rate e; shift 2
  if [ -e "$RUNS/$name" ]; then echo "$RUNS/$name exists: give RUNS a new folder"; return 1; fi
  rate=$(tps "$name" "$@") || rate=""
  if [ -z "$rate" ]; then echo "$name: no tokens/s (the speed benchmark or the calibration failed; see $OUT)"; return 1; fi
  e=$("$PY" -c "print(max(1, int($min * 60 * $rate * 0.88 // (500 * 64 * 256))))")
  stamp "$name: $e epochs for $min minutes at $rate tokens/s"
  timeout $(( ${min%.*} * 60 + 150 )) "${CMD[@]}" "$@" schedule.epochs="$e" run.out_dir="$RUNS" run.name="$name" \
    run.max_minutes="$("$PY" -c "print($min * 1.3)")" 2>&1 | grep -v "^  " | tee "$OUT/$name.log"
  [ -f "$RUNS/$name/summary.json" ] || { echo "$name: did not finish (log: $OUT/$name.log)"; return 1; }
}
cmd() { CMD=("$PY" "$@" data.root="$GCIDE" ${EXTRA:-}); }  # the training command: a CLI and its recipe
BINARY=(neuron=if "model.neuron_opts={v_reset: null}" T=4)  # soft reset (IF's own default is hard)
for spec in "$@"; do
  name=${spec%%:*} min=${spec#*:}
  cmd -m spikeformers train configs/spiking_lm_gcide.yaml
  case $name in
    twin) train twin "$min" twin=ann ;;
    ilif) train ilif "$min" ;;
    binary) train binary "$min" "${BINARY[@]}" ;;
    lif) train lif "$min" neuron=lif T=4 ;;
    asn) train asn "$min" neuron=asn T=4 ;;
    distill) if [ -f "$RUNS/twin/summary.json" ]; then
               train distill "$min" "${BINARY[@]}" distill.teacher="$RUNS/twin" distill.weight=0.3 distill.temperature=1
             else echo "distill: needs the finished twin run first (twin:MINUTES before distill:MINUTES)"; false; fi ;;
    spikegpt) cmd -m spikeformers train configs/spikegpt_gcide.yaml; train spikegpt "$min" ;;
    gpt) cmd benchmarks/softmax_gpt.py configs/spiking_lm_gcide.yaml; train gpt "$min" ;;
    *) echo "unknown run $name (twin, ilif, binary, lif, asn, distill, spikegpt, gpt)"; false ;;
  esac || continue
  if [ "$name" != twin ] && [ "$name" != gpt ]; then
    timeout 60 "$PY" -m spikeformers generate "$RUNS/$name" --prompt "Horse, n. " --max-new-tokens 300 \
      --temperature 0.7 > "$OUT/sample_$name.txt" 2>&1
    cat "$OUT/sample_$name.txt"
  fi
done
tar czf "$OUT/lm_runs.tgz" --exclude=checkpoint "$RUNS" "$OUT"/*.log "$OUT"/sample_*.txt 2>/dev/null
stamp "done"
