"""Generated bad inputs (Hypothesis, derandomized: the same examples on every run) over the three ways a user
describes a model: command-line overrides (`spikeformers config`, then the model built on the meta device),
suite files (`load_suite`) and Hub folders (`from_pretrained` on a generated config.json beside real or damaged
weights). Each input either works or ends in one line: a SpikeformersError without a newline, or the CLI's exit
status 2 with one line on stderr. Never a traceback, never a hang (about 30 s in all on one CPU)."""
import contextlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import fields

import pytest
import torch
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spikeformers import create_model, save_pretrained  # noqa: E402
from spikeformers.cli import main  # noqa: E402
from spikeformers.data import create_dataset  # noqa: E402
from spikeformers.errors import SpikeformersError  # noqa: E402
from spikeformers.models import SpikeGPTConfig, SpikformerConfig, SpikingLMConfig, from_pretrained  # noqa: E402
from spikeformers.models.qkformer import QKFormerConfig  # noqa: E402
from spikeformers.models.sequence import SpikformerSeqConfig  # noqa: E402
from spikeformers.suite import load_suite  # noqa: E402
from spikeformers.suite.spec import LAUNCHER_KEYS, SUITE_KEYS  # noqa: E402
from spikeformers.train import load_config  # noqa: E402
from spikeformers.train.config import ALIASES, config_keys  # noqa: E402
from spikeformers.train.run import build_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

#: model options of every family (the names users type), and the small models they apply to
OPTIONS = sorted({f.name for c in (SpikformerConfig, QKFormerConfig, SpikformerSeqConfig, SpikingLMConfig, SpikeGPTConfig)
                  for f in fields(c)})
MODELS = ["spikformer_tiny", "sdt_tiny", "qkformer_tiny", "spikformer_seq_tiny", "spiking_lm_tiny", "spikegpt_tiny",
          "fpn_segmenter", "no_such_model"]
#: config keys, but not the dataset (loading another one costs seconds) nor where runs go
KEYS = [k for k, *_ in config_keys() if not k.startswith(("data.name", "data.root", "run.out_dir"))] + \
    [a for a in ALIASES if a not in ("data", "model")]

WORDS = st.sampled_from([
    "", "null", "~", "[", "]", "{", "}", "{a: 1}", "[1, 2]", "[1, 2, 3]", "0011", "1e-3", "-.inf", ".nan", ".inf",
    "yes",
    "off", "true", "!!python/object/apply:os.system ['true']", "'x'", "\"open", "ssa", "lif", "a2os2a", "softmax",
    "ann", "qann", "rate", "direct", "spikformer_tiny", "digits", "classify", "lm", "\u00e9\u6f22", "a=b", "--help",
    "../x", "/abs/path", "-1", "0", "1", "2", "4", "64", "100000", "1e308", "99999999999999999999999", "-3.5", "0.5",
])
#: values a model option often takes: with these, some generated configs build, so the build is checked too
PLAUSIBLE = st.sampled_from(["1", "2", "4", "8", "16", "32", "64", "ssa", "a2os2a", "sdsa", "softmax", "lif", "plif",
                             "0.5", "2.0", "true", "false", "rate", "direct", "ann", "qann", "0001", "0011", "null"])
SIZES = st.one_of(st.integers(-3, 70), st.sampled_from([0, 1, 2, 3, 5, 7, 2 ** 20, 2 ** 31, 2 ** 40, 10 ** 30]))
NUMBERS = st.one_of(st.integers(-5, 70), st.integers(-(2 ** 70), 2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans())
SCALARS = st.one_of(WORDS, NUMBERS, st.none(), st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=4) | WORDS, inner, max_size=3)),
                      max_leaves=6)


def one_line_error(e: BaseException) -> bool:
    return isinstance(e, SpikeformersError) and "\n" not in str(e) and str(e).strip() != ""


def as_text(v) -> str:
    return v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


