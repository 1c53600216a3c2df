"""Benchmark plumbing on the CPU: the SpikingJelly -> ours weight mapping (the same-loss check rests on
it) and the `spikeformers bench` command line."""

import json

import pytest
import torch

from spikeformers import create_model
from spikeformers.cli import main
from spikeformers.speed.lm import SETTINGS, main as lm_main
from writers import spikingjelly_spikformer as _spikingjelly  # noqa: E402  (tests/writers.py)




def test_spikingjelly_weights_map_onto_ours_exactly():
    functional, Spikformer = _spikingjelly()
    from spikeformers.speed.sj import match_pool_order, sj_logits
    from spikeformers.models.convert import sj_to_ours, unmapped_parameters

    torch.manual_seed(0)
    dims = dict(dim=32, num_heads=4, depth=2, T=2, img_size=16)
    sj = Spikformer(T=2, in_channels=3, img_size_h=16, img_size_w=16, patch_size=4, num_classes=10, embed_dims=32,
                    num_heads=4, mlp_ratio=4.0, depths=2).double()
    ours = create_model("spikformer_4_384", **dims).double()
    state = sj_to_ours(sj.state_dict(), ours.state_dict())
    assert all(state[k].abs().sum() == 0 for k in unmapped_parameters(state))
    ours.load_state_dict(state)
    match_pool_order(sj)
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    a, b = sj_logits(sj, x, functional), ours(x)  # training mode: BN batch statistics
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    (a * torch.arange(10.0, dtype=a.dtype)).sum().backward()
    (b * torch.arange(10.0, dtype=b.dtype)).sum().backward()
    sj_p, our_p = dict(sj.named_parameters()), dict(ours.named_parameters())
    pairs = [("head.weight", "head.fc.weight"), ("patch_embed.stages.0.conv_bn.block.0.weight", "patch_embed.stages.0.conv.weight"),
             ("blocks.1.mlp.fc2.0.weight", "blocks.1.mlp.fc2.linear.weight")]
    for s, o in pairs:
        torch.testing.assert_close(sj_p[s].grad.reshape(our_p[o].grad.shape), our_p[o].grad, rtol=1e-8, atol=1e-12)
    qkv = sj_p["blocks.0.attn.qkv_conv_bn.0.weight"].grad.squeeze(-1)
    torch.testing.assert_close(qkv[32:64], our_p["blocks.0.attn.k.linear.weight"].grad, rtol=1e-8, atol=1e-12)


def test_mapping_names_what_it_cannot_map():
    from spikeformers.models.convert import sj_to_ours

    ours = create_model("spikformer_4_384", dim=32, num_heads=4, depth=1, T=2, img_size=16).state_dict()
    with pytest.raises(KeyError):
        sj_to_ours({"head.weight": torch.zeros(10, 32)}, ours)


def test_bench_command_line(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "neuron" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert main(["bench", "model"]) == 2
        assert "needs a CUDA GPU" in capsys.readouterr().out


def test_bench_lm_dry_run_builds_every_setting(tmp_path):
    """`bench lm --dry-run`: each setting (SpikeGPT included, which has no heads) trains and generates at tiny sizes."""
    out = tmp_path / "lm.json"
    assert lm_main(["--dry-run", "--generate", "3", "--settings", "twin", "spikegpt", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {(r["setting"], r["mode"]) for r in rows} == {("twin", "eager"), ("spikegpt", "eager"),
                                                        ("twin", "generate-eager"), ("spikegpt", "generate-eager")}
    assert all(r["tokens_per_s"] > 0 for r in rows) and "spikegpt" in SETTINGS
