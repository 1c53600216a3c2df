set -u
# the committed segmenter recipe (T = 4, coarse_logits) alone per GPU, with leads beside it; L = minutes this call
#   x2: JOBS="seg:snn:model.neuron=ilif+model.T=1 seg:snn" GPUS=2      (the twin with coarse logits: 0.771 already)
#   x4: JOBS="seg:snn:model.neuron=ilif+model.T=1 seg:snn seg:ann seg:snn:model.neuron=ilif+model.T=1+optim.lr=3e-3" GPUS=4
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 SPIKEFORMERS_CACHE=$PWD/runs/.cache
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
O=$OUT; export OUT=$O/seg_next
LIMIT=$L bash benchmarks/dense_scenes.sh ${BUDGET:-20} data.root=.data/fashion-mnist 2>&1 | tail -24
cd $O && tar czf seg.tgz seg_next && rm -rf seg_next
# run three times back to back on one warm nvidia-h200 machine (1 H200), commit a5d79eb (the segmenter recipe
# then: T = 4 LIF, coarse_logits: true; this run overrides model.neuron=ilif model.T=1), alone on the GPU:
#   JOBS="seg:snn:model.neuron=ilif+model.T=1" GPUS=1 L=9.3 bash command.sh   (twice, then L=4.5)
# carry: .data/fashion-mnist (raw Fashion-MNIST idx.gz), .whl (wheels for the machine's Python)
# Its ANN twin is the twin of ../seg_h200x2_T2_coarse_20min (twin=ann is T = 1 with ReLUs whatever the
# neuron and T: the same model), 20 training minutes alone on an H200: mIoU 0.771.
# the figure miou_curves.png, from the repository root:
#   R=benchmarks/results/2026-11-28 && python benchmarks/plot_runs.py --metric test_miou --target 0.75 \
#     --out $R/seg_ilif_T1_h200_20min/miou_curves.png \
#     "SNN, I-LIF, T = 1 (recipe now)=$R/seg_ilif_T1_h200_20min/seg_snn_ilif_T1.metrics.jsonl" \
#     "ANN twin, coarse logits=$R/seg_h200x2_T2_coarse_20min/seg_ann.metrics.jsonl" \
#     "SNN, LIF, T = 4, no coarse logits=$R/dense_h200x4_opaque_20min/seg_snn.metrics.jsonl" \
#     "SNN, LIF, T = 2, coarse logits=$R/seg_h200x2_T2_coarse_20min/seg_snn.metrics.jsonl"
