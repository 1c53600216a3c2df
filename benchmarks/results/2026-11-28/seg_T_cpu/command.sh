# 2026-11-28, the 2-core CPU machine, torch 2.13.0 CPU: a small spiking segmenter at T = 2 and T = 4, side by side,
# one thread each, 6 epochs of 8,000 opaque scenes
for T in 2 4; do
  python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml data.root=.data/fashion-mnist \
    data.options.train=8000 "model.backbone_opts={dim: 64, depth: 1, num_heads: 4, pooling: '1100'}" model.T=$T \
    model.head_dim=32 model.fine_dim=16 epochs=6 schedule.warmup_epochs=0.5 run.out_dir=/tmp/tab run.name=T$T run.threads=1 -q &
done; wait
# then, side by side the same way: T = 2 at twice the learning rate, and T = 1
for v in "T2lr3:model.T=2 optim.lr=3e-3" "T1:model.T=1"; do n=${v%%:*}; o=${v#*:}
  python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml data.root=.data/fashion-mnist \
    data.options.train=8000 "model.backbone_opts={dim: 64, depth: 1, num_heads: 4, pooling: '1100'}" $o \
    model.head_dim=32 model.fine_dim=16 epochs=6 schedule.warmup_epochs=0.5 run.out_dir=/tmp/tab2 run.name=$n run.threads=1 -q &
done; wait
