"""Trained models out: ONNX graphs run by onnxruntime against PyTorch on real digits (identical spikes,
logits within tolerance), and the Hub layout round trip."""
import json
import os

import numpy as np
import pytest
import torch

from spikeformers import create_model, from_pretrained, save_pretrained
from spikeformers.cli import main
from spikeformers.data import InputTransform, create_dataset
from spikeformers.export import export_onnx
from spikeformers.neurons.monitor import spiking_layers

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def digits():
    return create_dataset("digits")


def _spikes(model, x):
    """PyTorch's own outputs of every spiking layer (forward hooks), in definition order."""
    seen, hooks = {}, []
    for name, m in spiking_layers(model).items():
        hooks.append(m.register_forward_hook(lambda mod, i, o, name=name: seen.setdefault(name, o)))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    return logits, seen


@pytest.mark.parametrize("name", ["spikformer_tiny", "sdt_tiny", "qkformer_tiny"])
def test_onnx_runtime_gives_pytorchs_spikes_and_logits_on_real_images(name, digits, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, img_size=8, in_chans=1, num_classes=10).eval()
    path = str(tmp_path / "m.onnx")
    info = export_onnx(model, InputTransform.of(digits), path, spikes=True)
    raw = digits.test_x[:6]  # uint8 [6, 1, 8, 8]: the graph takes raw pixels
    sess = ort.InferenceSession(path)
    outs = sess.run(None, {"input": raw.numpy()})
    logits, spikes = _spikes(model, raw.float() / 255)
    assert info["outputs"][0] == "logits" and len(outs) == 1 + len(spikes) > 1
    for (layer, want), got in zip(spikes.items(), outs[1:]):
        assert np.array_equal(got, want.numpy()), layer  # identical spikes
    assert np.allclose(outs[0], logits.numpy(), atol=1e-4, rtol=1e-4)
    other = sess.run(["logits"], {"input": digits.test_x[6:9].numpy()})[0]  # a dynamic batch
    assert other.shape == (3, 10)


def test_hub_folder_round_trips_the_model(tmp_path, digits):
    model = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10, attention="sdsa").eval()
    save_pretrained(model, str(tmp_path / "hub"))
    assert sorted(os.listdir(tmp_path / "hub")) == ["config.json", "model.safetensors"]
    with open(tmp_path / "hub" / "config.json") as f:
        cfg = json.load(f)
    assert cfg["model"] == "spikformer_tiny" and cfg["model_args"]["attention"] == "sdsa"
    back = from_pretrained(str(tmp_path / "hub"))
    x = digits.test_x[:4].float() / 255
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
    with pytest.raises(Exception, match="not a save_pretrained folder"):
        from_pretrained(str(tmp_path))


def test_export_command_on_a_trained_run(tmp_path, capsys):
    from spikeformers.train import load_config, train

    s = train(load_config(None, ["run.max_steps=2", "epochs=1", "run.device=cpu", f"run.out_dir={tmp_path}",
                                 "name=x"]), progress=False)
    assert main(["export", s["run_dir"]]) == 0
    assert "input uint8 ['batch', 1, 8, 8]" in capsys.readouterr().out
    sess = ort.InferenceSession(os.path.join(s["run_dir"], "model.onnx"))
    assert sess.run(None, {"input": np.zeros((2, 1, 8, 8), np.uint8)})[0].shape == (2, 10)
    assert main(["export", s["run_dir"], "--format", "hub"]) == 0
    assert os.path.isfile(os.path.join(s["run_dir"], "hub", "model.safetensors"))
