"""Every `spikeformers ...` command that README.md and docs/*.md show is one the CLI takes: each parses with the
CLI's own parser, the recipes, suites and overrides it names load, and a representative subset runs end to end
on tiny settings. A documented form cannot be refused again without this failing."""
import glob
import os
import re
import shlex

import numpy as np
import pytest

from spikeformers.cli import main, parse_args
from spikeformers.suite import load_suite
from spikeformers.train import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
TINY = ["run.max_steps=1", "epochs=1", "run.device=cpu", "batch_size=32", "-q"]


def documented_commands():
    """(file, command line) of every `spikeformers` command in a code block or an inline code span, comments and
    line continuations resolved; usage synopses ([optional] parts, `...`, `A|B`) are left out."""
    out = []
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        lines = []
        for block in re.findall(r"```[A-Za-z]*\n(.*?)```", text, re.S):
            lines += re.sub(r"\\\n\s*", " ", block).splitlines()
        lines += re.findall(r"`(spikeformers [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in lines:
            line = re.sub(r"^\s*\$\s*", "", line).strip()
            line = re.sub(r"^(torchrun( --\S+)* -m |python -m )", "", line)
            if not line.startswith("spikeformers "):
                continue
            words = shlex.split(line, comments=True)
            if "..." in words or any(w.startswith("[") or "|" in w for w in words):
                continue
            out.append((doc, " ".join(shlex.quote(w) for w in words)))
    return out


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_every_kind():
    kinds = {shlex.split(c)[1] for _, c in COMMANDS}
    assert {"train", "eval", "predict", "config", "export", "convert", "models", "info", "generate", "suite",
            "energy"} <= kinds, kinds
    assert len(COMMANDS) >= 50


def _recipe_or_none(path):
    """A recipe the docs name must exist; placeholders (RECIPE.yaml, CONFIG.yaml) stand for any."""
    if path.isupper() or os.path.basename(path).split(".")[0].isupper():
        return None
    full = os.path.join(ROOT, path)
    assert os.path.isfile(full), f"the docs name {path}, which does not exist"
    return full


@pytest.mark.parametrize("doc, command", COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_every_documented_command_parses_and_its_config_loads(doc, command, capsys):
    argv = [re.sub(r"\$\w+", "ssa", w) for w in shlex.split(command)[1:]]  # docs/ablation.md's loop variable
    if len(argv) == 1 and argv[0] not in ("train", "config", "models", "info"):  # prose naming a command
        with pytest.raises(SystemExit) as e:
            parse_args([argv[0], "--help"])
        assert e.value.code == 0, capsys.readouterr().err  # a command the CLI has
        return
    ns = parse_args(argv)  # a refusal is SystemExit: the test fails
    if ns.command in ("train", "config"):
        path = next((a for a in ns.args if "=" not in a), None)
        overrides = [a for a in ns.args if "=" in a and a.split("=", 1)[0] not in ("resume", "run.resume")]
        recipe = _recipe_or_none(path) if path else None
        load_config(recipe, overrides)  # ConfigError: the docs show a key or value the config refuses
    elif ns.command == "suite" and ns.target != "report":
        load_suite(os.path.join(ROOT, ns.target), out_dir="/nonexistent/not-written")
    elif ns.command == "convert":
        from spikeformers.cli.energy import parse_overrides

        parse_overrides(ns.options)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder holding runs/NAME, a tiny run of the first documented train command, and the files the docs'
    examples read; the commands run inside it."""
    tmp = tmp_path_factory.mktemp("docs")
    assert main(["train", "attention=a2os2a", f"run.out_dir={tmp / 'runs'}", "name=NAME"] + TINY) == 0
    np.save(tmp / "x.npy", np.zeros((2, 1, 8, 8), np.uint8))
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(tmp / "shirt.png")
    return tmp


#: documented commands, run as written but for these words: the one run folder, a real recipe, tiny settings
RUN_AS_DOCUMENTED = [
    "spikeformers eval runs/NAME",
    "spikeformers predict runs/NAME shirt.png x.npy --top-k 3",
    "spikeformers export runs/NAME --format hub",
    "spikeformers config configs/RECIPE.yaml lr=1e-3",
    "spikeformers train resume=runs/NAME epochs=60",
    "spikeformers models",
    "spikeformers energy runs/digits_tiny --preset int8",
    "spikeformers suite report runs/attention_digits",
]
SUBSTITUTE = {"runs/digits_tiny": "runs/NAME", "runs/attention_digits": "runs",
              "configs/RECIPE.yaml": os.path.join(ROOT, "configs", "spikformer_tiny_digits.yaml")}


@pytest.mark.parametrize("command", RUN_AS_DOCUMENTED)
def test_a_representative_subset_runs_end_to_end(workspace, command, capsys, monkeypatch):
    assert command in {" ".join(shlex.split(c)) for _, c in COMMANDS}, f"no longer documented: {command}"
    monkeypatch.chdir(workspace)
    argv = [SUBSTITUTE.get(w, w) for w in shlex.split(command)[1:]]
    if argv[0] == "train":  # the documented resume to 60 epochs, one step of it
        argv += ["run.max_steps=2", "-q"]
    assert main(argv) == 0, capsys.readouterr().err
