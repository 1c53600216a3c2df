"""Benchmark suites: the suite file is checked whole before any run, cells are ordinary run directories,
a killed suite resumes to the same table, Ray gives the local launcher's numbers, and the leaderboard
aggregates hand-made run directories exactly."""
import json
import math
import os
import statistics

import pytest
import yaml

from spikeformers.cli import main
from spikeformers.errors import ConfigError
from spikeformers.suite import cell_state, leaderboard, load_suite, mean_std, pareto_front, run_suite
from spikeformers.suite.board import config_key

FAST = {"schedule": {"epochs": 1, "warmup_epochs": 0}, "run": {"max_steps": 3}, "data": {"batch_size": 32}}


def suite_file(tmp_path, **body):
    d = {"suite": "t", "config": FAST, **body}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


# --- the suite file -------------------------------------------------------------------------------------
def test_cells_are_the_cross_product_of_runs_and_axes(tmp_path):
    path = suite_file(tmp_path, runs=[{"model.twin": None}, {"model.twin": "ann"}],
                      axes={"attention": ["ssa", "sdsa"], "run.seed": [0, 1]})
    s = load_suite(path, str(tmp_path / "out"))
    assert [c.name for c in s.cells][:3] == ["twin-null_attention-ssa_seed-0", "twin-null_attention-ssa_seed-1",
                                            "twin-null_attention-sdsa_seed-0"]
    assert len(s.cells) == 8 and s.axes == ["model.twin", "attention", "run.seed"]
    c = s.cells[-1].config
    assert (c.model.twin, c.model.attention, c.run.seed, c.schedule.epochs) == ("ann", "sdsa", 1, 1)
    assert c.run.out_dir == str(tmp_path / "out") and c.run.name == s.cells[-1].name


@pytest.mark.parametrize("body, match", [
    ({"axes": {"model.bogus": [1]}}, "run bogus-1: unknown config key 'model.bogus'|unknown option"),
    ({"axes": {"attention": ["ssa", "nope"]}}, "run attention-nope: unknown attention 'nope'"),
    ({"axes": {"data.options.mode": ["row"]}}, "run mode-row: dataset 'digits' got unknown option"),
    ({"config": {"optim": {"lr": "fast"}}}, "optim.lr must be a number"),
    ({"axes": {"model.depth": [1, "two"]}}, "run depth-two:"),
    ({"axes": {"task": ["lm"]}}, "task 'lm' cannot train on dataset 'digits'"),
    ({"axes": {"run.seed": []}}, "axis 'run.seed' must be a non-empty list"),
    ({"launcher": {"gpus": 2}}, "unknown launcher key"),
    ({"speed": "fast"}, "unknown suite key"),
    ({"recipe": "missing.yaml"}, "recipe 'missing.yaml' does not exist"),
])
def test_unknown_keys_anywhere_fail_before_any_run(tmp_path, body, match):
    path = suite_file(tmp_path, **body)
    with pytest.raises(ConfigError, match=match):
        run_suite(path, out=str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()  # nothing started


# --- running, resuming, launchers --------------------------------------------------------------------------
def _table(folder):
    with open(os.path.join(folder, "leaderboard.json")) as f:
        rows = json.load(f)["rows"]
    return [(r["attention"], r["metric_mean"], r["n"], r["values"]) for r in rows]


def test_a_killed_suite_runs_only_what_is_missing_and_ends_with_the_same_table(tmp_path):
    path = suite_file(tmp_path, axes={"attention": ["ssa", "sdsa"], "run.seed": [0, 1]}, runs=[{"run.max_steps": 2}],
                      launcher={"jobs": 2, "threads": 1})
    out = tmp_path / "out"
    first = run_suite(path, out=str(out), progress=False)
    assert not first["failed"] and len(first["leaderboard"]["rows"]) == 2
    table = _table(out)
    # the state a kill leaves: runs finished, one stopped after its checkpoint, one killed before any
    s = load_suite(path, str(out))
    finished, stopped, fresh = (out / s.cells[i].name for i in (0, 1, 3))
    os.remove(stopped / "summary.json")  # interrupted after its checkpoint: resumable
    for f in fresh.iterdir():  # killed in its first epoch: no checkpoint yet (its marker is written first)
        if f.name not in ("config.yaml", "provenance.json"):
            (f.unlink() if f.is_file() else __import__("shutil").rmtree(f))
    before = (finished / "summary.json").stat().st_mtime_ns
    assert [cell_state(str(p)) for p in (finished, stopped, fresh)] == ["finished", "resume", "start"]
    again = run_suite(path, out=str(out), progress=False)
    states = {k: v["state"] for k, v in again["cells"].items()}
    assert set(states.values()) == {"finished"} and not again["failed"]
    assert (finished / "summary.json").stat().st_mtime_ns == before  # not run again
    assert _table(out) == table
    for f in ("leaderboard.csv", "leaderboard.md", "leaderboard.json", "pareto.png", "throughput.png", "ablation.png"):
        assert (out / f).is_file()


def test_ray_launcher_gives_the_local_launchers_numbers(tmp_path):
    ray = pytest.importorskip("ray")
    path = suite_file(tmp_path, axes={"attention": ["ssa"], "run.seed": [0, 1]}, launcher={"jobs": 1, "threads": 1})
    local = run_suite(path, out=str(tmp_path / "local"), progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_suite(path, out=str(tmp_path / "ray"), launcher="ray", progress=False)
    finally:
        ray.shutdown()
    assert not remote["failed"] and _table(tmp_path / "ray") == _table(tmp_path / "local")
    for cell in ("attention-ssa_seed-0", "attention-ssa_seed-1"):
        a = json.load(open(tmp_path / "local" / cell / "summary.json"))
        b = json.load(open(tmp_path / "ray" / cell / "summary.json"))
        assert a["test_acc"] == b["test_acc"] and a["firing_rates"] == b["firing_rates"]
    assert local["leaderboard"]["rows"][0]["n"] == 2


def test_a_second_suite_command_on_the_same_folder_is_refused(tmp_path):
    from spikeformers.train.lock import FolderLock

    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(str(out), "suite"):
        with pytest.raises(ConfigError, match=f"is in use by process {os.getpid()} \\(suite\\)"):
            run_suite(suite_file(tmp_path), out=str(out), progress=False)


# --- the leaderboard from hand-made run directories ---------------------------------------------------------
def fake_run(folder, name, seed, acc, attention="ssa", twin=None, energy=1.0, ips=100.0):
    d = folder / name
    d.mkdir(parents=True)
    cfg = {"model": {"name": "spikformer_tiny", "attention": attention, "twin": twin}, "data": {"name": "digits"},
           "run": {"seed": seed, "name": name, "out_dir": str(folder)}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {"finished": True, "task": "classify", "metric": "test_acc", "model": "spikformer_tiny",
               "dataset": "digits", "parameters": 1000, "test_acc": acc, "mean_firing_rate": 0.1,
               "model_config": {"attention": attention, "neuron": "lif", "T": 4, "encoder": "direct", "twin": twin},
               "energy": {"snn_uJ": energy, "snn_lemaire_uJ": 2 * energy, "ann_twin_uJ": 4.0, "qann_uJ": 3.0,
                          "snn_ac": 10, "snn_mac": 5}, "train_time_s": 10.0, "device": "cpu", "git_commit": "abc"}
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "images_per_s": ips * e}) + "\n" for e in (1, 2, 3)))


def test_aggregation_is_mean_sample_std_and_n(tmp_path):
    for seed, acc in enumerate([0.90, 0.92, 0.97]):
        fake_run(tmp_path, f"ssa_s{seed}", seed, acc)
    fake_run(tmp_path, "sdsa_s0", 0, 0.5, attention="sdsa")
    fake_run(tmp_path, "qann_s0", 0, 0.8, twin="qann", energy=7.0)
    (tmp_path / "unfinished").mkdir()
    rows = leaderboard(str(tmp_path), expect=[({"attention": "ssa"}, "acc", 0.95, 1.0)])
    ssa = rows[0]
    assert ssa["attention"] == "ssa" and ssa["n"] == 3 and ssa["seeds"] == [0, 1, 2]
    assert ssa["metric_mean"] == pytest.approx(0.93, abs=1e-12)
    assert ssa["metric_std"] == pytest.approx(math.sqrt(((0.03) ** 2 + 0.01 ** 2 + 0.04 ** 2) / 2), abs=1e-12)
    assert ssa["check"] == "outside expected [0.95, 1]"
    assert ssa["energy_vs_ann"] == pytest.approx(0.25) and ssa["synaptic_ops"] == 15
    assert ssa["throughput"] == pytest.approx(250.0)  # median of epochs 2-3 (the first compiles)
    qann = next(r for r in rows if r["twin"] == "qann")
    assert qann["energy_memory_uJ"] == 3.0 and qann["mean_firing_rate"] is None and qann["n"] == 1
    assert [r["metric_mean"] for r in rows] == sorted((r["metric_mean"] for r in rows), reverse=True)
    assert mean_std([1.0]) == (1.0, None, 1) and mean_std([]) == (None, None, 0)
    assert config_key({"run": {"seed": 1, "lr": 2}}) == config_key({"run": {"seed": 7, "lr": 2}})


def test_pareto_front_by_hand():
    # (energy, accuracy): 1 and 2 are beaten by 0 (cheaper, as good or better); 4 ties 3 on cost but is worse
    pts = [(1.0, 0.9), (2.0, 0.85), (1.5, 0.9), (3.0, 0.95), (3.0, 0.93), (5.0, 0.99)]
    assert pareto_front(pts) == [0, 3, 5]
    assert pareto_front([(1.0, 3.0), (2.0, 2.5), (3.0, 2.7)], higher_is_better=False) == [0, 1]


def test_report_command_rebuilds_the_table_from_run_directories(tmp_path, capsys):
    for seed in (0, 1):
        fake_run(tmp_path, f"ssa_s{seed}", seed, 0.9 + seed / 100)
    assert main(["suite", "report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "acc 0.9050 ± 0.0071 (n=2)" in out and (tmp_path / "leaderboard.csv").is_file()
    rows = list(__import__("csv").DictReader(open(tmp_path / "leaderboard.csv")))
    assert rows[0]["n"] == "2" and float(rows[0]["metric_mean"]) == pytest.approx(statistics.fmean([0.9, 0.91]))


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "suites"))))
def test_every_shipped_suite_file_loads_and_checks(name, tmp_path):
    # load_suite builds every cell's model on the meta device and checks its dataset and task options
    suite = load_suite(os.path.join(os.path.dirname(__file__), "..", "suites", name), out_dir=str(tmp_path))
    assert suite.cells and all(c.config.run.out_dir == str(tmp_path) for c in suite.cells)
