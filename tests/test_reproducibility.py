"""Same seed, same device, same config: the same metrics; every run records what produced it."""
import dataclasses
import json
from pathlib import Path

import pytest

from spikeformers.data import create_dataset
from spikeformers.train import engine, load_config, read_jsonl, train

TIMING = {"images_per_s", "epoch_time_s", "elapsed_s"}  # wall-clock fields, the only ones allowed to differ

# Every source of randomness of the loop: shuffling, crops, flips, erasing, mixup/cutmix, TET, EMA.
STOCHASTIC = ["data.erasing=0.5", "optim.mixup=0.4", "optim.cutmix=1.0", "optim.mix_prob=0.8", "optim.tet=true",
              "run.ema=0.9", "schedule.epochs=2", "data.batch_size=64", "run.device=cpu"]


@pytest.fixture
def no_plots(monkeypatch):
    """No plots, and digits cut to 200 train / 100 test images (3 steps an epoch), to stay fast."""
    monkeypatch.setattr(engine, "plot_curves", lambda *a, **k: None)
    monkeypatch.setattr(engine, "plot_firing_rates", lambda *a, **k: None)
    ds = create_dataset("digits")
    small = dataclasses.replace(ds, train_x=ds.train_x[:200], train_y=ds.train_y[:200], test_x=ds.test_x[:100],
                                test_y=ds.test_y[:100])
    monkeypatch.setattr(engine, "build_dataset", lambda cfg: small)


def metrics(run_dir):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_jsonl(Path(run_dir) / "metrics.jsonl")]


def test_same_seed_same_metrics(tmp_path, no_plots):
    runs = [train(load_config(None, STOCHASTIC + [f"run.out_dir={tmp_path}", f"name=r{i}"]), progress=False)
            for i in range(2)]
    a, b = metrics(runs[0]["run_dir"]), metrics(runs[1]["run_dir"])
    assert len(a) == 2 and a == b  # every value identical, to the last bit
    assert runs[0]["test_acc"] == runs[1]["test_acc"] and runs[0]["firing_rates"] == runs[1]["firing_rates"]
    other = train(load_config(None, STOCHASTIC + [f"run.out_dir={tmp_path}", "name=s1", "seed=1"]), progress=False)
    assert metrics(other["run_dir"]) != a


def test_unfinished_run_has_config_and_provenance(tmp_path, no_plots):
    cfg = load_config(None, [f"run.out_dir={tmp_path}", "name=cut", "schedule.epochs=3", "run.max_minutes=1e-9",
                             "data.batch_size=64", "run.device=cpu"])
    out = train(cfg, progress=False)
    run = Path(out["run_dir"])
    assert out["finished"] is False and not (run / "summary.json").exists()
    assert load_config(str(run / "config.yaml")) == cfg  # the resolved config
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["version"] and prov["torch"] and "git_commit" in prov and "git_dirty" in prov
    assert prov["device"].startswith("cpu") and len(prov["starts"]) == 1
    resumed = train(None, progress=False, resume=str(run), overrides=("run.max_minutes=null",))
    assert resumed["finished"] and resumed["git_commit"] == prov["git_commit"]
    assert len(json.loads((run / "provenance.json").read_text())["starts"]) == 2  # each (re)start is recorded