@st.composite
def overrides(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 9))
        if kind <= 3:  # a model option, often a size
            key = draw(st.sampled_from([f"model.options.{o}" for o in OPTIONS] + [f"model.{o}" for o in OPTIONS]))
            value = draw(st.one_of(SIZES.map(str), PLAUSIBLE, VALUES.map(as_text)))
            out.append(f"{key}={value}")
            continue
        elif kind <= 7:
            key = draw(st.sampled_from(KEYS))
        elif kind == 8:
            key = draw(st.sampled_from(["model", "model.name"]))
            out.append(f"{key}={draw(st.sampled_from(MODELS))}")
            continue
        else:
            key = draw(st.text(max_size=8) | st.sampled_from(["model.options.", "data.options.x", "task.options.x",
                                                                "optim.label_smoothing", "a.b.c", "=", "model..x"]))
        out.append(f"{key}={as_text(draw(PLAUSIBLE if draw(st.booleans()) else VALUES))}")
    return out


@pytest.fixture(scope="module")
def digits():
    return create_dataset("digits")


def test_fuzzed_overrides_work_or_end_in_one_line(digits):
    seen = {0: 0, 2: 0, "built": 0}

    @settings(FUZZ, max_examples=120)
    @given(overrides())
    def check(args):
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["config", *args])
        lines = [ln for ln in err.getvalue().splitlines() if not ln.startswith("note: ")]  # moved-key notes
        assert (code == 0 and not lines) or (code == 2 and len(lines) == 1 and "Traceback" not in err.getvalue()), \
            (args, code, err.getvalue())
        seen[code] += 1
        if code:
            return
        cfg = load_config(None, args)
        if cfg.data.name != "digits":
            return
        try:  # the model as training builds it, on the meta device: no memory, whatever the sizes
            with torch.device("meta"):
                build_model(cfg, digits)
            seen["built"] += 1
        except Exception as e:  # noqa: BLE001 - the point: nothing but a one-line error may come out
            assert one_line_error(e), (args, repr(e))

    check()
    assert min(seen.values()) >= 5, seen  # a generator that only ever hits errors (or never) checks little


@st.composite
def suites(draw):
    if draw(st.integers(0, 9)) == 0:  # not YAML, or not a mapping
        return draw(st.sampled_from(["{", "- a\n- b", "suite: [", "\t: x", "42", "", "axes: {model.T: [1, 2]}: x"]))
    d = {}
    for key in draw(st.lists(st.sampled_from(list(SUITE_KEYS) + ["seeds", "junk"]), max_size=6, unique=True)):
        if key == "recipe":
            d[key] = draw(st.sampled_from([os.path.join(ROOT, "configs", "spikformer_tiny_digits.yaml"),
                                           "missing.yaml", None, 3, ["a"]]))
        elif key == "config":
            d[key] = draw(st.one_of(VALUES, st.dictionaries(
                st.sampled_from(["model", "data", "schedule", "run", "optim", "nope"]),
                st.dictionaries(st.sampled_from(OPTIONS[:8] + ["name", "epochs", "lr", "batch_size", "T"]), VALUES,
                                max_size=2), max_size=3)))
        elif key == "axes":
            d[key] = draw(st.one_of(VALUES, st.dictionaries(
                st.sampled_from(KEYS[:40] + ["model.attention", "model.options.depth", "run.seed", "x"]),
                st.lists(SCALARS, max_size=3) | SCALARS, max_size=2)))
        elif key == "runs":
            d[key] = draw(st.one_of(VALUES, st.lists(st.dictionaries(st.sampled_from(KEYS[:40]), SCALARS, max_size=2),
                                                     max_size=3)))
        elif key == "launcher":
            d[key] = draw(st.one_of(VALUES, st.dictionaries(st.sampled_from(list(LAUNCHER_KEYS) + ["x"]), SCALARS,
                                                            max_size=2)))
        elif key == "expect":
            d[key] = draw(st.one_of(VALUES, st.lists(st.fixed_dictionaries(
                {"where": st.dictionaries(st.sampled_from(["model.attention", "x"]), SCALARS, max_size=1)},
                optional={"test_acc": st.lists(NUMBERS, max_size=3) | SCALARS}), max_size=2)))
        else:
            d[key] = draw(VALUES)
    return yaml.safe_dump(d)


