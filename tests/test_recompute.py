"""run.memory=recompute: the default path is the reference. Same loss, gradients and BatchNorm running
statistics after a training step, for every backbone family, a dense model and the language model; each
segment really runs twice per step; clear errors where it cannot apply."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

from spikeformers import create_model
from spikeformers.errors import ConfigError
from spikeformers.train import enable_recompute, load_config, train
from spikeformers.train.recompute import recompute_segments
from spikeformers.neurons import base as neuron_base

SMALL = dict(dim=32, depth=2, num_heads=2, img_size=16, in_chans=1, pooling="1111", T=4)
CASES = {
    "spikformer": ("spikformer_8_384", SMALL, ["patch_embed", "blocks.0", "blocks.1"]),
    "sdt": ("sdt_8_384", SMALL, ["patch_embed", "blocks.0", "blocks.1"]),
    "qkformer": ("qkformer_tiny", dict(img_size=16, T=2),
                 ["patch_embeds.0", "patch_embeds.1", "patch_embeds.2", "stages.0.0", "stages.1.0", "stages.2.0"]),
    "segmenter": ("fpn_segmenter", dict(backbone="spikformer_8_384", img_size=16, in_chans=1, T=2, head_dim=8,
                                        fine_dim=4, backbone_opts=dict(dim=16, depth=1, num_heads=2, pooling="1100")),
                  ["backbone.model.patch_embed", "backbone.model.blocks.0"]),
}


def _loss(model, x):
    out = model(x).float()  # logits or class maps: any loss that reaches every output
    return out.square().mean() + out.sum(1).mean()


def _step(model, x):
    model.train()
    model.zero_grad()
    loss = _loss(model, x)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recompute_gives_the_default_gradients_and_statistics(case):
    name, kw, segments = CASES[case]
    torch.manual_seed(0)
    default = create_model(name, num_classes=5, **kw)
    recomputing = copy.deepcopy(default)
    assert enable_recompute(recomputing) == segments == recompute_segments(default)
    assert list(recomputing.state_dict()) == list(default.state_dict())
    x = torch.rand(3, 1, 16, 16)
    for _ in range(2):  # the second step starts from running statistics the first one updated
        loss_a, grads_a = _step(default, x)
        loss_b, grads_b = _step(recomputing, x)
        torch.testing.assert_close(loss_b, loss_a, rtol=0, atol=0)
        assert grads_b.keys() == grads_a.keys() and len(grads_a) > 10
        for n in grads_a:
            torch.testing.assert_close(grads_b[n], grads_a[n], rtol=1e-6, atol=1e-7, msg=n)
    for (n, a), b in zip(default.state_dict().items(), recomputing.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=n)  # running statistics, batch counts: once per step
    default.eval(), recomputing.eval()
    with torch.no_grad():
        torch.testing.assert_close(recomputing(x), default(x), rtol=0, atol=0)


def test_each_segment_runs_again_in_backward_and_only_in_training():
    torch.manual_seed(0)
    model = create_model("spikformer_8_384", num_classes=5, **SMALL)
    enable_recompute(model)
    calls = []
    model.blocks[1].mlp.register_forward_pre_hook(lambda *a: calls.append("mlp"))
    model.patch_embed.rpe.register_forward_pre_hook(lambda *a: calls.append("rpe"))
    x = torch.rand(2, 1, 16, 16)
    loss = model(x).sum()
    assert calls == ["rpe", "mlp"]
    loss.backward()
    assert sorted(calls) == ["mlp", "mlp", "rpe", "rpe"]  # the backward ran both segments once more
    calls.clear()
    with torch.no_grad():
        model(x)
    model.eval()
    model(x).sum()
    assert calls == ["rpe", "mlp", "rpe", "mlp"]  # no checkpoint without gradients or in eval mode


def test_language_model_recomputes_its_blocks():
    torch.manual_seed(0)
    default = create_model("spiking_lm_tiny")
    recomputing = copy.deepcopy(default)
    assert enable_recompute(recomputing) == [f"blocks.{i}" for i in range(len(default.blocks))]
    tokens = torch.randint(0, default.cfg.vocab_size, (2, 12))
    grads = []
    for m in (default, recomputing):
        m.zero_grad()
        F.cross_entropy(m(tokens).flatten(0, -2).float(), tokens.flatten()).backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if p.grad is not None})
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-6, atol=1e-7, msg=n)


def test_recompute_refuses_what_it_cannot_repeat():
    with pytest.raises(ConfigError, match=r"blocks.0.attn.q_neuron is a homeostatic neuron"):
        enable_recompute(create_model("spikformer_8_384", attention="adaptive", num_classes=5, **SMALL))
    model = create_model("spikformer_8_384", num_classes=5, **SMALL)
    model.blocks[0].mlp.fc1.bn.momentum = None  # a cumulative average would count the recomputation
    with pytest.raises(ConfigError, match=r"blocks.0.mlp.fc1.bn averages its statistics cumulatively"):
        enable_recompute(model)
    with pytest.raises(ConfigError, match="has no patch embedding or blocks"):
        enable_recompute(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_run_memory_option_trains_and_is_checked(tmp_path):
    s = train(load_config(None, [f"run.out_dir={tmp_path}", "model.dim=32", "data.batch_size=64", "run.max_steps=2",
                                 "epochs=1", "run.memory=recompute"]), progress=False)
    assert load_config(os.path.join(s["run_dir"], "config.yaml")).run.memory == "recompute" and 0 <= s["test_acc"] <= 1
    s = train(load_config(None, [f"run.out_dir={tmp_path}", "model.dim=32", "data.batch_size=64", "run.max_steps=2",
                                 "epochs=1", "run.memory=packed", "run.name=packed"]), progress=False)
    assert 0 <= s["test_acc"] <= 1 and neuron_base.PACK_SPIKES is False  # on for the run only
    with pytest.raises(ConfigError, match="run.memory must be one of default, packed, recompute"):
        load_config(None, ["run.memory=bits"])
    with pytest.raises(ConfigError, match="run.memory=recompute excludes run.compile=true"):
        train(load_config(None, [f"run.out_dir={tmp_path}", "run.memory=recompute", "run.compile=true"]), progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_recompute_trains_graphed_on_a_gpu_as_the_default_path_eagerly():
    from spikeformers.train import make_step

    torch.manual_seed(0)
    a = create_model("spikformer_8_384", num_classes=5, **SMALL).cuda()
    b = copy.deepcopy(a)
    enable_recompute(a)
    graphed = make_step(a, torch.optim.AdamW(a.parameters(), lr=1e-3), cuda_graph=True)
    eager = make_step(b, torch.optim.AdamW(b.parameters(), lr=1e-3), cuda_graph=False)
    x, y = torch.rand(4, 1, 16, 16, device="cuda"), torch.randint(0, 5, (4,), device="cuda")
    for _ in range(3):
        torch.testing.assert_close(graphed(x, y), eager(x, y), rtol=1e-4, atol=1e-5)
    assert graphed.graphed
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=n)
