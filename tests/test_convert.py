"""Official weights in. The official Spikformer, SDT and QKFormer parameter names and shapes (read from
the official code, written here as lists) load through `convert`, and the model gives the outputs of
one whose weights were set attribute by attribute; SpikingJelly's real `Spikformer` loads through a
checkpoint file and matches its logits."""
import pytest
import torch

from spikeformers import create_model, from_pretrained
from spikeformers.cli import main
from spikeformers.models.convert import convert_state_dict, read_state_dict
from spikeformers.errors import ConfigError
from writers import spikingjelly_spikformer  # noqa: E402  (tests/writers.py)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_spikformer(D, depth, classes, chans, layout):
    """(name, shape) of every tensor of the official Spikformer state dict (`layout` cifar or imagenet) or of
    the official Spike-driven Transformer (`layout` sdt: module/ms_conv.py, module/sps.py)."""
    H = 4 * D
    names = []
    stem = [("", chans, D // 8), ("1", D // 8, D // 4), ("2", D // 4, D // 2), ("3", D // 2, D)]
    for s, cin, cout in stem:
        names.append((f"patch_embed.proj_conv{s}.weight", (cout, cin, 3, 3)))
        names += [(f"patch_embed.proj_bn{s}.{p}", () if p == "num_batches_tracked" else (cout,)) for p in BN]
    names.append(("patch_embed.rpe_conv.weight", (D, D, 3, 3)))
    names += [(f"patch_embed.rpe_bn.{p}", () if p == "num_batches_tracked" else (D,)) for p in BN]
    for b in range(depth):
        pre = f"block.{b}"
        if layout == "sdt":
            names.append((f"{pre}.attn.talking_heads.weight", (4, 4, 1)))  # Conv1d over the 4 heads
        else:
            names += [(f"{pre}.norm{i}.{p}", (D,)) for i in (1, 2) for p in ("weight", "bias")]  # built, unused
        for p in ("q", "k", "v", "proj"):
            if layout == "cifar":
                names += [(f"{pre}.attn.{p}_linear.weight", (D, D)), (f"{pre}.attn.{p}_linear.bias", (D,))]
            else:  # 1x1 Conv1d (Spikformer ImageNet) or Conv2d (SDT), bias only on proj
                names.append((f"{pre}.attn.{p}_conv.weight", (D, D, 1) if layout == "imagenet" else (D, D, 1, 1)))
                if p == "proj":
                    names.append((f"{pre}.attn.proj_conv.bias", (D,)))
            names += [(f"{pre}.attn.{p}_bn.{q}", () if q == "num_batches_tracked" else (D,)) for q in BN]
        for fc, cin, cout in (("fc1", D, H), ("fc2", H, D)):
            kind, shape = ("linear", (cout, cin)) if layout == "cifar" else ("conv", (cout, cin, 1, 1))
            names += [(f"{pre}.mlp.{fc}_{kind}.weight", shape), (f"{pre}.mlp.{fc}_{kind}.bias", (cout,))]
            names += [(f"{pre}.mlp.{fc}_bn.{q}", () if q == "num_batches_tracked" else (cout,)) for q in BN]
    names += [("head.weight", (classes, D)), ("head.bias", (classes,))]
    return names


def random_state(names, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n, shape in names:
        if n.endswith("num_batches_tracked"):
            out[n] = torch.tensor(7)
        elif n.endswith("running_var"):
            out[n] = torch.rand(shape, generator=g) + 0.5
        else:
            out[n] = torch.randn(shape, generator=g) * 0.3
    return out


@torch.no_grad()
def set_directly(model, sd, depth, layout):
    """The reference: each of our tensors assigned from its official counterpart by hand."""
    def bn(ours, pre):
        for p in BN:
            getattr(ours, p).copy_(sd[f"{pre}.{p}"])

    for i, s in enumerate(("", "1", "2", "3")):
        model.patch_embed.stages[i].conv.weight.copy_(sd[f"patch_embed.proj_conv{s}.weight"])
        bn(model.patch_embed.stages[i].bn, f"patch_embed.proj_bn{s}")
    model.patch_embed.rpe.conv.weight.copy_(sd["patch_embed.rpe_conv.weight"])
    bn(model.patch_embed.rpe.bn, "patch_embed.rpe_bn")
    kind = "linear" if layout == "cifar" else "conv"
    for b in range(depth):
        blk, pre = model.blocks[b], f"block.{b}"
        for p in ("q", "k", "v", "proj"):
            layer = getattr(blk.attn, p)
            layer.linear.weight.copy_(sd[f"{pre}.attn.{p}_{kind}.weight"].reshape(layer.linear.weight.shape))
            if layer.linear.bias is not None:
                layer.linear.bias.copy_(sd[f"{pre}.attn.{p}_{kind}.bias"])
            bn(layer.bn, f"{pre}.attn.{p}_bn")
        if layout == "sdt":
            blk.attn.talking_heads.weight.copy_(sd[f"{pre}.attn.talking_heads.weight"])
        for fc in ("fc1", "fc2"):
            layer = getattr(blk.mlp, fc)
            layer.linear.weight.copy_(sd[f"{pre}.mlp.{fc}_{kind}.weight"].reshape(layer.linear.weight.shape))
            layer.linear.bias.copy_(sd[f"{pre}.mlp.{fc}_{kind}.bias"])
            bn(layer.bn, f"{pre}.mlp.{fc}_bn")
    model.head.fc.weight.copy_(sd["head.weight"])
    model.head.fc.bias.copy_(sd["head.bias"])


@pytest.mark.parametrize("layout, name", [("cifar", "spikformer_4_384"), ("imagenet", "spikformer_8_512"),
                                          ("sdt", "sdt_8_512")])
def test_official_spikformer_names_load_and_give_the_directly_set_models_outputs(layout, name, tmp_path):
    D, depth, kw = 64, 2, dict(dim=64, num_heads=4, depth=2, num_classes=10, img_size=32, T=2)
    sd = random_state(official_spikformer(D, depth, 10, 3, layout))
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "best.pth.tar")
    loaded = create_model(name, **kw, checkpoint=str(tmp_path / "best.pth.tar")).eval()
    ref = create_model(name, **kw).eval()
    set_directly(ref, sd, depth, layout)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), ref(x))


