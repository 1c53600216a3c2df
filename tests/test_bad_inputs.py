"""Every bad input ends in one line (issue #30): absurd model sizes and batches, Hub configs of the wrong
types or sizes, unreadable or non-numeric prediction inputs, sampling settings that are not numbers, and the
export and convert commands' smaller lies. Each case was a traceback, a silent wrong result or a stray file."""
import json
import math
import os
import sys
import time

import numpy as np
import pytest
import torch

from spikeformers import create_model, from_pretrained, save_pretrained
from spikeformers.cli import main
from spikeformers.data import InputTransform
from spikeformers.errors import CheckpointError, ConfigError, DatasetError, SpikeformersError
from spikeformers.io import append_jsonl, save_checkpoint
from spikeformers.models import count_parameters
from spikeformers.train import load_config, predict_files, train

FAST = ["run.max_steps=1", "epochs=1", "run.device=cpu", "batch_size=32"]


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train(load_config(None, FAST + [f"run.out_dir={out}", "name=d"]), progress=False)["run_dir"]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    corpus = tmp / "corpus.txt"
    corpus.write_text("a cat sat on a mat. the dog ate the log. " * 60)
    cfg = load_config(None, ["model=spiking_lm_tiny", "data=text", f"data.root={corpus}", "data.options.seq_len=16",
                             "model.block_size=16", "batch_size=8", "run.max_steps=1", "epochs=1",
                             f"run.out_dir={tmp}", "run.device=cpu", "name=lm"])
    return train(cfg, progress=False)["run_dir"]


# ----------------------------------------------------------------------------- 8. absurd sizes


@pytest.mark.parametrize("override, words", [
    ("model.options.depth=-3", ["depth", ">= 1", "-3"]),
    ("model.options.depth=0", ["depth", ">= 1"]),
    ("model.options.dim=-8", ["dim", ">= 1", "-8"]),
    ("model.options.num_heads=0", ["num_heads", ">= 1"]),
    ("model.options.dim=62", ["dim 62", "num_heads 4"]),
    ("model.options.mlp_ratio=0", ["mlp_ratio", "> 0"]),
    ("model.options.img_size=-1", ["img_size"]),
    ("model.options.weight_bits=40", ["weight_bits", "2..16"]),
])
def test_impossible_model_sizes_are_one_line_errors(tmp_path, capsys, override, words):
    assert main(["train", "-q", f"run.out_dir={tmp_path}", override] + FAST) == 2
    err = capsys.readouterr().err
    assert one_line(err) and all(w in err for w in words), err
    assert not os.listdir(tmp_path)  # refused before a run folder was made


def test_a_model_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    from spikeformers.models import footprint

    monkeypatch.setattr(footprint, "available_memory", lambda device: 8 * 2 ** 30)
    t0 = time.perf_counter()
    assert main(["train", "-q", f"run.out_dir={tmp_path}", "model.options.dim=30000", "model.options.num_heads=4"]
                + FAST) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "model.options.dim" in err and "8.6 GB" in err, err
    assert time.perf_counter() - t0 < 20  # built on the meta device only: 43 GB of weights were never allocated


def test_time_steps_or_batch_beyond_memory_name_the_knobs(tmp_path, capsys, monkeypatch):
    from spikeformers.models import footprint

    monkeypatch.setattr(footprint, "available_memory", lambda device: 8 * 2 ** 30)
    assert main(["train", "-q", f"run.out_dir={tmp_path}", "T=100000"] + FAST) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "data.batch_size" in err and "model.T" in err and "T=100000" in err, err
    assert main(["train", "-q", f"run.out_dir={tmp_path}", "T=4"] + FAST) == 0  # the same run at T=4 fits
    capsys.readouterr()


