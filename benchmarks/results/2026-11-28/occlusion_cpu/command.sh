# 2026-11-28, the 2-core CPU machine, torch 2.13.0 CPU: a small ANN segmenter on each occlusion variant, side by side
for o in max opaque; do
  python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml twin=ann data.root=.data/fashion-mnist \
    data.options.train=8000 data.options.occlusion=$o "model.backbone_opts={dim: 64, depth: 1, num_heads: 4, pooling: '1100'}" \
    model.head_dim=32 model.fine_dim=16 epochs=6 schedule.warmup_epochs=0.5 run.out_dir=/tmp/occ run.name=$o run.threads=1 -q &
done; wait