def test_mismatches_are_one_readable_error(tmp_path):
    sd = random_state(official_spikformer(64, 2, 10, 3, "cifar"))
    model = create_model("spikformer_4_384", dim=64, num_heads=4, depth=1, num_classes=10, img_size=32)
    with pytest.raises(ConfigError, match=r"unexpected \(\d+\): block\.1\.attn\.q_linear\.weight"):
        convert_state_dict(sd, model, "spikformer")
    wide = create_model("spikformer_4_384", dim=128, num_heads=4, depth=2, num_classes=10, img_size=32)
    with pytest.raises(ConfigError, match="shape mismatch"):
        convert_state_dict(sd, wide, "spikformer")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.pth: not a loadable weights file"):
        read_state_dict(str(tmp_path / "junk.pth"))


def test_convert_command_finds_the_registered_model_and_writes_a_hub_folder(tmp_path, capsys):
    sd = random_state(official_spikformer(384, 4, 10, 3, "cifar"))
    torch.save(sd, tmp_path / "spikformer_cifar10.pth")
    assert main(["convert", str(tmp_path / "spikformer_cifar10.pth"), str(tmp_path / "out")]) == 0
    assert "-> spikformer_4_384 {'num_classes': 10, 'in_chans': 3}" in capsys.readouterr().out
    model = from_pretrained(str(tmp_path / "out"))
    ref = create_model("spikformer_4_384", num_classes=10).eval()
    set_directly(ref, sd, 4, "cifar")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_spikingjelly_checkpoint_file_loads_onto_ours(tmp_path):
    from spikeformers.speed.sj import match_pool_order, sj_logits

    functional, Spikformer = spikingjelly_spikformer()

    torch.manual_seed(0)
    sj = Spikformer(T=2, in_channels=3, img_size_h=16, img_size_w=16, patch_size=4, num_classes=10, embed_dims=32,
                    num_heads=4, mlp_ratio=4.0, depths=2).double()
    torch.save(sj.state_dict(), tmp_path / "sj.pth")
    ours = create_model("spikformer_4_384", dim=32, num_heads=4, depth=2, T=2, img_size=16,
                        checkpoint=str(tmp_path / "sj.pth")).double()
    match_pool_order(sj)
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(sj_logits(sj, x, functional), ours(x), rtol=1e-10, atol=1e-12)


