"""Every recipe in configs/ builds and trains two steps, so no recipe rots.

Datasets are replaced by tiny random stand-ins with the layout, shape and classes the real data
would have (the real files are mostly absent here; event frames are cut to 2 frames of 32 x 32 to
keep the suite fast); recipes whose model is not registered in this checkout are skipped with the
reason. Checkpoints and plots, tested elsewhere, are skipped.
"""
from pathlib import Path

import pytest
import torch

from spikeformers import list_models
from spikeformers.data import ArrayDataset, SceneDataset, TokenDataset, dataset_info
from spikeformers.data.scenes import compose_scenes
from spikeformers.train import engine, load_config, read_jsonl, train

RECIPES = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


def stand_in(name: str, options: dict, n: int = 4, small_events: bool = True):
    """A small random dataset shaped like `name` built with `options`."""
    info = dataset_info(name)
    layout, classes = info["layout"], info.get("num_classes", 10)
    g = torch.Generator().manual_seed(0)
    if layout == "scenes":  # a few scenes of random-texture items, at the dataset's canvas size
        size = options.get("size", info["img_size"])
        items = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=g)
        parts = [compose_scenes(items, torch.arange(8) % 10, n, size, seed=k) for k in (0, 1)]
        return SceneDataset(f"stand-in for {name}", *parts[0], *parts[1], num_classes=info["num_classes"],
                            img_size=size, in_chans=1)
    if layout == "tokens":  # a random byte stream, long enough for a few windows of every split
        L = options.get("seq_len", info["seq_len"])
        t = torch.randint(0, 256, (3, 4 * L + 1), dtype=torch.uint8, generator=g)
        return TokenDataset(f"stand-in for {name}", t[0], t[1], t[2], L, "random")
    if layout == "sequence":
        L, F = info["seq_len"], info["in_features"]
        if name == "scifar" and options.get("mode") == "row":
            L, F = 32, 96
        shape, chans, side = (L, F), F, L
    elif layout == "events":
        frames = options.get("frames", info["frames"])
        source = dataset_info(options.get("source", "mnist")) if name == "emulated_dvs" else info
        side = options.get("size", source["img_size"])
        if small_events:
            frames, side = 2, min(side, 32)
        shape, chans = (frames, 2, side, side), 2
    else:
        side, chans = options.get("img_size", info["img_size"]), info["in_chans"]
        shape = (chans, side, side)
    x = torch.randint(0, 4 if layout == "events" else 256, (2 * n, *shape), dtype=torch.uint8, generator=g)
    y = torch.arange(2 * n) % classes
    return ArrayDataset(f"stand-in for {name}", x[:n], y[:n], x[n:], y[n:], classes, chans, side, flip=False,
                        crop_padding=1, layout=layout, frames=shape[0] if layout == "events" else 0)


def test_recipes_exist():
    names = {p.stem for p in RECIPES}
    assert {"spikformer_tiny_digits", "spikformer_seq_mnist1d", "spikformer_4_384_cifar10"} <= names
    assert len(names) >= 10


def _two_steps(recipe, tmp_path, monkeypatch, *overrides):
    cfg = load_config(str(recipe), ["run.max_steps=2", "data.batch_size=2", "data.eval_batch_size=4",
                                    f"run.out_dir={tmp_path}", "run.log_every=1", *overrides])
    if cfg.model.name not in list_models():
        pytest.skip(f"model {cfg.model.name} is not registered in this checkout")
    monkeypatch.setattr(engine, "build_dataset", lambda c: stand_in(c.data.name, c.data.options))
    monkeypatch.setattr(engine.Trainer, "save", lambda self: None)
    monkeypatch.setattr(engine, "plot_curves", lambda *a, **k: None)
    monkeypatch.setattr(engine, "plot_firing_rates", lambda *a, **k: None)
    summary = train(cfg, progress=False)
    assert summary["finished"] and summary["steps"] == 2
    rec = read_jsonl(Path(summary["run_dir"]) / "metrics.jsonl")
    assert len(rec) == 1 and torch.isfinite(torch.tensor(rec[0]["train_loss"]))
    return summary


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_two_steps(recipe, tmp_path, monkeypatch):
    _two_steps(recipe, tmp_path, monkeypatch, "run.device=cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_graphed_on_a_gpu(recipe, tmp_path, monkeypatch):
    """The default (run.cuda_graph=auto) graphs every recipe's step: required here, so a capture failure fails."""
    assert _two_steps(recipe, tmp_path, monkeypatch, "run.device=cuda", "run.cuda_graph=true")["cuda_graph"]
