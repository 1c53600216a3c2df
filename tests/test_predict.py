"""A trained run as a predictor of raw inputs: the input transform written out by hand, image and
.npy files in their true formats, and `spikeformers predict`."""
import json
import os

import numpy as np
import pytest
import torch

from spikeformers.cli import main
from spikeformers.data import InputTransform
from spikeformers.train import load_config, load_predictor, load_trained_model, predict_files, train


def test_image_transform_scales_uint8_and_0_255_floats_and_keeps_unit_floats():
    t = InputTransform("image", 1, 2)
    raw = np.array([[0, 51], [102, 255]], dtype=np.uint8)
    want = torch.tensor([[[[0.0, 0.2], [0.4, 1.0]]]])
    assert torch.allclose(t(raw), want)  # [H, W] of a one-channel model -> [1, 1, H, W]
    assert torch.allclose(t(raw.astype(np.float32)), want)  # floats above 1: 0..255
    assert torch.allclose(t(want[0] * 1.0), want)  # floats in [0, 1] as they are
    assert torch.allclose(t(np.full((2, 2), 3.0), value_range="0-1"), torch.full((1, 1, 2, 2), 3.0))
    assert t(np.zeros((5, 1, 2, 2), np.uint8)).shape == (5, 1, 2, 2)
    with pytest.raises(ValueError, match=r"takes one image sample \[1, 2, 2\] or a batch \[B, 1, 2, 2\]"):
        t(np.zeros((3, 3)))


def test_event_frames_stay_counts_and_go_time_first_and_sequences_gain_their_feature_axis():
    ev = InputTransform("events", 2, 2, frames=3)
    counts = np.arange(2 * 3 * 2 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2, 2)  # [B, T, 2, H, W]
    out = ev(counts)
    assert out.shape == (3, 2, 2, 2, 2) and torch.equal(out[1, 0], torch.tensor(counts[0, 1], dtype=torch.float32))
    seq = InputTransform("sequence", 1, 4)
    assert torch.equal(seq(np.array([0.5, 2.0, -1.0, 3.0], np.float32)), torch.tensor([[[0.5], [2.0], [-1.0], [3.0]]]))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train(load_config(None, ["epochs=1", "run.device=cpu", f"run.out_dir={out}", "name=p"]), progress=False)


def test_png_and_npy_files_give_the_models_own_probabilities(digits_run, tmp_path):
    from PIL import Image

    model, _, ds = load_trained_model(digits_run["run_dir"], "cpu")
    imgs = ds.test_x[:3]  # uint8 [3, 1, 8, 8]
    with torch.no_grad():  # reference: the model on the loader's own batch form (pixels / 255)
        want = model(imgs.float() / 255).softmax(-1)
    Image.fromarray(imgs[0, 0].numpy(), mode="L").save(tmp_path / "a.png")
    np.save(tmp_path / "b.npy", imgs.numpy())
    res = predict_files(digits_run["run_dir"], [str(tmp_path / "a.png"), str(tmp_path / "b.npy")], top_k=2,
                        device="cpu", out=str(tmp_path / "pred.json"))
    rows = res["predictions"]
    assert [os.path.basename(r["input"]) for r in rows] == ["a.png", "b.npy[0]", "b.npy[1]", "b.npy[2]"]
    for row, p in zip(rows, [want[0], want[0], want[1], want[2]]):
        val, idx = p.topk(2)
        assert [t["class"] for t in row["top"]] == idx.tolist()
        assert [t["prob"] for t in row["top"]] == pytest.approx(val.tolist(), abs=1e-6)
    with open(tmp_path / "pred.json") as f:
        assert json.load(f)["predictions"] == rows
    assert load_predictor(digits_run["run_dir"], "cpu")(imgs[0, 0].numpy()).shape == (1, 10)


def test_predict_command_prints_top_k_and_names_bad_files(digits_run, tmp_path, capsys):
    img = tmp_path / "x.npy"
    np.save(img, np.zeros((8, 8), np.uint8))
    assert main(["predict", digits_run["run_dir"], str(img), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{img}: class ") and out.count("class") == 3
    assert os.path.isfile(os.path.join(digits_run["run_dir"], "predictions.json"))
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    np.save(tmp_path / "wide.npy", np.zeros((9, 9), np.uint8))
    for args, match in (([str(bad)], "unknown file type"), ([str(tmp_path / "y.png")], "y.png"),
                        ([str(tmp_path / "wide.npy")], "wide.npy: input of shape [9, 9] does not fit"),
                        ([], "give input files"), (["--text", "hi"], "--text is for language-model runs")):
        if match == "y.png":
            (tmp_path / "y.png").write_bytes(b"not a png")
        assert main(["predict", digits_run["run_dir"]] + args) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1