def official_qkformer(D, depths, classes, chans):
    """(name, shape) of the official QKFormer state dict (imagenet/qkformer.py: three patch embeddings,
    Q-K token attention in stages 1-2, SSA in stage 3)."""
    def bn(pre, c):
        return [(f"{pre}.{p}", () if p == "num_batches_tracked" else (c,)) for p in BN]

    def conv(pre, cout, cin, k):
        return [(f"{pre}_conv.weight", (cout, cin, k, k))] + bn(f"{pre}_bn", cout)

    names = conv("patch_embed1.proj", D // 8, chans, 3) + conv("patch_embed1.proj1", D // 4, D // 8, 3)
    names += conv("patch_embed1.proj2", D // 4, D // 4, 3) + conv("patch_embed1.proj_res", D // 4, D // 8, 1)
    for pe, d in ((2, D // 2), (3, D)):
        names += conv(f"patch_embed{pe}.proj3", d, d // 2, 3) + conv(f"patch_embed{pe}.proj4", d, d, 3)
        names += conv(f"patch_embed{pe}.proj_res", d, d // 2, 1)
    for s, (d, n, attn, parts) in enumerate([(D // 4, 1, "tssa", ("q", "k")), (D // 2, 2, "tssa", ("q", "k")),
                                            (D, depths - 3, "attn", ("q", "k", "v"))], start=1):
        for j in range(n):
            pre = f"stage{s}.{j}"
            for p in parts + ("proj",):
                names.append((f"{pre}.{attn}.{p}_conv.weight", (d, d, 1)))
                if p == "proj":
                    names.append((f"{pre}.{attn}.proj_conv.bias", (d,)))
                names += bn(f"{pre}.{attn}.{p}_bn", d)
            for fc, cin, cout in (("fc1", d, 4 * d), ("fc2", 4 * d, d)):
                names += [(f"{pre}.mlp.{fc}_conv.weight", (cout, cin, 1, 1)), (f"{pre}.mlp.{fc}_conv.bias", (cout,))]
                names += bn(f"{pre}.mlp.{fc}_bn", cout)
    return names + [("head.weight", (classes, D)), ("head.bias", (classes,))]


@torch.no_grad()
def set_qkformer_directly(model, sd):
    def conv_bn(ours, pre):
        ours.conv.weight.copy_(sd[f"{pre}_conv.weight"])
        for p in BN:
            getattr(ours.bn, p).copy_(sd[f"{pre}_bn.{p}"])

    for i, proj in enumerate(("proj", "proj1", "proj2")):
        conv_bn(model.patch_embeds[0].stages[i], f"patch_embed1.{proj}")
    conv_bn(model.patch_embeds[0].shortcut, "patch_embed1.proj_res")
    for pe in (2, 3):
        conv_bn(model.patch_embeds[pe - 1].stages[0], f"patch_embed{pe}.proj3")
        conv_bn(model.patch_embeds[pe - 1].stages[1], f"patch_embed{pe}.proj4")
        conv_bn(model.patch_embeds[pe - 1].shortcut, f"patch_embed{pe}.proj_res")
    for s, stage in enumerate(model.stages, start=1):
        for j, blk in enumerate(stage):
            pre = f"stage{s}.{j}.{'attn' if s == 3 else 'tssa'}"
            for p in ("q", "k", "v", "proj") if s == 3 else ("q", "k", "proj"):
                layer = getattr(blk.attn, p)
                layer.linear.weight.copy_(sd[f"{pre}.{p}_conv.weight"].squeeze(-1))
                if p == "proj":
                    layer.linear.bias.copy_(sd[f"{pre}.proj_conv.bias"])
                for q in BN:
                    getattr(layer.bn, q).copy_(sd[f"{pre}.{p}_bn.{q}"])
            for fc in ("fc1", "fc2"):
                layer = getattr(blk.mlp, fc)
                layer.linear.weight.copy_(sd[f"stage{s}.{j}.mlp.{fc}_conv.weight"].flatten(1))
                layer.linear.bias.copy_(sd[f"stage{s}.{j}.mlp.{fc}_conv.bias"])
                for q in BN:
                    getattr(layer.bn, q).copy_(sd[f"stage{s}.{j}.mlp.{fc}_bn.{q}"])
    model.head.fc.weight.copy_(sd["head.weight"])
    model.head.fc.bias.copy_(sd["head.bias"])


def test_official_qkformer_names_load_and_give_the_directly_set_models_outputs(tmp_path):
    kw = dict(dim=64, depths=(1, 2, 2), num_heads=4, num_classes=10, img_size=32, T=2)
    sd = random_state(official_qkformer(64, 5, 10, 3))
    torch.save({"model": sd}, tmp_path / "qkformer.pth")
    loaded = create_model("qkformer_10_384", **kw, checkpoint=str(tmp_path / "qkformer.pth")).eval()
    ref = create_model("qkformer_10_384", **kw).eval()
    set_qkformer_directly(ref, sd)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), ref(x))


def test_qkformer_batch_quirk_runs_the_stage3_projection_lif_over_t_times_b_like_the_official_code():
    pytest.importorskip("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import functional, neuron

    from spikeformers.models.qkformer import official_batch_quirk

    model = official_batch_quirk(create_model("qkformer_10_384", dim=64, depths=(1, 2, 2), num_heads=4,
                                              num_classes=10, img_size=32, T=2)).double()
    ours = model.stages[2][0].attn.proj_neuron
    T, B, N, C = 2, 3, 4, 64
    x = torch.randn(T, B, N, C, dtype=torch.float64) * 2
    official = neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m")  # its MultiStepLIFNode
    want = official(x.flatten(0, 1).transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C)  # on [T B, C, N]
    functional.reset_net(official)
    assert torch.equal(ours(x), want)
    per_sample = create_model("qkformer_10_384", dim=64, depths=(1, 2, 2), num_heads=4, num_classes=10,
                              img_size=32, T=2).double().stages[2][0].attn.proj_neuron
    assert not torch.equal(per_sample(x), want)  # the quirk is a real difference
