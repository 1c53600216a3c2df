"""The training engine end to end on tiny runs: files, determinism, exact resume, NaN stop."""
import json
import os

import pytest
import torch

from spikeformers.errors import TrainingDiverged
from spikeformers.train import Trainer, load_config, train
from spikeformers.io import load_checkpoint

FAST = ["model.dim=32", "data.batch_size=128", "run.log_every=5", "optim.lr=3e-3"]


def _cfg(tmp_path, *extra):
    return load_config(None, [f"run.out_dir={tmp_path}", *FAST, *extra])


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f]
    drop = {"images_per_s", "epoch_time_s", "elapsed_s"}  # wall-clock fields
    return [{k: v for k, v in r.items() if k not in drop} for r in recs]


def test_run_writes_every_file(tmp_path):
    s = train(_cfg(tmp_path, "epochs=1"), progress=False)
    run = s["run_dir"]
    for f in ("config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "curves.png", "firing_rates.png"):
        assert os.path.isfile(os.path.join(run, f)), f
    summary = json.load(open(os.path.join(run, "summary.json")))
    assert summary["test_images"] == 360 and 0 <= summary["test_acc"] <= 1
    assert set(summary["firing_rates"]) >= {"patch_embed.neurons.0", "blocks.0.attn.attn_neuron"}
    assert all(0 <= r <= 1 for r in summary["firing_rates"].values())
    for key in ("device", "train_time_s", "git_commit", "version", "parameters"):
        assert key in summary
    ck = load_checkpoint(os.path.join(run, "checkpoint"))
    assert ck.train_state["epoch"] == 1 and ck.meta["model_name"] == "spikformer_tiny"


def test_same_seed_same_numbers(tmp_path):
    a = train(_cfg(tmp_path / "a", "epochs=1"), progress=False)
    b = train(_cfg(tmp_path / "b", "epochs=1"), progress=False)
    assert _metrics(a["run_dir"]) == _metrics(b["run_dir"])
    c = train(_cfg(tmp_path / "c", "epochs=1", "seed=1"), progress=False)
    assert _metrics(c["run_dir"]) != _metrics(a["run_dir"])


@pytest.mark.parametrize("extra", [(), ("run.ema=0.99",)], ids=["plain", "ema"])
def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch, extra):
    full = train(_cfg(tmp_path / "full", "epochs=3", *extra), progress=False)

    calls = {"n": 0}
    original = Trainer.train_epoch

    def killed_in_epoch_3(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process dies during the third epoch
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path / "part", "epochs=3", *extra), progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    run = os.path.join(tmp_path / "part", os.listdir(tmp_path / "part")[0])
    resumed = train(None, progress=False, resume=run)
    assert _metrics(resumed["run_dir"]) == _metrics(full["run_dir"])
    assert resumed["test_acc"] == full["test_acc"]
    assert resumed["firing_rates"] == full["firing_rates"]


def test_resume_refuses_to_change_the_recipe(tmp_path):
    s = train(_cfg(tmp_path, "epochs=1"), progress=False)
    with pytest.raises(ValueError, match="cannot change optim.lr when resuming"):
        train(None, progress=False, resume=s["run_dir"], overrides=("optim.lr=1.0",))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import spikeformers.models.spikformer as spk

    forward = spk.Spikformer.forward
    state = {"epoch2": False}

    def poisoned(self, x, per_step=False):
        out = forward(self, x, per_step)
        return out * float("nan") if (self.training and state["epoch2"]) else out

    monkeypatch.setattr(spk.Spikformer, "forward", poisoned)
    cfg = _cfg(tmp_path, "epochs=3")
    trainer = Trainer(cfg, progress=False)
    original = trainer.train_epoch

    def epochs():
        state["epoch2"] = trainer.epoch >= 1
        return original()

    trainer.train_epoch = epochs
    with pytest.raises(TrainingDiverged, match=r"NaN/inf in epoch 2.*last good checkpoint .*\(epoch 1\)"):
        trainer.fit()
    ck = load_checkpoint(os.path.join(trainer.run_dir, "checkpoint"))
    assert ck.train_state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ck.model_state.values() if t.is_floating_point())


def test_max_minutes_stops_resumably(tmp_path):
    s = train(_cfg(tmp_path, "epochs=3", "run.max_minutes=0.0001"), progress=False)
    assert s["finished"] is False and s["epoch"] == 1
    done = train(None, progress=False, resume=s["run_dir"], overrides=("run.max_minutes=60",))
    assert done["finished"] and done["epochs"] == 3
