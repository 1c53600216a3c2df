"""Atomic files, JSON lines, RNG capture and crash-safe checkpoints."""
import json
import math
import random

import numpy as np
import pytest
import torch

import spikeformers.io as sio
from spikeformers.errors import CheckpointError
from spikeformers.train import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    read_jsonl,
    restore_rng_state,
    save_checkpoint,
)

# ----------------------------------------------------------------------------- atomic files


def test_atomic_writes_leave_no_temp_files(tmp_path):
    atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "héllo")
    atomic_write_json(tmp_path / "c.json", {"x": [1, 2.5], "nan": float("nan"), "t": torch.tensor(3)})
    atomic_write_text(tmp_path / "b.txt", "replaced")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text() == "replaced"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2.5], "nan": None, "t": 3}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.txt", "c.json", "sub"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(sio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_jsonl_append_and_repair(tmp_path):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"epoch": 1, "loss": 0.5, "note": "a\nb"})
    append_jsonl(path, {"epoch": 2, "loss": math.inf})
    with open(path, "ab") as f:  # a crash mid-line
        f.write(b'{"epoch": 3, "lo')
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2]
    append_jsonl(path, {"epoch": 3})
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"epoch": 1, "loss": 0.5, "note": "a\nb"}, {"epoch": 2, "loss": None}, {"epoch": 3}
    ]


# ----------------------------------------------------------------------------- RNG states


def draw():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(1).tolist(),
            [random.random() for _ in range(3)], random.gauss(0, 1))


def test_rng_round_trip_through_weights_only(tmp_path):
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.randn(1)  # leaves a cached Gaussian in numpy's state
    random.gauss(0, 1)  # and in Python's
    state = capture_rng_state()
    expected = draw()
    torch.save(state, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)
    draw()  # move every generator on
    restore_rng_state(loaded)
    assert draw() == expected


# ----------------------------------------------------------------------------- checkpoints


def make_state(epoch, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 4))
    model[2].weight = torch.nn.Parameter(model[0].weight.t())  # a tied (shared-storage) weight
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched.step()
    train_state = {"epoch": epoch, "step": 10 * epoch, "optimizer": opt.state_dict(),
                   "scheduler": sched.state_dict(), "rng": capture_rng_state(), "best": (0.5, None)}
    ema = {k: v.detach().clone() * 0.5 for k, v in model.state_dict().items()}
    meta = {"model": "tiny", "args": {"dim": 4}, "config": {"optim": {"lr": 1e-3}}}
    return model.state_dict(), ema, train_state, meta


def save(root, epoch, **kw):
    model_state, ema, train_state, meta = make_state(epoch)
    return save_checkpoint(root, model_state=model_state, extra_tensors={"ema": ema},
                           train_state=train_state, meta=meta, **kw)


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b) and a.dtype == b.dtype
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def test_checkpoint_round_trip(tmp_path):
    model_state, ema, train_state, meta = make_state(3)
    folder = save_checkpoint(tmp_path, model_state=model_state, extra_tensors={"ema": ema},
                             train_state=train_state, meta=meta)
    assert folder.name == "epoch_0003"
    assert sorted(p.name for p in folder.iterdir()) == ["ema.safetensors", "meta.json", "model.safetensors",
                                                        "train_state.pt"]
    ck = load_checkpoint(tmp_path)
    assert ck.path == str(folder) and ck.meta == meta
    assert_same(ck.model_state, model_state)
    assert_same(ck.extra_tensors, {"ema": ema})
    assert_same(ck.train_state, train_state)
    assert_same(load_checkpoint(folder).model_state, model_state)  # an epoch folder given directly
    assert json.loads((tmp_path / "latest.json").read_text())["path"] == "epoch_0003"


