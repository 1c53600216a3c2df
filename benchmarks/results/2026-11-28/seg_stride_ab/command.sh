set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=$PWD/.triton_cache
T0=$(date +%s)
python3 -c "from spikeformers.data import create_dataset; print(create_dataset('fashion_mnist_scenes', root='.data/fashion-mnist', train=12000))"
echo "built in $(( $(date +%s) - T0 )) s"
R=configs/fpn_segmenter_fashion_mnist_scenes.yaml
for v in s4:"[1,2,4]" s2:"[0,1,2,4]"; do IFS=: read -r name idx <<< "$v"
  OUT=$OUT/$name RUN=runs/ab_$name/run RECIPE=$R BUDGET=1.5 LIMIT=3.1 bash benchmarks/budgeted_run.sh data.root=.data/fashion-mnist data.options.train=12000 "model.out_indices=$idx" > $OUT/$name.log 2>&1 &
done
wait
for n in s4 s2; do echo "== $n"; grep -E "epochs fit|^test mIoU" $OUT/$n.log; python3 -c "
import json; m=[json.loads(l) for l in open('runs/ab_$n/run/metrics.jsonl')]; print('best', max(r['test_miou'] for r in m), 'last', m[-1]['test_miou'], 'img/s', round(m[-1]['images_per_s']), 'epochs', len(m))"; done
echo "total $(( $(date +%s) - T0 )) s"
rm -rf $OUT/s4 $OUT/s2
