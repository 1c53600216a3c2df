"""The `spikeformers` command end to end on a few steps, and one-line errors for bad input."""
import json
import os
import subprocess
import sys

import pytest

from spikeformers.cli import main

FAST = ["model.dim=32", "data.batch_size=128", "-q"]


def test_train_eval_models_info(tmp_path, capsys):
    assert main(["train", "epochs=1", "run.max_steps=3", f"run.out_dir={tmp_path}", "name=cli", *FAST]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "mean firing rate" in out and "summary.json" in out
    run = tmp_path / "cli"
    summary = json.load(open(run / "summary.json"))
    assert main(["eval", str(run), "-q"]) == 0
    ev = json.load(open(run / "eval.json"))
    assert ev["test_acc"] == summary["test_acc"] and ev["firing_rates"] == summary["firing_rates"]
    capsys.readouterr()
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "spikformer_4_384" in out and "95.19% CIFAR-10" in out and "9.325" in out
    assert main(["info"]) == 0
    assert "kernels:" in capsys.readouterr().out


def test_yaml_recipe_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: spikformer_tiny, attention: a2os2a}\nschedule: {epochs: 1}\n")
    assert main(["train", str(recipe), "run.max_steps=2", f"run.out_dir={tmp_path}", "name=y", *FAST]) == 0
    cfg = (tmp_path / "y" / "config.yaml").read_text()
    assert "attention: a2os2a" in cfg and "dim: 32" in cfg


@pytest.mark.parametrize("args,message", [
    (["train", "foo=1"], "unknown override key 'foo'"),
    (["train", "optim.lrr=1"], "valid keys"),
    (["train", "optim.lr=abc"], "optim.lr"),
    (["train", "model=spikformer_9"], "unknown model 'spikformer_9'"),
    (["train", "attention=nope"], "unknown attention 'nope'"),
    (["train", "neuron=nope"], "unknown neuron 'nope'"),
    (["train", "data=fashion_mnist", "data.root=/nonexistent/fm"], "/nonexistent/fm"),
    (["train", "missing.yaml"], "missing.yaml"),
    (["eval", "/nonexistent/run"], "not a run directory"),
])
def test_bad_input_gives_one_line_error(args, message, capsys, tmp_path):
    assert main([*args, f"run.out_dir={tmp_path}"] if args[0] == "train" else args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "epochs=1", "run.max_steps=2", f"run.out_dir={tmp_path}", "name=c", *FAST]) == 0
    ckdir = tmp_path / "c" / "checkpoint"
    latest = json.load(open(ckdir / "latest.json"))
    weights = next(p for p in (ckdir).rglob("model.safetensors"))
    weights.write_bytes(b"\x00garbage" * 10)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "c"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.safetensors" in err and len(err.splitlines()) == 1 and latest


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="dataset-fashion-mnist not installed")
def test_spikformer_a2os2a_on_real_fashion_mnist(tmp_path, capsys):
    args = ["train", "model=spikformer_4_384", "attention=a2os2a", "data=fashion_mnist", "run.max_steps=2",
            "model.dim=48", "model.depth=1", "data.eval_batch_size=1000", "epochs=1", f"run.out_dir={tmp_path}",
            "name=fm", "-q"]
    assert main(args) == 0
    s = json.load(open(tmp_path / "fm" / "summary.json"))
    assert s["test_images"] == 10000 and s["model_args"]["img_size"] == 28 and s["model_args"]["in_chans"] == 1


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "spikeformers", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout
