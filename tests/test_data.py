"""Datasets: registry, digits protocol, IDX reader on files written here, MNIST-style loaders."""
import gzip
import os

import numpy as np
import pytest
import torch

from spikeformers.data import DATASETS, ArrayDataset, create_dataset, list_datasets, read_idx
from spikeformers.data.fashion_mnist import FASHION_MNIST_ROOT
from spikeformers.errors import ConfigError, DatasetError

from writers import write_idx, write_mnist_like  # noqa: E402  (tests/writers.py)


# ----------------------------------------------------------------------------- registry


def test_registry_lists_and_rejects():
    assert {"digits", "fashion_mnist", "mnist"} <= set(list_datasets())
    with pytest.raises(ConfigError, match="valid datasets: .*digits"):
        create_dataset("no_such_data")
    with pytest.raises(ConfigError, match="'root'"):
        create_dataset("digits", root="/tmp")  # digits reads no files: a root is a mistake


@DATASETS.register("test_only_tiny")
def _tiny(root=None, *, n: int = 4) -> ArrayDataset:
    x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    y = torch.arange(n) % 2
    return ArrayDataset("test_only_tiny", x, y, x, y, 2, 1, 2, flip=False, crop_padding=0)


def test_one_decorator_adds_a_dataset():
    assert "test_only_tiny" in list_datasets("test_*")
    assert len(create_dataset("test_only_tiny", n=6).train_y) == 6
    with pytest.raises(ConfigError, match="'m'.*valid options: n, root"):
        create_dataset("test_only_tiny", m=1)


def test_array_dataset_validates_and_moves():
    x = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    y = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="uint8"):
        ArrayDataset("bad", x.float(), y, x, y, 2, 1, 4, False, 0)
    with pytest.raises(ValueError, match="labels outside"):
        ArrayDataset("bad", x, y + 5, x, y, 2, 1, 4, False, 0)
    ds = ArrayDataset("ok", x, y, x, y, 2, 1, 4, False, 0)
    moved = ds.to("cpu")
    assert moved is not ds and moved.train_x.device.type == "cpu" and moved.name == "ok"


def test_layouts_validate_shapes_and_describe_the_model_input():
    ev = torch.zeros(3, 5, 2, 4, 4, dtype=torch.uint8)  # [N, T, 2, H, W]
    y = torch.zeros(3, dtype=torch.int64)
    ds = ArrayDataset("ev", ev, y, ev, y, 2, 2, 4, False, 0, layout="events", frames=5)
    assert ds.model_kwargs() == dict(img_size=4, in_chans=2, num_classes=2, T=5) and "events" in repr(ds)
    with pytest.raises(ValueError, match=r"uint8 \[N, 5, 2, 4, 4\]"):
        ArrayDataset("ev", ev[:, :, :1], y, ev, y, 2, 2, 4, False, 0, layout="events", frames=5)
    with pytest.raises(ValueError, match="frames must be > 0 exactly for the events layout"):
        ArrayDataset("ev", ev, y, ev, y, 2, 2, 4, False, 0, layout="events")
    seq = torch.randn(3, 7, 2)  # [N, L, F], float allowed for sequences only
    sq = ArrayDataset("seq", seq, y, seq, y, 2, 2, 7, False, 0, layout="sequence")
    assert sq.model_kwargs() == dict(seq_len=7, in_features=2, num_classes=2)
    with pytest.raises(ValueError, match=r"uint8 or float32 \[N, 7, 2\]"):
        ArrayDataset("seq", seq.double(), y, seq, y, 2, 2, 7, False, 0, layout="sequence")
    with pytest.raises(ValueError, match="unknown layout 'video'"):
        ArrayDataset("v", seq, y, seq, y, 2, 2, 7, False, 0, layout="video")
    img = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    assert ArrayDataset("i", img, y, img, y, 2, 1, 4, False, 0).model_kwargs() == dict(img_size=4, in_chans=1, num_classes=2)


# ----------------------------------------------------------------------------- digits