def test_the_training_estimate_covers_the_tensors_autograd_saves():
    """Independent reference: the bytes autograd really keeps for backward in one step (saved-tensor hooks,
    each storage once) plus weights, gradients and AdamW's two moments."""
    from spikeformers.models import footprint

    model = create_model("spikformer_tiny", T=4)
    x = torch.rand(8, 1, 8, 8)
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    params = 4 * 4 * count_parameters(model)
    want = params + sum(seen.values())
    est = footprint.training_bytes("spikformer_tiny", {"T": 4}, batch=8)
    assert est["params"] == params
    assert want / 2 < est["total"] < 3 * want, (est, want)
    est2 = footprint.training_bytes("spikformer_tiny", {"T": 8}, batch=16)
    assert est2["activations"] == pytest.approx(4 * est["activations"], rel=0.05)  # linear in T and in batch


def test_out_of_memory_anywhere_is_one_line_naming_the_setting(tmp_path, capsys, monkeypatch):
    from spikeformers.train import engine

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79 GiB total)")

    monkeypatch.setattr(engine.Trainer, "train_epoch", oom)
    assert main(["train", "-q", f"run.out_dir={tmp_path}"] + FAST) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "out of memory" in err and "data.batch_size" in err and "model.T" in err, err

    def host_oom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(engine.Trainer, "train_epoch", host_oom)
    assert main(["train", "-q", f"run.out_dir={tmp_path}"] + FAST) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "out of memory" in err and "data.batch_size" in err, err