def test_resumed_optimizer_continues_exactly(tmp_path):
    def build():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        return model, torch.optim.AdamW(model.parameters(), lr=0.1)

    def step(model, opt, seed):
        torch.manual_seed(seed)
        opt.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        opt.step()

    model, opt = build()
    step(model, opt, 1)
    save_checkpoint(tmp_path, model_state=model.state_dict(), meta={},
                    train_state={"epoch": 1, "optimizer": opt.state_dict()})
    step(model, opt, 2)  # the uninterrupted run
    ck = load_checkpoint(tmp_path)
    model2, opt2 = build()
    model2.load_state_dict(ck.model_state)
    opt2.load_state_dict(ck.train_state["optimizer"])
    step(model2, opt2, 2)  # the resumed run
    assert_same(model2.state_dict(), model.state_dict())


def test_keep_prunes_old_epochs(tmp_path):
    for e in range(1, 5):
        save(tmp_path, e)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0003", "epoch_0004", "latest.json"]
    assert load_checkpoint(tmp_path).train_state["epoch"] == 4
    save(tmp_path, 4)  # the same epoch again: a new folder, never an overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0004", "epoch_0004-1", "latest.json"]
    save(tmp_path, 1, keep=1)  # a fresh run in the same folder keeps its own newest epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001", "latest.json"]


@pytest.mark.parametrize("victim", ["model.safetensors", "ema.safetensors", "train_state.pt", "meta.json"])
def test_corrupt_files_raise_checkpoint_error(tmp_path, victim):
    folder = save(tmp_path, 1)
    data = (folder / victim).read_bytes()
    (folder / victim).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=victim.replace(".", r"\.")) as e:
        load_checkpoint(tmp_path)
    assert "\n" not in str(e.value)


def test_missing_things_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no latest.json"):
        load_checkpoint(tmp_path)
    folder = save(tmp_path, 2)
    (tmp_path / "latest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="latest.json: unreadable or corrupt"):
        load_checkpoint(tmp_path)
    (tmp_path / "latest.json").write_text('{"path": "../elsewhere"}')
    with pytest.raises(CheckpointError, match="does not name an epoch folder"):
        load_checkpoint(tmp_path)
    (tmp_path / "latest.json").write_text('{"path": "epoch_0009"}')
    with pytest.raises(CheckpointError, match="points at epoch_0009, which does not exist"):
        load_checkpoint(tmp_path)
    (tmp_path / "latest.json").write_text('{"path": "epoch_0002"}')
    (folder / "train_state.pt").unlink()
    with pytest.raises(CheckpointError, match="train_state.pt is missing"):
        load_checkpoint(tmp_path)


def test_pickled_code_is_refused(tmp_path):
    folder = save(tmp_path, 1)
    torch.save({"epoch": 1, "evil": np.random.RandomState(0)}, folder / "train_state.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path)


def test_crash_while_saving_keeps_previous(tmp_path, monkeypatch):
    save(tmp_path, 1)

    def crash(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(sio.torch, "save", crash)  # dies after the weights were written
    with pytest.raises(RuntimeError, match="killed"):
        save(tmp_path, 2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001", "latest.json"]
    ck = load_checkpoint(tmp_path)
    assert ck.train_state["epoch"] == 1
    # A hard kill leaves a temp folder behind: ignored by loading, removed by the next save.
    (tmp_path / ".tmp-epoch_0002-abc").mkdir()
    assert load_checkpoint(tmp_path).train_state["epoch"] == 1
    save(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001", "epoch_0002", "latest.json"]


def test_save_rejects_non_plain_train_state(tmp_path):
    model_state, _, train_state, meta = make_state(1)
    with pytest.raises(TypeError, match=r"train_state\['bad'\] is a RandomState"):
        save_checkpoint(tmp_path, model_state=model_state, train_state={**train_state, "bad": np.random.RandomState()},
                        meta=meta)
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(tmp_path, model_state=model_state, train_state={"step": 1}, meta=meta)
    with pytest.raises(ValueError, match="extra tensor name"):
        save_checkpoint(tmp_path, model_state=model_state, train_state=train_state, meta=meta,
                        extra_tensors={"../x": {}})
    assert not (tmp_path / "latest.json").exists()
