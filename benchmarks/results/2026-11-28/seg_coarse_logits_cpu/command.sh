# 2026-11-28, the 2-core CPU machine, torch 2.13.0 CPU: the small spiking segmenter of ../seg_T_cpu/ at T = 2,
# now with coarse_logits (the fused map's own class logits added to the refinement's), side by side, one
# thread each, 6 epochs of 8,000 opaque scenes; compare with ../seg_T_cpu/T2 and T2lr3 (same settings without)
for v in "S2:optim.lr=1.5e-3" "S2lr3:optim.lr=3e-3"; do n=${v%%:*}; o=${v#*:}
  python -m spikeformers train configs/fpn_segmenter_fashion_mnist_scenes.yaml data.root=.data/fashion-mnist \
    data.options.train=8000 "model.backbone_opts={dim: 64, depth: 1, num_heads: 4, pooling: '1100'}" model.T=2 $o \
    model.coarse_logits=true model.head_dim=32 model.fine_dim=16 epochs=6 schedule.warmup_epochs=0.5 \
    run.out_dir=/tmp/skipab run.name=$n run.threads=1 -q &
done; wait