@pytest.mark.parametrize("change, words", [
    ({"model_args": None}, ["model_args", "mapping"]),
    ({"model_args": {"num_classes": -1}}, ["num_classes", ">= 1"]),
    ({"model_args": {"dim": "wide"}}, ["dim", "int"]),
    ({"model_args": {"colour": 1}}, ["colour"]),
    ({"model": 5}, ["model", "registered model name"]),
    ({"model": "nope"}, ["nope"]),
    ({"model_args": {"dim": 30000, "num_heads": 4}}, ["model.safetensors", "shape"]),
])
def test_hub_configs_of_wrong_types_or_sizes_are_one_line_errors(tmp_path, change, words):
    model = create_model("spikformer_tiny")
    save_pretrained(model, str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(change)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    t0 = time.perf_counter()
    with pytest.raises(SpikeformersError) as e:
        from_pretrained(str(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert time.perf_counter() - t0 < 10  # checked on the meta device and the file's header: nothing allocated


def test_hub_weights_are_checked_against_the_header_before_loading(tmp_path):
    save_pretrained(create_model("spikformer_tiny"), str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model_args"] = {"depth": 2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"missing \d+: blocks\.1\."):
        from_pretrained(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        from_pretrained(str(tmp_path))


# ----------------------------------------------------------------------------- 9. inputs


def _strings(path):
    np.save(path, np.array([["a"] * 8] * 8))


def _nan(path):
    a = np.zeros((8, 8), np.float32)
    a[3, 4] = np.nan
    np.save(path, a)


def _inf(path):
    np.save(path, np.full((1, 8, 8), np.inf, np.float64))


@pytest.mark.parametrize("make, words", [
    (lambda p: open(p, "wb").close(), ["empty.npy", "not a readable .npy"]),
    (lambda p: open(p, "wb").write(b"\x93NUMPY garbage"), ["empty.npy", "not a readable .npy"]),
    (_strings, ["empty.npy", "numbers", "<U1"]),
    (_nan, ["empty.npy", "NaN or infinite"]),
    (_inf, ["empty.npy", "NaN or infinite"]),
])
def test_predict_refuses_unreadable_non_numeric_and_non_finite_arrays(digits_run, tmp_path, capsys, make, words):
    path = tmp_path / "empty.npy"
    make(path)
    assert main(["predict", digits_run, str(path), "--device", "cpu", "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr()
    assert err.out == "" and one_line(err.err) and all(w in err.err for w in words), err
    assert not (tmp_path / "p.json").exists()


def test_the_input_transform_itself_refuses_non_finite_and_non_numeric_samples():
    t = InputTransform("image", 1, 2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        t(np.array([[0.0, math.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="numbers"):
        t(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="numbers"):
        t(np.array([[None, 1], [2, 3]], dtype=object))


@pytest.mark.parametrize("args, words", [
    (["--temperature", "nan"], ["--temperature", "finite", "nan"]),
    (["--temperature", "inf"], ["--temperature", "finite"]),
    (["--temperature", "-1"], ["--temperature", ">= 0"]),
    (["--top-k", "0"], ["--top-k", ">= 1"]),
    (["--max-new-tokens", "-1"], ["--max-new-tokens", ">= 1"]),
])
def test_generate_refuses_sampling_settings_that_are_not_numbers(lm_run, capsys, args, words):
    assert main(["generate", lm_run, "--prompt", "a", "--device", "cpu", *args]) == 2
    err = capsys.readouterr()
    assert err.out == "" and one_line(err.err) and all(w in err.err for w in words), err


# ----------------------------------------------------------------------------- 10./11. export and convert


def test_export_reports_the_opset_it_wrote_and_leaves_no_temporary_file(digits_run, tmp_path, capfd):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    out = tmp_path / "new" / "folder" / "m.onnx"  # a folder that does not exist yet
    assert main(["export", digits_run, "--out", str(out)]) == 0
    got = capfd.readouterr()
    opset = next(o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx"))
    assert f"(opset {opset})" in got.out and got.err == "", got  # no exporter traceback or warnings
    assert os.listdir(out.parent) == ["m.onnx"]


def test_a_failed_export_leaves_no_file_behind(digits_run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxscript")

    def broken(model, args, f=None, **k):  # as the real one fails: after writing part of its output
        if f is not None:
            open(f"{f}.data", "wb").close()
        raise RuntimeError("the exporter gave up\nsecond line")

    monkeypatch.setattr(torch.onnx, "export", broken)
    assert main(["export", digits_run, "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "the exporter gave up" in err
    assert os.listdir(tmp_path) == []


def test_export_names_every_missing_package_in_one_line(digits_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript -> ImportError
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", digits_run, "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "onnx" in err and "onnxscript" in err and "pip install" in err, err


def test_export_of_a_language_model_names_its_task(lm_run, tmp_path, capsys):
    assert main(["export", lm_run, "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "task is 'lm'" in err and "None" not in err, err


def test_the_documented_convert_form_with_model_options_parses(tmp_path, capsys):
    from spikeformers.cli import parse_args

    ns = parse_args(["convert", "sj.pth", "out/", "--from", "spikingjelly", "--model", "spikformer_4_384", "dim=384"])
    assert (ns.source, ns.model, ns.options) == ("spikingjelly", "spikformer_4_384", ["dim=384"])
    ns = parse_args(["convert", "a.pth", "out/", "num_classes=10", "--model", "spikformer_tiny", "depth=1"])
    assert ns.options == ["num_classes=10", "depth=1"]
    with pytest.raises(SystemExit):  # anything else left over is still refused
        parse_args(["convert", "a.pth", "out/", "--model", "spikformer_tiny", "stray"])
    capsys.readouterr()
    # end to end: official Spikformer names -> our model given by --model with its options after it
    from test_convert import official_spikformer, random_state

    torch.save(random_state(official_spikformer(64, 1, 10, 3, "cifar")), tmp_path / "c.pth")
    assert main(["convert", str(tmp_path / "c.pth"), str(tmp_path / "hub"), "--from", "spikformer",
                 "--model", "spikformer_4_384", "dim=64", "depth=1", "num_heads=4"]) == 0
    assert from_pretrained(str(tmp_path / "hub")).cfg.dim == 64


def test_train_help_keeps_every_multi_line_comment_whole(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "nor sync_bn on several ranks; eager if the capture fails), \"true\" (required) or \"false\"" in flat
    assert "(event frames too) or steps (sequences) (None: the dataset's default)" in flat


def test_building_scenes_says_what_it_builds_and_where_it_caches(tmp_path, capsys, monkeypatch):
    from spikeformers.data import create_dataset

    monkeypatch.setenv("SPIKEFORMERS_CACHE", str(tmp_path))
    try:
        ds = create_dataset("fashion_mnist_scenes", size=32, train=3, test=2)
    except DatasetError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    err = capsys.readouterr().err
    assert one_line(err) and "building 5 scenes" in err and str(tmp_path / "scenes") in err, err
    assert len(ds.train_images) == 3
    create_dataset("fashion_mnist_scenes", size=32, train=3, test=2)  # from the cache: nothing to say
    assert capsys.readouterr().err == ""


def test_a_hub_folder_carries_the_input_transform_and_class_names(digits_run, tmp_path, capsys):
    """Round trip: export --format hub, from_pretrained, the saved transform on the uint8 images predict takes,
    the same probabilities as predict."""
    assert main(["export", digits_run, "--format", "hub", "--out", str(tmp_path / "hub")]) == 0
    capsys.readouterr()
    model = from_pretrained(str(tmp_path / "hub"))
    pc = model.pretrained_cfg
    assert pc["input"] == {"layout": "image", "in_chans": 1, "img_size": 8, "frames": 0}
    assert pc["class_names"] == [str(d) for d in range(10)]
    transform = InputTransform.from_dict(pc["input"])
    images = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    with torch.no_grad():
        probs = model(transform(images)).softmax(-1)
    rows = predict_files(digits_run, [str(tmp_path / "x.npy")], top_k=1, device="cpu",
                         out=str(tmp_path / "p.json"))["predictions"]
    assert [r["top"][0]["class"] for r in rows] == probs.argmax(-1).tolist()
    assert [r["top"][0]["prob"] for r in rows] == pytest.approx(probs.max(-1).values.tolist(), abs=1e-6)
    bare = create_model("spikformer_tiny")  # a model saved without data: no transform to carry
    save_pretrained(bare, str(tmp_path / "bare"))
    assert from_pretrained(str(tmp_path / "bare")).pretrained_cfg == {}
    with pytest.raises(ConfigError, match="class_names"):
        save_pretrained(bare, str(tmp_path / "x"), pretrained_cfg={"class_names": ["a"]})


# ----------------------------------------------------------------------------- files we did not make


def test_metrics_are_never_appended_through_a_link_to_a_foreign_file(tmp_path):
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("someone else's\n")
    (tmp_path / "sym.jsonl").symlink_to(foreign)
    os.link(foreign, tmp_path / "hard.jsonl")
    for name in ("sym.jsonl", "hard.jsonl"):
        with pytest.raises(OSError):
            append_jsonl(tmp_path / name, {"a": 1})
    assert foreign.read_text() == "someone else's\n"
    append_jsonl(tmp_path / "own.jsonl", {"a": 1})
    append_jsonl(tmp_path / "own.jsonl", {"a": 2})
    assert (tmp_path / "own.jsonl").read_text() == '{"a": 1}\n{"a": 2}\n'


def test_checkpoint_pruning_deletes_only_folders_it_wrote(tmp_path):
    ck = tmp_path / "checkpoint"
    ck.mkdir()
    foreign = ck / "epoch_0000"  # someone's folder with our naming
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    (ck / ".tmp-cache").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "meta.json").write_text("{}")
    (ck / "epoch_0001-7").symlink_to(elsewhere, target_is_directory=True)
    state = {"w": torch.zeros(2)}
    for e in range(1, 5):
        save_checkpoint(ck, model_state=state, train_state={"epoch": e}, meta={}, keep=2)
    names = sorted(os.listdir(ck))
    assert names == [".tmp-cache", "epoch_0000", "epoch_0001-7", "epoch_0003", "epoch_0004", "latest.json"], names
    assert (foreign / "notes.txt").read_text() == "mine" and (elsewhere / "meta.json").exists()
