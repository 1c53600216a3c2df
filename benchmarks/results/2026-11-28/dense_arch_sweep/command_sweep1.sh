# architecture sweep: 8 runs at once on one GPU, fixed epochs (same epochs per task), 60k scenes
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=$PWD/.triton_cache
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "from spikeformers.data import create_dataset; print(create_dataset('fashion_mnist_scenes', root='.data/fashion-mnist', train=60000))"
stamp "scenes built"
SEG=configs/fpn_segmenter_fashion_mnist_scenes.yaml; DET=configs/fcos_detector_fashion_mnist_scenes.yaml
mkdir -p $OUT/sweep
go() { local name=$1 recipe=$2; shift 2
  timeout ${LIM:-480} python3 -m spikeformers train -q $recipe data.root=.data/fashion-mnist run.out_dir=runs/sweep run.name=$name run.max_minutes=${MM:-7.3} "$@" > $OUT/sweep/$name.log 2>&1 & }
B4='model.backbone_opts={dim: 256, depth: 4, num_heads: 8, pooling: "1111"}'
P0='model.backbone_opts={dim: 256, depth: 2, num_heads: 8, pooling: "1110"}'
go s0 $SEG schedule.epochs=10
go s1 $SEG schedule.epochs=10 model.fine_dim=32
go s2 $SEG schedule.epochs=10 model.fine_dim=32 "$P0"
go s3 $SEG schedule.epochs=10 model.fine_dim=32 "$B4"
go d0 $DET schedule.epochs=4
go d1 $DET schedule.epochs=4 'model.out_indices=[1, 2, 4]'
go d2 $DET schedule.epochs=4 "$B4"
go d3 $DET schedule.epochs=4 "$P0"
wait
stamp "sweep done"
for r in runs/sweep/*/; do n=$(basename $r); cp $r/metrics.jsonl $OUT/sweep/$n.metrics.jsonl 2>/dev/null; cp $r/summary.json $OUT/sweep/$n.summary.json 2>/dev/null; done
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob(os.environ["OUT"] + "/sweep/*.metrics.jsonl")):
    L = [json.loads(l) for l in open(f)]
    n = os.path.basename(f).split(".")[0]
    print(n, len(L), "epochs", "last", {k: round(v, 4) for k, v in L[-1].items() if k.startswith("test_m") or k in ("epoch_time_s", "train_loss")},
          "curve", [round(r.get("test_miou", r.get("test_map50", 0)), 3) for r in L])
PY
cd $OUT && tar czf sweep.tgz sweep && rm -rf sweep
