"""`spikeformers suite SUITE.yaml`: run every cell of a suite (skipping finished ones, resuming
interrupted ones), then write its leaderboard; `spikeformers suite report DIR` writes it from the run
directories alone.

Each cell is an ordinary run directory `<out>/<cell>` (default out: runs/<suite name>). Its resolved
config is written to `<out>/.cells/<cell>.yaml` and trained by `python -m spikeformers train` in its own
process (log: `<out>/.logs/<cell>.log`), so a failing run costs only itself. A cell with a checkpoint
is resumed; a cell folder without one (killed in its first epoch) is started again in place, by the
training process, which removes only its own earlier records. `<out>/suite.json` is the suite's marker
(its name and id, written first) and records the launcher and every cell's state; a folder or cell
another suite or person made is a one-line error, never deleted (see `folder.py`).

A cell whose lock is still held when the suite starts (a run of a killed suite, saving its last step)
is waited for, up to `HOLDER_WAIT_S`; a holder that stays is named in a one-line error. One Ctrl-C
stops the runs (each saves where it is) or the conversions, records their states, prints how to continue and
ends with status 130; a second and a third stop them sooner (the third kills them).
With `convert:`, each finished cell that matches its `where` is then converted by `python -m spikeformers to-snn`
in its own process (log: `<out>/.logs/<cell>_snn.log`), writing the run folders `<out>/<cell>_snn-T<k>`
(marked as conversions of that cell); conversions already finished are kept.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any, Collection, Dict, List, Optional

from tqdm.auto import tqdm

from ..errors import ConfigError
from ..io import atomic_write_json
from ..train.lock import FolderLock, lock_holder
from ..train.rundir import SUITE_ENV, read_marker
from .board import write_leaderboard
from .folder import SUITE_MARKER, check_cell_folder, prepare_suite_folder, suite_id
from .launch import Job, create_launcher, python_argv
from .spec import Cell, Suite, expectations, load_suite
from ..train.config import save_config

__all__ = ["run_suite", "report_suite", "cell_state", "running_cells", "HOLDER_WAIT_S"]

#: seconds a suite waits for a cell's earlier holder (a stopped run saving its step) before naming it
HOLDER_WAIT_S = 120.0


def cell_state(folder: str) -> str:
    """"finished", "resume" (a checkpoint to continue from) or "start"."""
    summary = os.path.join(folder, "summary.json")
    if os.path.isfile(summary):
        try:
            with open(summary, encoding="utf-8") as f:
                if json.load(f).get("finished"):
                    return "finished"
        except (OSError, ValueError):
            pass
    return "resume" if os.path.isfile(os.path.join(folder, "checkpoint", "latest.json")) else "start"


def _gpus() -> List[int]:
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def _epochs_done(folder: str) -> int:
    try:
        with open(os.path.join(folder, "metrics.jsonl"), encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def running_cells(out: str, names: List[str], since: float, ended: Collection[str] = ()) -> List[str]:
    """The cells of `names` that a run has locked since `since` (a time.time()) and that have not `ended`:
    the lock file is written when a run takes its folder, by any launcher on any node."""
    now = []
    for n in names:
        try:
            if n not in ended and os.lstat(os.path.join(out, n, ".lock")).st_mtime >= since:
                now.append(n)
        except OSError:
            pass
    return now


def _wait_for_holders(out: str, names: List[str], say) -> None:
    """Wait until no earlier process holds a cell's lock; a one-line error naming one that stays."""
    end, told = time.monotonic() + HOLDER_WAIT_S, False
    while True:
        held = {n: h for n in names if (h := lock_holder(os.path.join(out, n)))}
        if not held:
            return
        if time.monotonic() > end:
            n, h = next(iter(held.items()))
            raise ConfigError(f"{os.path.join(out, n)} is in use by {h}: two processes writing one folder would "
                              f"interleave their records; wait for it to end or stop it")
        if not told:
            say(f"waiting for {', '.join(f'{n} ({h})' for n, h in held.items())} to stop")
            told = True
        time.sleep(0.2)


def _jobs(suite: Suite, out: str, todo: List[Cell], states: Dict[str, str], threads: int, gpus: List[int],
          sid: str) -> List[Job]:

    jobs = []
    for c in todo:
        folder = os.path.join(out, c.name)
        if states[c.name] == "resume":
            argv = python_argv("train", "-q", f"resume={folder}")
        else:  # new, or killed before its first checkpoint: the run starts again in its own folder
            path = os.path.join(out, ".cells", f"{c.name}.yaml")
            save_config(c.config, path)
            argv = python_argv("train", "-q", path)
        jobs.append(Job(c.name, argv, os.path.join(out, ".logs", f"{c.name}.log"), threads=c.config.run.threads or threads,
                        gpus=1.0 if gpus else 0.0, env={SUITE_ENV: sid}))
    return jobs


