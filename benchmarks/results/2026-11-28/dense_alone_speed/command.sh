set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
for job in det:snn seg:snn det:ann seg:ann; do
  IFS=: read -r kind twin <<< "$job"
  r=configs/fpn_segmenter_fashion_mnist_scenes.yaml; [ $kind = det ] && r=configs/fcos_detector_fashion_mnist_scenes.yaml
  x=""; [ $twin = ann ] && x="twin=ann"
  timeout 60 python3 -m spikeformers train -q $r $x data.root=.data/fashion-mnist data.options.train=12000 schedule.epochs=2 run.out_dir=runs/alone run.name=${kind}_$twin > /dev/null 2>&1
  python3 -c "
import json; L=[json.loads(l) for l in open('runs/alone/${kind}_$twin/metrics.jsonl')]
print('${kind}_$twin', [(round(r['images_per_s']), round(r['epoch_time_s'],2)) for r in L])"
done
