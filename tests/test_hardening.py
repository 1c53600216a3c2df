"""The edges real users hit: file-system faults, concurrent runs, resume edge cases, permissions,
one-line messages, and set-up that asks for the CPU build of torch."""
import errno
import os
import stat
import subprocess
import sys

import pytest

from spikeformers.cli import main
from spikeformers.errors import ConfigError
from spikeformers.train import atomic_write_json, load_config, train
from spikeformers.train.lock import FolderLock

FAST = ["run.max_steps=2", "epochs=2", "run.device=cpu", "batch_size=64"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    s = train(load_config(None, FAST + [f"run.out_dir={out}", "name=r"]), progress=False)
    return s["run_dir"]


def test_results_keep_the_umasks_permissions(tmp_path, finished_run):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.json").st_mode) == 0o644
    for name in ("config.yaml", "summary.json", "metrics.csv", "provenance.json"):
        assert stat.S_IMODE(os.stat(os.path.join(finished_run, name)).st_mode) & 0o044 == 0o044, name
    ck = os.path.join(finished_run, "checkpoint")
    epochs = [d for d in os.listdir(ck) if d.startswith("epoch_")]
    assert epochs and all(stat.S_IMODE(os.stat(os.path.join(ck, d)).st_mode) & 0o055 == 0o055 for d in epochs)


def test_a_second_process_on_a_run_gets_a_one_line_error_and_records_stay_whole(finished_run, capsys):
    metrics = open(os.path.join(finished_run, "metrics.jsonl")).read()
    with FolderLock(finished_run, "training"):  # as another training process holds it
        assert main(["train", f"resume={finished_run}", "run.max_steps=3"]) == 2
    err = capsys.readouterr().err
    assert f"is in use by process {os.getpid()} (training)" in err and err.count("\n") == 1
    assert open(os.path.join(finished_run, "metrics.jsonl")).read() == metrics


@pytest.mark.parametrize("args, match", [
    (["resume="], "resume= needs a run directory"),
    (["resume={run}", "seed=7"], "cannot change run.seed when resuming"),
    (["resume={run}", "lr=0.1"], "cannot change optim.lr when resuming"),
    (["resume={run}", "epochs=0"], "schedule.epochs must be >= 1"),
    (["name=../elsewhere"], "run.name must be a plain folder name"),
    (["name=/abs/path"], "run.name must be a plain folder name"),
])
def test_resume_and_name_mistakes_are_one_line_errors(finished_run, capsys, args, match):
    assert main(["train"] + [a.format(run=finished_run) for a in args]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_run_aliases_are_accepted_on_resume(finished_run):
    assert main(["train", "-q", f"resume={finished_run}", "device=cpu"]) == 0


def test_os_errors_name_the_path_and_say_what_to_do(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", "-q", f"run.out_dir={blocker}"] + FAST) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and "point run.out_dir at a folder" in err and err.count("\n") == 1

    from spikeformers import io

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(a[0]))

    monkeypatch.setattr(io.os, "replace", full)
    assert main(["train", "-q", f"run.out_dir={tmp_path / 'runs'}"] + FAST) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the disk is full" in err and err.count("\n") == 1


def test_eval_prints_its_result_when_the_run_folder_is_read_only(finished_run, capsys, monkeypatch):
    from spikeformers.train import evaluate

    def read_only(path, obj):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(evaluate, "atomic_write_json", read_only)
    assert main(["eval", finished_run]) == 0
    out, err = capsys.readouterr()
    assert "test accuracy" in out and "could not write" in err and "Read-only file system" in err


def test_a_corrupt_training_state_does_not_block_eval(tmp_path):
    s = train(load_config(None, FAST + [f"run.out_dir={tmp_path}", "name=c"]), progress=False)
    ck = os.path.join(s["run_dir"], "checkpoint")
    folder = os.path.join(ck, [d for d in sorted(os.listdir(ck)) if d.startswith("epoch_")][-1])
    with open(os.path.join(folder, "train_state.pt"), "wb") as f:
        f.write(b"garbage")
    assert main(["eval", s["run_dir"]]) == 0


def test_ctrl_c_prints_how_to_continue(tmp_path, capsys, monkeypatch):
    from spikeformers.train import engine

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.Trainer, "train_epoch", interrupted)
    assert main(["train", f"run.out_dir={tmp_path}"] + FAST) == 130
    out, err = capsys.readouterr()
    assert "interrupted in epoch 1; no epoch finished, so nothing was saved" in out + err


def test_a_closed_pipe_ends_quietly():
    r = subprocess.run(f"{sys.executable} -m spikeformers info | head -1", shell=True, capture_output=True, text=True)
    assert r.stdout.startswith("spikeformers ") and "Traceback" not in r.stderr


def test_version(capsys):
    from spikeformers import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"spikeformers {__version__}"


def test_setup_asks_for_the_cpu_build_of_torch_without_a_gpu(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no nvidia-smi
    r = subprocess.run(["make", "-n", "-B", "-C", root, "setup", f"VENV={tmp_path / 'venv'}"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    torch_line = next(line for line in r.stdout.splitlines() if "torch" in line and "pip" in line)
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_line and "torch==2.13.0" in torch_line
    assert "--timeout" in torch_line and "--retries 0" in torch_line  # an unreachable index costs seconds
    assert "||" in torch_line  # then the plain index (a local wheel store, as on this machine)


def test_messages_name_the_file_and_suggest_the_fix(finished_run, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(finished_run, bad)
    (bad / "summary.json").write_text("{not json")
    assert main(["eval", str(bad)]) == 2
    assert f"{bad / 'summary.json'} is corrupt" in capsys.readouterr().err
    (bad / "summary.json").unlink()
    (bad / "config.yaml").write_bytes(b"\xff\xfe\x00binary")
    assert main(["eval", str(bad)]) == 2
    assert f"{bad / 'config.yaml'} is not a readable YAML config" in capsys.readouterr().err
    assert main(["train", "data=mnist1d", f"run.out_dir={tmp_path}"] + FAST) == 2
    err = capsys.readouterr().err
    assert "holds sequence, which spikformer_tiny does not read: use a sequence model, e.g. spikformer_seq" in err


def test_a_checkpoint_of_another_model_says_what_differs(finished_run, tmp_path, capsys):
    import shutil

    import yaml

    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["model"]["options"] = {"dim": 32}
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["eval", str(other)]) == 2
    err = capsys.readouterr().err
    assert "does not match the model" in err and "size mismatch" in err and err.count("\n") == 1


def test_config_command_round_trips_and_train_help_lists_every_key(tmp_path, capsys):
    from spikeformers.train.config import config_keys, config_to_dict

    assert main(["config", "configs/spikformer_tiny_digits.yaml", "lr=3e-4", "model.depth=2", "task=classify"]) == 0
    text = capsys.readouterr().out
    recipe = tmp_path / "resolved.yaml"
    recipe.write_text(text)
    want = config_to_dict(load_config("configs/spikformer_tiny_digits.yaml", ["lr=3e-4", "model.depth=2", "task=classify"]))
    assert config_to_dict(load_config(str(recipe))) == want
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for key, *_ in config_keys():
        assert f"  {key} (" in out
    assert "optim.lr (a number; default 0.002): peak AdamW learning rate" in out


def test_tensorboard_event_file_holds_loss_learning_rate_and_firing_rates(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    s = train(load_config(None, ["run.max_steps=4", "epochs=2", "run.device=cpu", "run.log_every=1",
                                 "run.loggers=[jsonl, csv, tensorboard]", f"run.out_dir={tmp_path}"]), progress=False)
    ea = EventAccumulator(os.path.join(s["run_dir"], "tensorboard"), size_guidance={"histograms": 0, "scalars": 0})
    ea.Reload()
    tags = ea.Tags()
    assert {"train/loss", "train/lr", "epoch/test_acc"} <= set(tags["scalars"])
    assert any(t.startswith("firing_rate/") for t in tags["scalars"]) and "firing_rates" in tags["histograms"]
    assert len(ea.Scalars("train/loss")) == 4 and ea.Scalars("train/lr")[0].value > 0
    with pytest.raises(ConfigError, match="run.loggers must be a list of"):
        load_config(None, ["run.loggers=[mlflow]"])


def _interrupt_at_call(monkeypatch, n):
    """Send this process a real SIGINT from inside the n-th training step."""
    import signal

    from spikeformers.train import engine

    calls, real = [0], engine.forward_backward

    def step(*a, **k):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(engine, "forward_backward", step)


def _records(run_dir):
    from spikeformers.train import read_jsonl

    drop = ("epoch_time_s", "elapsed_s", "images_per_s")
    return [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl"))]


def test_ctrl_c_in_epoch_one_saves_and_the_resume_continues_exactly(tmp_path, monkeypatch, capsys):
    args = ["epochs=2", "run.device=cpu", "batch_size=64", f"run.out_dir={tmp_path}"]
    ref = train(load_config(None, args + ["name=ref"]), progress=False)
    _interrupt_at_call(monkeypatch, 5)  # epoch 1 has 22 steps
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, args + ["name=cut"]), progress=True)
    assert "after 5 of 22 batches; saved. Continue with: spikeformers train resume=" in capsys.readouterr().out
    monkeypatch.undo()
    cut = os.path.join(tmp_path, "cut")
    resumed = train(None, progress=False, resume=cut)
    assert _records(cut) == _records(ref["run_dir"])  # same losses, accuracies, learning rates, steps
    assert resumed["test_acc"] == ref["test_acc"] and resumed["steps"] == ref["steps"] == 44


def _lr(step, total, warmup, base, low):
    """The warmup-cosine schedule written out (the reference for the resumed runs' recorded rates)."""
    import math

    if step < warmup:
        return base * (step + 1) / warmup
    return low + (base - low) * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def test_schedule_epochs_may_grow_on_resume_and_the_cosine_continues_from_the_current_rate(tmp_path, monkeypatch):
    import json
    import math

    args = ["epochs=2", "schedule.warmup_epochs=1", "run.device=cpu", "batch_size=64", f"run.out_dir={tmp_path}", "name=grow"]
    cfg = load_config(None, args)
    _interrupt_at_call(monkeypatch, 30)  # in epoch 2, past the warmup
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.undo()
    run = os.path.join(tmp_path, "grow")
    with pytest.raises(ConfigError, match="fewer than the 2 epoch"):
        train(None, progress=False, resume=run, overrides=("epochs=1",))
    train(None, progress=False, resume=run, overrides=("epochs=4",))
    base, low, spe = cfg.optim.lr, cfg.schedule.min_lr, 22
    warm = int(round(cfg.schedule.warmup_epochs * spe))
    anchor = 30  # the step after the interrupted one (the 30th) finished
    lr0 = _lr(anchor, 2 * spe, warm, base, low)  # the rate the 2-epoch schedule had there
    lrs = [r["lr"] for r in _records(run)]
    assert len(lrs) == 4
    assert lrs[0] == pytest.approx(_lr(spe - 1, 2 * spe, warm, base, low))  # epoch 1: the old schedule
    for epoch, got in zip((2, 3, 4), lrs[1:]):
        last = epoch * spe - 1
        want = low + (lr0 - low) * 0.5 * (1 + math.cos(math.pi * (last - anchor) / (4 * spe - anchor)))
        assert got == pytest.approx(want)
    with open(os.path.join(run, "provenance.json")) as f:
        starts = json.load(f)["starts"]
    assert [(s["schedule_epochs"], s["step"]) for s in starts] == [(2, 0), (4, 30)]
    assert "epochs: 4" in open(os.path.join(run, "config.yaml")).read()


def test_one_energy_and_firing_rate_measurement_per_run(finished_run, capsys):
    import json

    from spikeformers.train import evaluate_run

    with open(os.path.join(finished_run, "summary.json")) as f:
        summary = json.load(f)
    ev = evaluate_run(finished_run, device="cpu", progress=False)
    assert main(["energy", finished_run]) == 0
    capsys.readouterr()
    with open(os.path.join(finished_run, "energy.json")) as f:
        energy = json.load(f)["headline"]
    assert summary["energy"]["sample"] == ev["energy"]["sample"] == "first 64 test images"
    for key in ("snn_uJ", "snn_lemaire_uJ", "ann_twin_uJ", "qann_uJ", "snn_ac", "snn_mac"):
        assert summary["energy"][key] == ev["energy"][key] == energy[key], key
    assert energy["images"] == 64
    assert ev["mean_firing_rate"] == summary["mean_firing_rate"] and ev["firing_rates"] == summary["firing_rates"]


def test_two_concurrent_resumes_one_proceeds_the_other_exits_2(tmp_path, monkeypatch):
    import json

    args = ["epochs=3", "run.device=cpu", "batch_size=64", f"run.out_dir={tmp_path}", "name=two"]
    _interrupt_at_call(monkeypatch, 3)  # stopped (and saved) inside epoch 1
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, args), progress=False)
    run = os.path.join(tmp_path, "two")
    cmd = [sys.executable, "-m", "spikeformers", "train", "-q", f"resume={run}"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [rc for rc, _ in results] == [0, 2]
    assert "is in use by process" in results[1][1] and results[1][1].count("\n") == 1
    with open(os.path.join(run, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]


def test_a_lock_file_left_by_a_killed_process_does_not_block(finished_run):
    with open(os.path.join(finished_run, ".lock"), "w") as f:
        f.write("process 999999 (training)\n")  # its holder is gone: the kernel released the lock
    assert main(["train", "-q", f"resume={finished_run}", "device=cpu"]) == 0
