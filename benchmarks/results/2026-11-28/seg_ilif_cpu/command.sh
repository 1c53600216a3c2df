# 2026-11-28, the 2-core CPU machine, torch 2.13.0 CPU: the small segmenter of ../seg_T_cpu/ with coarse_logits,
# 6 epochs of 8,000 opaque scenes, one thread per run, two runs side by side (A2 with H64, then I1 with H64):
#   A2:  its ANN twin (twin=ann, T = 1)
#   I1:  integer spikes (SpikeYOLO's I-LIF: model.neuron=ilif, up to 4 spikes per step) at T = 1
#   H64: LIF at T = 2 with head_dim 64 (stopped by hand after 4 of 6 epochs, to free the cores)
# compare with ../seg_coarse_logits_cpu/S2 (LIF, T = 2, head_dim 32, same settings otherwise)
common="data.root=.data/fashion-mnist data.options.train=8000 model.coarse_logits=true model.head_dim=32 model.fine_dim=16
  epochs=6 schedule.warmup_epochs=0.5 run.out_dir=/tmp/ab3 run.threads=1 -q"
bb="model.backbone_opts={dim: 64, depth: 1, num_heads: 4, pooling: '1100'}"
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" $common model.T=2 twin=ann run.name=A2 &
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" $common model.T=2 model.head_dim=64 run.name=H64 &
wait -n
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" $common model.T=1 model.neuron=ilif run.name=I1
# then a longer pair side by side, 20 epochs (coarse_logits now the default): integer spikes at T = 1 and the twin
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" data.root=.data/fashion-mnist \
  data.options.train=8000 model.T=1 model.neuron=ilif model.head_dim=32 model.fine_dim=16 epochs=20 \
  schedule.warmup_epochs=0.5 run.out_dir=/tmp/ab4 run.name=I1long run.threads=1 -q &
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" data.root=.data/fashion-mnist \
  data.options.train=8000 model.T=1 twin=ann model.head_dim=32 model.fine_dim=16 epochs=20 \
  schedule.warmup_epochs=0.5 run.out_dir=/tmp/ab4 run.name=A2long run.threads=1 -q &
wait
# then, side by side the same way, two variants of the integer-spike model: 8 spikes per step, and lr 3e-3
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" data.root=.data/fashion-mnist \
  data.options.train=8000 model.T=1 model.neuron=ilif "model.neuron_opts={max_spikes: 8}" model.head_dim=32 \
  model.fine_dim=16 epochs=20 schedule.warmup_epochs=0.5 run.out_dir=/tmp/ab5 run.name=I1d8 run.threads=1 -q &
python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml "$bb" data.root=.data/fashion-mnist \
  data.options.train=8000 model.T=1 model.neuron=ilif optim.lr=3e-3 model.head_dim=32 \
  model.fine_dim=16 epochs=20 schedule.warmup_epochs=0.5 run.out_dir=/tmp/ab5 run.name=I1lr3 run.threads=1 -q &
wait
