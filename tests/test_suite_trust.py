"""Trust: a suite (and train / resume) never touches what it did not create, and every bad input ends in
one line. Foreign files are left alone, planted symbolic links are refused without writing through them,
failures set the exit status, children die with the suite, one Ctrl-C stops it cleanly, and a resume
refuses a config.yaml edited behind its checkpoint's back."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from spikeformers.cli import main
from spikeformers.errors import ConfigError
from spikeformers.suite import cell_state, leaderboard, load_suite, run_suite
from spikeformers.train import load_config, train
from spikeformers.io import atomic_write_text, load_checkpoint
from spikeformers.train.lock import FolderLock

FAST = {"schedule": {"epochs": 1, "warmup_epochs": 0}, "run": {"max_steps": 2}, "data": {"batch_size": 32},
        "model": {"T": 1}}


def suite_file(folder, **body):
    d = {"suite": "t", "config": FAST, "launcher": {"jobs": 2, "threads": 1}, **body}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def snapshot(path):
    """Every file under `path` (not following links) with its bytes and mtime; links as their target."""
    if os.path.islink(path):
        return {"": ("link", os.readlink(path))}
    if os.path.isfile(path):
        return {"": (open(path, "rb").read(), os.stat(path).st_mtime_ns)}
    out = {}
    for root, dirs, files in os.walk(path):
        for f in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = os.path.join(root, f)
            out[os.path.relpath(p, path)] = snapshot(p)[""]
    return out


def one_line_error(capsys, code, rc):
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.count("\n") == 1, err
    return err


def wait_for(what, condition, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def alive(pid):
    """Whether `pid` runs (a zombie nobody reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def holder_pid(cell):
    try:
        text = (cell / ".lock").read_text()
    except OSError:
        return None
    return int(text.split()[1]) if text.startswith("process ") else None


# --- a suite that ran: two finished cells, copied for each test -------------------------------------------
@pytest.fixture(scope="module")
def made_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("made")
    path = suite_file(root, axes={"run.seed": [0, 1]})
    r = run_suite(path, out=str(root / "out"), progress=False)
    assert not r["failed"]
    return path, root / "out"


@pytest.fixture
def suite_copy(made_suite, tmp_path):
    path, out = made_suite
    copy = tmp_path / "s"
    shutil.copytree(out, copy, symlinks=True)
    (copy / "seed-1" / "summary.json").unlink()  # stopped after its checkpoint: a rerun resumes it
    return path, copy


# --- case 1: a suite deletes nothing it did not write ------------------------------------------------------
def test_a_suite_refuses_a_folder_it_did_not_create_and_deletes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "seed-0").mkdir(parents=True)
    (out / "seed-0" / "thesis.txt").write_text("four years\n")
    path = suite_file(tmp_path, axes={"run.seed": [0]})
    err = one_line_error(capsys, 2, main(["suite", path, "--out", str(out), "-q"]))
    assert str(out) in err and "not a suite folder" in err
    assert (out / "seed-0" / "thesis.txt").read_text() == "four years\n"
    assert sorted(os.listdir(out)) == ["seed-0"] and os.listdir(out / "seed-0") == ["thesis.txt"]


def test_a_rerun_resumes_and_restarts_its_own_cells_around_foreign_files(suite_copy):
    """One cell resumes, one killed in its first epoch starts again in place (no folder deleted), the
    resumed cell's lock is still held when the rerun begins (it waits), and every foreign file survives."""
    path, out = suite_copy
    killed = out / "seed-0"
    for entry in os.listdir(killed):  # killed before its first checkpoint: only its marker is left
        if entry != "provenance.json":
            p = killed / entry
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    epoch_dir = next((out / "seed-1" / "checkpoint").glob("epoch_*"))
    planted = [out, out / ".cells", out / ".logs", killed, out / "seed-1", out / "seed-1" / "checkpoint", epoch_dir]
    for folder in planted:
        (folder / "thesis.txt").write_text(f"mine: {folder.name}\n")
    before = {str(f): snapshot(f / "thesis.txt") for f in planted}
    marker = json.loads((out / "suite.json").read_text())
    holder = FolderLock(str(out / "seed-1"), "training")
    holder.__enter__()  # a run still saving its last step when the rerun begins
    timer = threading.Timer(1.0, holder.__exit__)
    timer.start()
    try:
        assert main(["suite", path, "--out", str(out), "-q"]) == 0
    finally:
        timer.join()
    assert {str(f): snapshot(f / "thesis.txt") for f in planted} == before
    assert cell_state(str(killed)) == cell_state(str(out / "seed-1")) == "finished"
    after = json.loads((out / "suite.json").read_text())  # the marker outlives the suite's record
    assert (after["id"], after["created"]) == (marker["id"], marker["created"])
    for cell in (killed, out / "seed-1"):
        assert json.loads((cell / "provenance.json").read_text())["suite_id"] == marker["id"]


# --- case 2: the suite's name is a folder name -------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../escape", "..", "a/b", "ABSOLUTE"])
def test_the_suite_name_is_a_plain_folder_name(tmp_path, monkeypatch, capsys, name):
    work = tmp_path / "w" / "x"
    work.mkdir(parents=True)
    absolute = tmp_path / "abs"
    (absolute / "base").mkdir(parents=True)
    (absolute / "base" / "notes.txt").write_text("notes\n")
    if name == "ABSOLUTE":
        name = str(absolute)
    monkeypatch.chdir(work)
    path = suite_file(tmp_path, suite=name)
    err = one_line_error(capsys, 2, main(["suite", path, "-q"]))
    assert "suite name" in err and "plain folder name" in err
    assert os.listdir(work) == [] and sorted(os.listdir(tmp_path / "w")) == ["x"]
    assert os.listdir(absolute) == ["base"] and os.listdir(absolute / "base") == ["notes.txt"]
    assert (absolute / "base" / "notes.txt").read_text() == "notes\n"


# --- case 3 and the general rule: planted symbolic links are refused, their targets untouched ------------
RUN_ENTRIES = [".lock", "metrics.jsonl", "metrics.csv", "summary.json", "config.yaml", "provenance.json",
               "checkpoint", "checkpoint/latest.json"]
SUITE_ENTRIES = [".lock", "suite.json", ".cells", ".logs", ".cells/seed-1.yaml", ".logs/seed-1.log", "leaderboard.csv",
                 "seed-1"] + [f"seed-1/{e}" for e in RUN_ENTRIES]


@pytest.mark.parametrize("command, entry", [("suite", e) for e in SUITE_ENTRIES] +
                         [("resume", f"seed-1/{e}") for e in RUN_ENTRIES])
def test_a_planted_symlink_is_refused_in_one_line_and_its_target_untouched(suite_copy, tmp_path, capsys, command,
                                                                            entry):
    path, out = suite_copy
    where = out / entry
    victim = tmp_path / "victim" / where.name
    victim.parent.mkdir()
    if where.exists():  # the original moves outside: a command writing through the link would change it
        shutil.move(str(where), str(victim))
    else:
        victim.write_text("precious\n")
    where.symlink_to(victim)
    before = snapshot(victim)
    argv = (["suite", path, "--out", str(out), "-q"] if command == "suite" else
            ["train", "-q", f"resume={out / 'seed-1'}"])
    err = one_line_error(capsys, 2, main(argv))
    assert "symbolic link" in err and str(where) in err
    assert snapshot(victim) == before and os.readlink(where) == str(victim)


def test_a_new_run_never_takes_a_name_that_exists_even_as_a_dangling_link(tmp_path):
    (tmp_path / "r").symlink_to(tmp_path / "elsewhere")
    s = train(load_config(None, [f"run.out_dir={tmp_path}", "name=r", "run.max_steps=1", "epochs=1", "T=1",
                                 "run.device=cpu"]), progress=False)
    assert s["run_dir"] == str(tmp_path / "r-2") and not (tmp_path / "elsewhere").exists()
    with open(tmp_path / "r-2" / "provenance.json") as f:
        assert len(json.load(f)["starts"]) == 1


def test_atomic_writes_replace_a_link_and_their_temporary_name_never_meets_a_planted_file(tmp_path, monkeypatch):
    import tempfile

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "out.txt").symlink_to(victim)
    names = iter(["planted", "fresh"])  # the first temporary name tried is taken by a planted link
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    (tmp_path / ".out.txt.planted.tmp").symlink_to(victim)
    atomic_write_text(tmp_path / "out.txt", "ours\n")
    assert victim.read_text() == "precious\n" and not os.path.islink(tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "ours\n"
    assert os.readlink(tmp_path / ".out.txt.planted.tmp") == str(victim)


# --- case 4: failures set the exit status --------------------------------------------------------------------
def test_a_suite_whose_runs_fail_exits_1_and_names_them(tmp_path, capsys):
    path = suite_file(tmp_path, config={**FAST, "data": {"batch_size": 100000}})  # larger than the training set
    out = tmp_path / "out"
    assert main(["suite", path, "--out", str(out), "-q"]) == 1
    captured = capsys.readouterr()
    assert f"1 of 1 runs failed: base (logs: {out / '.logs'})" in captured.err
    assert "leaderboard" not in captured.out and not list(out.glob("leaderboard.*"))


@pytest.mark.parametrize("content", ["empty", "unrelated", "unfinished run"])
def test_suite_report_without_finished_runs_exits_2_and_writes_nothing(tmp_path, capsys, content):
    folder = tmp_path / "d"
    folder.mkdir()
    if content == "unrelated":
        (folder / "notes.txt").write_text("hi\n")
        (folder / "sub").mkdir()
        (folder / "sub" / "data.bin").write_bytes(b"\0\1")
    elif content == "unfinished run":
        (folder / "r").mkdir()
        (folder / "r" / "config.yaml").write_text("model: {name: spikformer_tiny}\n")
    before = snapshot(folder)
    err = one_line_error(capsys, 2, main(["suite", "report", str(folder)]))
    assert f"no finished runs in {folder}" in err
    assert snapshot(folder) == before


# --- case 5 and 11: children die with the suite; one Ctrl-C stops it cleanly ---------------------------------
def test_a_child_dies_with_its_parent(tmp_path):
    pidfile, log = tmp_path / "child.pid", tmp_path / "child.log"
    sleeper = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(300)"
    code = (f"import sys; from spikeformers.suite.launch import run_job; "
            f"run_job([sys.executable, '-c', {sleeper!r}], {str(log)!r}, {{}})")
    parent = subprocess.Popen([sys.executable, "-c", code])
    child = None
    try:
        wait_for("the child to start", lambda: pidfile.exists() and pidfile.read_text(), 60)
        child = int(pidfile.read_text())
        assert os.getpgid(child) == child  # its own process group: a terminal's Ctrl-C reaches only the parent
        parent.kill()
        parent.wait()
        wait_for("the orphan to stop", lambda: not alive(child), 20)
    finally:
        parent.kill()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_sigterm_saves_like_one_ctrl_c_and_its_repeats_change_nothing(tmp_path, monkeypatch):
    """A killed suite's run gets SIGTERM once per dying thread of the suite: it saves once and stops."""
    from spikeformers.train import engine

    calls, real = [0], engine.forward_backward

    def step(*a, **k):
        calls[0] += 1
        if calls[0] == 5:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(engine, "forward_backward", step)
    before = signal.getsignal(signal.SIGTERM)  # a test worker may have its own handler
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, [f"run.out_dir={tmp_path}", "name=r", "T=1", "run.device=cpu"]), progress=False)
    assert signal.getsignal(signal.SIGTERM) == before  # restored
    ck = load_checkpoint(str(tmp_path / "r" / "checkpoint"))
    assert ck.train_state["partial"]["batches"] == 5 and ck.train_state["step"] == 5


def test_a_rerun_names_a_holder_that_stays_alive(suite_copy, monkeypatch):
    from spikeformers.suite import runner

    path, out = suite_copy
    monkeypatch.setattr(runner, "HOLDER_WAIT_S", 0.5)
    logs = snapshot(out / ".logs")
    with FolderLock(str(out / "seed-1"), "training"):
        with pytest.raises(ConfigError, match=f"seed-1 is in use by process {os.getpid()} \\(training\\)"):
            run_suite(path, out=str(out), progress=False)
    assert snapshot(out / ".logs") == logs  # nothing was launched


def test_kill_9_stops_the_suites_run_a_rerun_takes_it_over_and_one_ctrl_c_stops_that_cleanly(tmp_path):
    # epochs enough that no run can finish while a busy machine delays this test's polling (each is a fraction
    # of a second); the signals end the runs long before
    path = suite_file(tmp_path, config={"schedule": {"epochs": 1000, "warmup_epochs": 0}, "model": {"T": 1}},
                      launcher={"jobs": 1, "threads": 1})
    out, cell = tmp_path / "out", tmp_path / "out" / "base"
    cmd = [sys.executable, "-m", "spikeformers", "suite", path, "--out", str(out), "-q"]
    procs = []

    def metrics():
        try:
            return len((cell / "metrics.jsonl").read_text().splitlines())
        except OSError:
            return 0

    try:
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        wait_for("the first epoch", lambda: metrics() >= 1 and (cell / "checkpoint" / "latest.json").exists(), 120)
        first = holder_pid(cell)
        procs.append(first)
        assert os.getpgid(first) == first
        procs[0].kill()
        procs[0].communicate()
        wait_for("the orphaned run to stop", lambda: not alive(first), 30)
        assert cell_state(str(cell)) == "resume"
        assert load_checkpoint(str(cell / "checkpoint")).train_state["partial"]  # saved where it stopped
        done = metrics()

        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        wait_for("the rerun to train an epoch", lambda: metrics() > done, 120)
        second = holder_pid(cell)
        procs.append(second)
        assert second != first and alive(second)
        procs[2].send_signal(signal.SIGINT)  # one Ctrl-C
        _, err = procs[2].communicate(timeout=180)  # a hang is forever; a loaded machine is slow
        assert procs[2].returncode == 130, err
        assert "interrupted" in err and f"continue with: spikeformers suite {path} --out {out}" in err
        assert "Traceback" not in err
        wait_for("the run to stop", lambda: not alive(second), 30)
        assert cell_state(str(cell)) == "resume"
        assert json.loads((out / "suite.json").read_text())["cells"]["base"]["state"] == "resume (interrupted)"
        assert load_checkpoint(str(cell / "checkpoint")).train_state["partial"]
    finally:
        for p in procs:
            if isinstance(p, subprocess.Popen):
                p.kill()
                p.communicate()
            elif p and alive(p):
                os.kill(p, signal.SIGKILL)


def test_one_ctrl_c_during_the_conversions_stops_them_and_records_them_as_interrupted(tmp_path):
    # T = 512 keeps the conversion running for many seconds, so the Ctrl-C lands while it runs
    path = suite_file(tmp_path, runs=[{"model.twin": "qann_sa"}], convert={"where": {"model.twin": "qann_sa"},
                                                                          "T": [128, 512]})
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "spikeformers", "suite", path, "--out", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("the conversion to start", lambda: any(out.glob("*_snn-T128")), 180)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # before the fix: it waited for the conversions to finish
        assert proc.returncode == 130, err
        assert "failed" not in err and "Traceback" not in err
        assert set(json.loads((out / "suite.json").read_text())["conversions"].values()) == {"interrupted"}
        assert not (out / "twin-qannsa_snn-T512" / "summary.json").exists()
    finally:
        proc.kill()
        proc.communicate()


def test_the_progress_line_shows_the_running_cells(tmp_path):
    from spikeformers.suite.runner import running_cells

    for name in ("a", "b", "c", "d"):
        (tmp_path / name).mkdir()
    since = time.time()
    (tmp_path / "a" / ".lock").write_text("process 1 (training)\n")
    os.utime(tmp_path / "a" / ".lock", (since - 60, since - 60))  # an earlier command's run
    for name in ("c", "d"):
        (tmp_path / name / ".lock").write_text("process 2 (training)\n")
    assert running_cells(str(tmp_path), ["a", "b", "c", "d"], since, ended={"d"}) == ["c"]


# --- case 6: resume refuses a hand-edited config.yaml ------------------------------------------------------
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    s = train(load_config(None, [f"run.out_dir={out}", "name=r", "epochs=2", "run.max_minutes=1e-9", "T=1",
                                 "batch_size=256", "run.device=cpu"]), progress=False)
    assert s["finished"] is False
    return s["run_dir"]


@pytest.mark.parametrize("section, key, value, stored", [("optim", "lr", 0.5, "0.002"), ("model", "T", 4, "1"),
                                                        ("run", "seed", 7, "0"), ("data", "name", "mnist1d", "digits")])
def test_resume_refuses_a_hand_edited_config_naming_key_and_values(stopped_run, tmp_path, capsys, section, key, value,
                                                                    stored):
    run = tmp_path / "r"
    shutil.copytree(stopped_run, run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg[section][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    before = snapshot(run)
    err = one_line_error(capsys, 2, main(["train", "-q", f"resume={run}"]))
    assert f"{section}.{key}: {value} in config.yaml, {stored} in the checkpoint" in err
    assert snapshot(run) == before


def test_resume_follows_an_edit_of_a_key_that_may_change(stopped_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(stopped_run, run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["run"]["max_minutes"] = None
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "-q", f"resume={run}"]) == 0
    assert cell_state(str(run)) == "finished"


def test_config_differences_by_hand():
    from spikeformers.train.resume_check import ABSENT, config_differences

    a = {"optim": {"lr": 0.1, "betas": [0.9, 0.99]}, "model": {"T": 4, "options": {"depth": 2}}}
    b = {"optim": {"lr": 0.1, "betas": [0.9, 0.999]}, "model": {"T": 4, "options": {}}, "run": {"seed": 1}}
    assert config_differences(a, b) == [("model.options.depth", 2, ABSENT), ("optim.betas", [0.9, 0.99], [0.9, 0.999]),
                                        ("run.seed", ABSENT, 1)]
    assert config_differences(a, a) == []


# --- case 7: one experiment and seed is one cell -----------------------------------------------------------
@pytest.mark.parametrize("body, first, second", [
    ({"axes": {"optim.lr": [0.001, "1e-3"]}}, "lr-0.001", "lr-1e-3"),
    ({"runs": [{"run.log_every": 5}, {"run.log_every": 7}]}, "log_every-5", "log_every-7"),  # bookkeeping only
])
def test_two_cells_of_one_experiment_and_seed_are_refused(tmp_path, body, first, second):
    path = suite_file(tmp_path, **body)
    with pytest.raises(ConfigError) as e:
        load_suite(path, str(tmp_path / "out"))
    msg = str(e.value)
    assert f"runs {first} and {second} are the same experiment with the same seed" in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


# --- case 11: the report ranks each metric in its own direction ----------------------------------------------
def _finished(folder, name, attention, task, metric, value):
    d = folder / name
    d.mkdir()
    (d / "config.yaml").write_text(yaml.safe_dump({"model": {"attention": attention}, "run": {"seed": 0}}))
    (d / "summary.json").write_text(json.dumps({"finished": True, "task": task, "metric": metric, metric: value,
                                                "model": "m", "dataset": "d", "model_config": {}}))


def test_the_report_ranks_each_metric_in_its_own_direction(tmp_path):
    _finished(tmp_path, "a", "ssa", "classify", "test_acc", 0.10)
    _finished(tmp_path, "b", "sdsa", "classify", "test_acc", 0.97)
    _finished(tmp_path, "c", "x1", "lm", "test_bpc", 2.0)
    _finished(tmp_path, "d", "x2", "lm", "test_bpc", 1.5)
    rows = [(r["metric"], r["metric_mean"]) for r in leaderboard(str(tmp_path))]
    assert rows == [("test_acc", 0.97), ("test_acc", 0.10), ("test_bpc", 1.5), ("test_bpc", 2.0)]