def test_fuzzed_suite_files_load_or_end_in_one_line(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suites")
    seen = {"loaded": 0, "refused": 0}

    @settings(FUZZ, max_examples=100)
    @given(suites())
    def check(text):
        path = folder / "s.yaml"
        path.write_text(text)
        try:
            load_suite(str(path), out_dir=str(folder / "out"))
            seen["loaded"] += 1
        except Exception as e:  # noqa: BLE001
            assert one_line_error(e), (text, repr(e))
            seen["refused"] += 1
        assert not (folder / "out").exists()  # loading writes nothing

    check()
    assert min(seen.values()) >= 5, seen


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    save_pretrained(create_model("spikformer_tiny"), str(folder))
    return (folder / "model.safetensors").read_bytes()


@st.composite
def hub_folders(draw):
    """(config.json text, model.safetensors bytes) around the real weights of spikformer_tiny."""
    cfg = {"library": "spikeformers", "model": "spikformer_tiny", "model_args": {}}
    for key in draw(st.lists(st.sampled_from(["model", "model_args", "pretrained_cfg", "drop"]), max_size=3)):
        if key == "model":
            cfg["model"] = draw(st.sampled_from(MODELS) | SCALARS)
        elif key == "model_args":
            cfg["model_args"] = draw(st.one_of(VALUES, st.dictionaries(st.sampled_from(OPTIONS + ["x"]), VALUES,
                                                                       max_size=3)))
        elif key == "pretrained_cfg":
            cfg["pretrained_cfg"] = draw(st.one_of(VALUES, st.fixed_dictionaries({}, optional={
                "input": st.one_of(VALUES, st.fixed_dictionaries(
                    {"layout": st.sampled_from(["image", "events", "sequence", "x"]), "in_chans": NUMBERS,
                     "img_size": NUMBERS}, optional={"frames": NUMBERS})),
                "class_names": st.one_of(VALUES, st.lists(st.text(max_size=3), min_size=9, max_size=11))})))
        else:
            cfg.pop(draw(st.sampled_from(["model", "model_args"])), None)
    text = json.dumps(cfg) if draw(st.integers(0, 9)) else draw(st.sampled_from(["{", "[]", "null", "\"x\"", ""]))
    return text, draw(st.sampled_from(["whole", "whole", "whole", "truncated", "header", "empty", "missing"]))


def test_fuzzed_hub_folders_load_or_end_in_one_line(weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("hubs")
    seen = {"loaded": 0, "refused": 0}

    @settings(FUZZ, max_examples=150)
    @given(hub_folders())
    def check(example):
        text, damage = example
        folder = tempfile.mkdtemp(dir=root)
        try:
            with open(os.path.join(folder, "config.json"), "w") as f:
                f.write(text)
            data = {"whole": weights, "truncated": weights[: len(weights) // 2], "empty": b"",
                    "header": (10 ** 12).to_bytes(8, "little") + weights[8:]}.get(damage)
            if data is not None:
                with open(os.path.join(folder, "model.safetensors"), "wb") as f:
                    f.write(data)
            try:
                model = from_pretrained(folder)
            except Exception as e:  # noqa: BLE001
                assert one_line_error(e), (text, damage, repr(e))
                seen["refused"] += 1
            else:
                assert isinstance(model.pretrained_cfg, dict) and damage == "whole"
                seen["loaded"] += 1
        finally:
            shutil.rmtree(folder)

    check()
    assert min(seen.values()) >= 5, seen
