"""`spikeformers energy` on a registered name and on a trained run directory; the training summary."""
import json
import os

import pytest

from spikeformers.cli import main

FASHION = "/usr/share/datasets/fashion-mnist"


def check_files(out_dir):
    with open(os.path.join(out_dir, "energy.json")) as f:
        d = json.load(f)
    with open(os.path.join(out_dir, "energy.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    h = d["headline"]
    for key in ("snn_uJ", "snn_lemaire_uJ", "ann_twin_uJ", "qann_uJ", "ann_over_snn", "qann_over_snn", "ops_reduction"):
        assert isinstance(h[key], float), key
    assert d["snn_counts"]["layers"] and d["ann_twin_counts"]["totals"]["ac"] == 0
    assert not [n for n in os.listdir(out_dir) if n.endswith(".tmp") or ".tmp." in n]  # atomic writes
    return d


def test_energy_on_a_model_name(tmp_path, capsys):
    if not os.path.isdir(FASHION):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    out = tmp_path / "e"
    rc = main(["energy", "spikformer_tiny", "depth=1", "dim=32", "--data", "fashion_mnist", "--batch", "4", "--out", str(out),
               "--model-energy", "lemaire", "--preset", "int8"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "layer" in text and "patch_embed.stages.0.conv" in text and "blocks.0.attn.product" in text
    assert "on 4 fashion_mnist images" in text and "energy (lemaire)" in text and "QANN twin" in text
    d = check_files(out)
    assert d["info"]["options"]["img_size"] == 28 and d["preset"] == "int8"
    assert d["headline"]["qann_act_bits"] == 3  # T = 4


def test_energy_flags_reach_the_counter(tmp_path, capsys):
    out = tmp_path / "f"
    rc = main(["energy", "spikformer_tiny", "--batch", "2", "--out", str(out), "--first-layer-times-T",
               "--multi-spike-max", "3", "--weight-bits", "4", "--memory", "bank"])
    assert rc == 0 and "first layer xT (flag)" in capsys.readouterr().out
    d = check_files(out)
    assert d["snn_counts"]["rules"] == {"multi_spike_max": 3, "first_layer_times_T": True}
    assert d["lemaire_costs"]["weight_bits"] == 4 and d["lemaire_costs"]["memory"] == "bank"


def test_energy_errors(tmp_path, capsys):
    assert main(["energy", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["energy", "spikformer_tiny", "--batch", "0"]) == 2


def test_train_summary_and_energy_on_the_run(tmp_path, capsys):
    rc = main(["train", "-q", "epochs=1", "run.max_steps=2", f"run.out_dir={tmp_path}", "name=r", "model.dim=32", "data.batch_size=16"])
    assert rc == 0
    printed = capsys.readouterr().out
    run = tmp_path / "r"
    with open(run / "summary.json") as f:
        e = json.load(f)["energy"]
    assert "error" not in e, e
    assert e["T"] == 4 and e["images"] == 64 and e["snn_uJ"] > 0 and e["ann_twin_uJ"] > 0 and e["qann_act_bits"] == 3
    assert e["text"].startswith("Energy per image") and e["text"] in printed
    rc = main(["energy", str(run), "--batch", "8"])
    text = capsys.readouterr().out
    assert rc == 0 and "trained weights" in text and "on 8 digits images" in text
    check_files(run)
    assert main(["energy", str(run), "--data", "fashion_mnist"]) == 2
    assert main(["energy", str(run), "depth=2"]) == 2


def test_energy_on_a_language_model(tmp_path, capsys):
    rc = main(["energy", "spiking_lm_tiny", "--batch", "2", "--seq-len", "8", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert rc == 0 and "on 2 random-token sequences" in text and "Energy per sequence" in text
    assert "first layer spiking (no analog layer)" in text  # every Linear before the head reads spikes
    check_files(tmp_path)
    assert main(["energy", "spiking_lm_tiny", "--data", "digits"]) == 2