def test_digits_protocol():
    from sklearn.datasets import load_digits

    ds = create_dataset("digits")
    assert (len(ds.train_y), len(ds.test_y)) == (1437, 360)
    assert ds.train_x.shape == (1437, 1, 8, 8) and ds.train_x.dtype == torch.uint8
    assert ds.train_y.dtype == torch.int64
    assert (ds.num_classes, ds.in_chans, ds.img_size, ds.flip, ds.crop_padding) == (10, 1, 8, False, 1)
    # Stratified: every class's test count is within 1 of 20% of its total.
    total = np.bincount(load_digits().target, minlength=10)
    test = np.bincount(ds.test_y.numpy(), minlength=10)
    assert np.all(np.abs(test - 0.2 * total) <= 1)
    # Train + test is exactly the scaled dataset (as a multiset of (image, label) rows).
    raw = load_digits()
    ref = np.floor(raw.images * 255 / 16 + 0.5).astype(np.uint8).reshape(-1, 64)
    ref_rows = sorted(r.tobytes() + bytes([t]) for r, t in zip(ref, raw.target))
    ours = torch.cat([ds.train_x, ds.test_x]).reshape(-1, 64).numpy()
    labels = torch.cat([ds.train_y, ds.test_y]).numpy()
    assert sorted(r.tobytes() + bytes([t]) for r, t in zip(ours, labels)) == ref_rows
    assert ours.max() == 255 and ours.min() == 0
    # Fixed protocol: deterministic.
    again = create_dataset("digits")
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)


# ----------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    back = read_idx(write_idx(tmp_path / "a.idx", arr, gz))
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert back.flags.writeable


def test_idx_errors_name_the_file(tmp_path):
    good = write_idx(tmp_path / "good", np.arange(20, dtype=np.uint8).reshape(4, 5), gz=False).read_bytes()
    bad_magic = tmp_path / "bad_magic"
    bad_magic.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(DatasetError, match="bad_magic: bad magic number"):
        read_idx(bad_magic)
    bad_code = tmp_path / "bad_code"
    bad_code.write_bytes(b"\x00\x00\x07" + good[3:])
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(bad_code)
    short = tmp_path / "short"
    short.write_bytes(good[:-3])
    with pytest.raises(DatasetError, match="short: truncated"):
        read_idx(short)
    short_header = tmp_path / "short_header"
    short_header.write_bytes(good[:6])
    with pytest.raises(DatasetError, match="truncated header"):
        read_idx(short_header)
    long = tmp_path / "long"
    long.write_bytes(good + b"\x00")
    with pytest.raises(DatasetError, match="trailing bytes"):
        read_idx(long)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(DatasetError, match="bad.gz"):
        read_idx(bad_gz)
    with pytest.raises(DatasetError, match="does not exist"):
        read_idx(tmp_path / "nope")


# ----------------------------------------------------------------------------- MNIST-style datasets


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_idx_dataset_from_root(tmp_path, name, gz):
    ref = write_mnist_like(tmp_path / "d", gz=gz)
    ds = create_dataset(name, root=str(tmp_path / "d"))
    assert ds.train_x.shape == (12, 1, 6, 6) and ds.test_x.shape == (5, 1, 6, 6)
    assert np.array_equal(ds.train_x[:, 0].numpy(), ref["train"][0])
    assert np.array_equal(ds.test_y.numpy(), ref["t10k"][1].astype(np.int64))
    assert ds.img_size == 6 and ds.flip == (name == "fashion_mnist") and ds.crop_padding == 2


def test_env_var_overrides_search(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "fashion-mnist", n_train=3)
    monkeypatch.setenv("SPIKEFORMERS_DATA", str(tmp_path))
    assert len(create_dataset("fashion_mnist").train_y) == 3


def test_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIKEFORMERS_DATA", raising=False)
    with pytest.raises(DatasetError) as e:
        create_dataset("fashion_mnist", root=str(tmp_path / "absent"))
    msg = str(e.value)
    assert "\n" not in msg and "train-images-idx3-ubyte" in msg and str(tmp_path / "absent") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "data.root=" in msg
    (tmp_path / "partial").mkdir()
    write_idx(tmp_path / "partial" / "train-images-idx3-ubyte.gz", np.zeros((1, 2, 2), np.uint8), True)
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte"):
        create_dataset("mnist", root=str(tmp_path / "partial"))


def test_bad_labels_rejected(tmp_path):
    write_mnist_like(tmp_path, classes=12)  # labels up to 11 in a 10-class dataset
    with pytest.raises(DatasetError, match=r"outside \[0, 10\)"):
        create_dataset("mnist", root=str(tmp_path))


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(FASHION_MNIST_ROOT, "train-images-idx3-ubyte.gz")),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("SPIKEFORMERS_DATA", raising=False)
    ds = create_dataset("fashion_mnist")
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_y.min() == 0 and ds.train_y.max() == 9
    assert torch.equal(torch.bincount(ds.test_y), torch.full((10,), 1000))  # balanced test set
