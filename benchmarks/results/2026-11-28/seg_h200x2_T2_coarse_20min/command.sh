set -u
# the committed segmenter recipe and its ANN twin, each alone on one of 2 GPUs, 20 training minutes
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 SPIKEFORMERS_CACHE=$PWD/runs/.cache
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
O=$OUT; export OUT=$O/seg_x2
GPUS=2 JOBS="seg:snn seg:ann" LIMIT=$L bash benchmarks/dense_scenes.sh 20 data.root=.data/fashion-mnist 2>&1 | tail -16
if [ -n "${MEM:-}" ] && grep -q '"finished": true' runs/seg_snn/run/summary.json runs/seg_ann/run/summary.json 2>/dev/null; then
  CUDA_VISIBLE_DEVICES=0 timeout $MEM python3 benchmarks/memory_recompute.py 2>&1 | tee $O/memory_recompute_gpu.log | tail -12
fi
cd $O && tar czf seg.tgz seg_x2 && rm -rf seg_x2
# run three times back to back on one warm nvidia-h200-x2 machine (2 H200s), commit 2c838ed (the segmenter
# recipe then: T = 2, coarse_logits: true):
#   L=9.3 bash command.sh; L=9.3 bash command.sh; L=5.5 MEM=150 bash command.sh
# carry: .data/fashion-mnist (raw Fashion-MNIST idx.gz), .whl (wheels for the machine's Python)
# The summaries read git_commit e96fd29 with git_dirty true (the git metadata of the machine's copy); the
# code that ran is 2c838ed's tree: the configs show T: 2 and coarse_logits: true, which e96fd29 lacks.
