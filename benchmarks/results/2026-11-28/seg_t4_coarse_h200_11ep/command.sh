# 2026-11-28, one H200 (nvidia-h200), torch 2.11.0+cu130, commit 48a8a2d's tree (the recipe: T = 4, coarse_logits,
# the coarse logits then upsampled per time step in bf16): the first 11 epochs of the cosine schedule of
# ../dense_h200x4_opaque_20min/seg_snn (126 epochs), to compare epoch by epoch; stopped by run.max_minutes.
python3 -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml data.root=.data/fashion-mnist \
  schedule.epochs=126 run.max_minutes=2.2 run.out_dir=$OUT run.name=t4coarse