def _conversion_jobs(suite: Suite, out: str, threads: int, gpus: List[int]) -> List[Job]:
    """`to-snn` of every finished cell that `convert` selects and whose conversions are not all finished."""
    jobs = []
    Ts = suite.convert["T"] if suite.convert else []
    for c in suite.to_convert():
        folder = os.path.join(out, c.name)
        if cell_state(folder) != "finished" or all(
                cell_state(os.path.join(out, f"{c.name}_snn-T{T}")) == "finished" for T in Ts):
            continue
        argv = python_argv("to-snn", folder, "--T", *map(str, Ts), "-q")
        jobs.append(Job(f"{c.name}_snn", argv, os.path.join(out, ".logs", f"{c.name}_snn.log"),
                        threads=c.config.run.threads or threads, gpus=1.0 if gpus else 0.0))
    return jobs


def run_suite(path: str, out: Optional[str] = None, launcher: str = "local", jobs: Optional[int] = None,
              threads: Optional[int] = None, progress: bool = True, ray_address: Optional[str] = None) -> Dict[str, Any]:
    """Run a suite file (see `spec.py`); returns {"suite", "folder", "cells", "failed", "leaderboard"} (the
    leaderboard None when no run finished). Raises KeyboardInterrupt after a Ctrl-C stopped the runs."""
    suite = load_suite(path, out)
    out = suite.cells[0].config.run.out_dir if suite.cells else (out or os.path.join("runs", suite.name))
    expect = expectations(suite.expect)  # checked before any run too
    prepare_suite_folder(out, suite.name, path)
    gpus = _gpus()
    threads = threads or int(suite.launcher.get("threads", 1))
    jobs_n = jobs or int(suite.launcher.get("jobs") or (len(gpus) if gpus else max(1, (os.cpu_count() or 1) // threads)))
    for c in suite.cells:  # CPU runs get the suite's threads unless their recipe sets them (part of the config)
        if not gpus and c.config.run.threads is None:
            c.config.run.threads = threads
    say = tqdm.write if progress else (lambda *_: None)
    with FolderLock(out, "suite"):
        sid = suite_id(out, suite.name, path)
        for c in suite.cells:
            check_cell_folder(os.path.join(out, c.name), sid)
        unfinished = [c.name for c in suite.cells if cell_state(os.path.join(out, c.name)) != "finished"]
        _wait_for_holders(out, unfinished, say)
        states = {c.name: cell_state(os.path.join(out, c.name)) for c in suite.cells}
        todo = [c for c in suite.cells if states[c.name] != "finished"]
        n_res = sum(states[c.name] == "resume" for c in todo)
        say(f"suite {suite.name}: {len(suite.cells)} runs in {out}: {len(suite.cells) - len(todo)} finished, "
            f"{n_res} to resume, {len(todo) - n_res} to start; {launcher} launcher, "
            + (f"{jobs_n} at a time on GPU(s) {gpus}" if gpus and launcher == "local" else
               f"{jobs_n} at a time, {threads} thread(s) each" if launcher == "local" else "placed by the launcher"))
        record = {**(read_marker(out, SUITE_MARKER) or {}), "id": sid, "suite": suite.name,
                  "file": os.path.abspath(path), "description": suite.description, "launcher": launcher, "jobs": jobs_n, "cells": {c.name: {"overrides": c.overrides, "state": states[c.name]}
                                                                  for c in suite.cells}}
        failed: List[str] = []
        lock = threading.Lock()
        bar = tqdm(total=len(suite.cells), initial=len(suite.cells) - len(todo), desc=f"suite {suite.name}",
                   unit="run", disable=None if progress else True, dynamic_ncols=True)
        ended: List[str] = []
        signals: List[int] = []  # the Ctrl-Cs so far: a run that ends after one was stopped by it, not failed

        def done(job: Job, rc: int) -> None:
            with lock:
                ended.append(job.name)
                state = cell_state(os.path.join(out, job.name))
                if signals and state != "finished":  # stopped by the Ctrl-C, not failed
                    record["cells"][job.name]["state"] = f"{state} (interrupted)"
                    return
                record["cells"][job.name]["state"] = state if rc == 0 else f"failed (exit {rc})"
                if rc != 0 or state != "finished":
                    failed.append(job.name)
                    say(f"  {job.name}: failed (exit {rc}); log: {job.log}")
                bar.update(1)
                if bar.disable:  # no terminal (a log file, nohup): one line per run instead of the bar
                    say(f"  [{len(suite.cells) - len(todo) + len(ended)}/{len(suite.cells)}] {job.name}: "
                        f"{record['cells'][job.name]['state']}")

        runner = create_launcher(launcher, jobs=jobs_n, gpus=gpus, folder=out, ray_address=ray_address)
        work = _jobs(suite, out, todo, states, threads, gpus, sid)
        since = time.time()

        def tick() -> None:
            with lock:
                now = running_cells(out, [c.name for c in todo], since, ended)[:4]
            bar.set_postfix_str(", ".join(f"{n} ep {_epochs_done(os.path.join(out, n))}" for n in now))

        _run_until_done(runner, work, done, signals, tick)
        bar.close()
        conversions = [] if signals else _conversion_jobs(suite, out, threads, gpus)
        if conversions:
            say(f"converting {len(conversions)} run(s) to spiking networks at T = "
                f"{', '.join(map(str, suite.convert['T']))}")
            record["conversions"] = {}

            def converted(job: Job, rc: int) -> None:
                with lock:
                    if rc != 0 and signals:  # stopped by the Ctrl-C, not failed: the rerun converts again
                        record["conversions"][job.name] = "interrupted"
                        return
                    record["conversions"][job.name] = "finished" if rc == 0 else f"failed (exit {rc})"
                    if rc != 0:
                        failed.append(job.name)
                        say(f"  {job.name}: failed (exit {rc}); log: {job.log}")

            _run_until_done(runner, conversions, converted, signals)
        atomic_write_json(os.path.join(out, "suite.json"), record)
        if signals:
            print(f"suite {suite.name} interrupted; continue with: spikeformers suite {path} --out {out}",
                  file=sys.stderr, flush=True)
            raise KeyboardInterrupt
        finished = any(record["cells"][c.name]["state"] == "finished" for c in suite.cells)
        board = write_leaderboard(out, expect, title=f"{suite.name}: {suite.description}".rstrip(": "),
                                  axes=suite.axes) if finished else None
    if board:
        say(f"leaderboard ({len(board['rows'])} configurations): {board['paths']['md']}")
    return {"suite": suite.name, "folder": out, "cells": record["cells"], "failed": failed, "leaderboard": board}


def _run_until_done(runner: Any, jobs: List[Job], done: Any, signals: List[int], tick: Any = None) -> None:
    """`runner.run(jobs, done)` in a thread while this one waits, appending each Ctrl-C to `signals`.

    Each Ctrl-C stops the running jobs (each saves where it is; the third kills them), and the next ones
    never start. The SIGINT handler only counts: a KeyboardInterrupt raised at an arbitrary point of this
    thread could leave a lock taken (the progress bar's, the record's) that the launcher's threads then wait
    for forever."""
    errors: List[BaseException] = []
    all_ended = threading.Event()  # not t.is_alive(): it is the launcher's threads that must have ended
    stopped = len(signals)

    def launch() -> None:
        try:
            runner.run(jobs, done)
        except BaseException as e:  # noqa: BLE001 - re-raised in this thread
            errors.append(e)
        finally:
            all_ended.set()

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: signals.append(signum)) if main else None
    try:
        t = threading.Thread(target=launch, daemon=True)
        t.start()
        while not all_ended.wait(0.25 if signals else 1.0):
            while len(signals) > stopped:
                stopped += 1
                runner.stop(force=stopped >= 3)
                print(f"interrupted: stopping the running jobs{' at once' if stopped > 1 else ' (runs save first)'}"
                      + (" (Ctrl-C again: sooner)" if stopped < 3 else ""), file=sys.stderr, flush=True)
            if tick is not None:
                tick()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    if errors and not signals:
        raise errors[0]


def report_suite(folder: str, suite_file: Optional[str] = None) -> Dict[str, Any]:
    """The leaderboard of a suite folder from its run directories alone (the suite file, if given or
    recorded in suite.json and still present, adds its expected ranges and its axes for the plots)."""
    expect, title, axes = [], os.path.basename(os.path.normpath(folder)), []
    if suite_file is None:
        try:
            with open(os.path.join(folder, "suite.json"), encoding="utf-8") as f:
                suite_file = json.load(f).get("file")
        except (OSError, ValueError):
            suite_file = None
    if suite_file and os.path.isfile(suite_file):
        suite = load_suite(suite_file, folder)
        expect, title, axes = expectations(suite.expect), f"{suite.name}: {suite.description}".rstrip(": "), suite.axes
    return write_leaderboard(folder, expect, title=title, axes=axes)
