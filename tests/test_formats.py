"""Every file-reading loader against tiny files written here in its true format (tests/writers.py)."""
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeformers.data import (ArrayDataset, DATASETS, Events, create_dataset, dataset_info, events_to_frames,
                               read_aedat, read_cifar_batch)
from spikeformers.data.frames import check_frame_options
from spikeformers.data.sequential import fixed_permutation
from spikeformers.errors import ConfigError, DatasetError

from writers import (aedat3_packet, cifar_batch_bytes, polarity_word, random_events, write_aedat2_dvs128,
                     write_aedat3, write_cifar10, write_cifar100, write_mnist_like)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No real data folder or user cache is ever read or written by these tests."""
    monkeypatch.delenv("SPIKEFORMERS_DATA", raising=False)
    monkeypatch.setenv("SPIKEFORMERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ----------------------------------------------------------------------------- CIFAR


def test_cifar10_round_trip(tmp_path):
    ref = write_cifar10(tmp_path / "cifar-10-batches-py")
    ds = create_dataset("cifar10", root=str(tmp_path / "cifar-10-batches-py"))
    assert ds.train_x.shape == (15, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    train = np.concatenate([ref[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(ds.train_x.numpy(), train) and np.array_equal(ds.test_x.numpy(), ref["test_batch"][0])
    assert np.array_equal(ds.test_y.numpy(), ref["test_batch"][1])
    # A row of data is the R, G, B planes in turn: pixel (0, 0, 1) of channel G is byte 1024 + 1.
    raw = read_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch")["data"]
    assert ds.test_x[0, 1, 0, 1] == raw[0, 1024 + 1]
    assert (ds.num_classes, ds.flip, ds.crop_padding, ds.layout) == (10, True, 4, "image")


def test_cifar100_fine_and_coarse(tmp_path):
    ref = write_cifar100(tmp_path / "c100")
    fine = create_dataset("cifar100", root=str(tmp_path / "c100"))
    coarse = create_dataset("cifar100", root=str(tmp_path / "c100"), labels="coarse")
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert np.array_equal(fine.train_y.numpy(), ref["train"][1]) and np.array_equal(coarse.test_y.numpy(), ref["test"][2])
    assert torch.equal(fine.train_x, coarse.train_x)
    with pytest.raises(DatasetError, match="labels must be"):
        create_dataset("cifar100", root=str(tmp_path / "c100"), labels="medium")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_unpickler_never_runs_code(tmp_path, protocol):
    marker = tmp_path / "pwned"
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({"data": _Evil(marker)}, protocol=protocol))
    with pytest.raises(DatasetError, match="refusing to load global (posix|os|nt).system"):
        read_cifar_batch(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps({"x": eval}, protocol=protocol))  # a builtin callable is refused too
    with pytest.raises(DatasetError, match="refusing"):
        read_cifar_batch(bad)


def test_cifar_errors(tmp_path):
    with pytest.raises(DatasetError) as e:
        create_dataset("cifar10", root=str(tmp_path / "absent"))
    msg = one_line(e)
    assert "data_batch_1" in msg and str(tmp_path / "absent") in msg and "cifar-10-python.tar.gz" in msg
    write_cifar10(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3: not a CIFAR python batch"):
        create_dataset("cifar10", root=str(tmp_path / "c"))
    (tmp_path / "c" / "data_batch_3").write_bytes(cifar_batch_bytes(np.zeros((2, 3072), np.uint8), {b"labels": [1, 12]}))
    with pytest.raises(DatasetError, match=r"outside \[0, 10\)"):
        create_dataset("cifar10", root=str(tmp_path / "c"))
    with pytest.raises(DatasetError) as e:
        create_dataset("cifar100", root=str(tmp_path / "absent100"))
    assert "cifar-100-python.tar.gz" in one_line(e)


# ----------------------------------------------------------------------------- image folders


def _write_png(path: Path, arr: np.ndarray, mode: str):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path)


def test_imagefolder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    exact = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    _write_png(tmp_path / "train" / "cat" / "a.png", exact, "RGB")  # already 16x16: stored unchanged
    _write_png(tmp_path / "train" / "cat" / "b.png", np.full((40, 20, 3), 200, np.uint8), "RGB")  # resized + cropped
    _write_png(tmp_path / "train" / "cat" / "c.png", exact, "RGB")  # beyond max_per_class
    _write_png(tmp_path / "train" / "dog" / "a.png", np.full((16, 30), 90, np.uint8), "L")  # grey -> RGB
    _write_png(tmp_path / "train" / "dog" / "notes.txt.png", np.zeros((8, 8, 4), np.uint8), "RGBA")
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    _write_png(tmp_path / "val" / "dog" / "z.png", np.full((16, 16, 3), 7, np.uint8), "RGB")
    ds = create_dataset("imagefolder", root=str(tmp_path), img_size=16, resize=16, max_per_class=2)
    assert ds.num_classes == 2 and ds.in_chans == 3 and ds.img_size == 16
    assert ds.train_x.shape == (4, 3, 16, 16) and ds.train_y.tolist() == [0, 0, 1, 1]
    assert np.array_equal(ds.train_x[0].permute(1, 2, 0).numpy(), exact)
    assert torch.all(ds.train_x[1] == 200) and torch.all(ds.train_x[2] == 90) and torch.all(ds.train_x[3] == 0)
    assert ds.test_y.tolist() == [1] and torch.all(ds.test_x == 7)


def test_imagefolder_resize_center_crop():
    from spikeformers.data.imagefolder import resize_center_crop

    img = torch.zeros(3, 20, 40, dtype=torch.uint8)
    img[:, :, 10:30] = 255  # a bright band in the middle half of a wide image
    out = resize_center_crop(img, resize=10, size=10)  # 20x40 -> 10x20 -> centre 10x10
    assert out.shape == (3, 10, 10) and torch.all(out[:, :, 1:-1] == 255)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetError, match="data.root"):
        create_dataset("imagefolder")
    with pytest.raises(DatasetError) as e:
        create_dataset("imagefolder", root=str(tmp_path))
    assert "train" in one_line(e)
    _write_png(tmp_path / "train" / "a" / "x.png", np.zeros((4, 4, 3), np.uint8), "RGB")
    _write_png(tmp_path / "train" / "b" / "x.png", np.zeros((4, 4, 3), np.uint8), "RGB")
    _write_png(tmp_path / "val" / "c" / "x.png", np.zeros((4, 4, 3), np.uint8), "RGB")
    with pytest.raises(DatasetError, match="not among"):
        create_dataset("imagefolder", root=str(tmp_path), img_size=4)
    with pytest.raises(ConfigError, match="resize >= img_size"):
        create_dataset("imagefolder", root=str(tmp_path), img_size=4, resize=2)


# ----------------------------------------------------------------------------- sequential tasks


def test_smnist_psmnist(tmp_path):
    ref = write_mnist_like(tmp_path, size=6, gz=False)
    s = create_dataset("smnist", root=str(tmp_path))
    assert s.layout == "sequence" and s.train_x.shape == (12, 36, 1) and s.train_x.dtype == torch.uint8
    assert np.array_equal(s.train_x[:, :, 0].numpy(), ref["train"][0].reshape(12, 36))  # raster order
    assert s.model_kwargs() == dict(seq_len=36, in_features=1, num_classes=10)
    p = create_dataset("psmnist", root=str(tmp_path))
    perm = fixed_permutation(36, 0)
    assert not torch.equal(perm, torch.arange(36)) and torch.equal(perm.sort().values, torch.arange(36))
    assert torch.equal(p.train_x, s.train_x[:, perm]) and torch.equal(p.test_y, s.test_y)
    assert torch.equal(create_dataset("psmnist", root=str(tmp_path)).train_x, p.train_x)  # fixed
    assert not torch.equal(create_dataset("psmnist", root=str(tmp_path), perm_seed=1).train_x, p.train_x)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        create_dataset("smnist", root=str(tmp_path / "absent"))


def test_scifar_modes(tmp_path):
    ref = write_cifar10(tmp_path)
    img = ref["test_batch"][0]  # [3, 3, 32, 32]
    pix = create_dataset("scifar", root=str(tmp_path))
    row = create_dataset("scifar", root=str(tmp_path), mode="row")
    assert pix.test_x.shape == (3, 1024, 3) and row.test_x.shape == (3, 32, 96)
    n, i, j = 1, 5, 7  # pixel (i, j): step i*32+j in pixel mode; row i, features 3j..3j+2 in row mode
    assert pix.test_x[n, i * 32 + j].tolist() == img[n, :, i, j].tolist() == row.test_x[n, i, 3 * j : 3 * j + 3].tolist()
    with pytest.raises(ConfigError, match="mode"):
        create_dataset("scifar", root=str(tmp_path), mode="column")


def test_mnist1d_generated_and_cached(tmp_path, monkeypatch):
    mnist1d_data = pytest.importorskip("mnist1d.data")
    import spikeformers.data.mnist1d as m

    calls = []
    real_make = mnist1d_data.make_dataset

    def recording_make(args=None, **kw):  # the package's generator, watched
        out = real_make(args, **kw)
        calls.append((dict(vars(args)), out))
        return out

    monkeypatch.setattr(mnist1d_data, "make_dataset", recording_make)
    state = np.random.get_state()[1].copy()
    ds = create_dataset("mnist1d")
    assert len(calls) == 1 and calls[0][0] == mnist1d_data.get_dataset_args(as_dict=True)  # default arguments
    ref = calls[0][1]
    assert np.array_equal(ds.test_x[:, :, 0].numpy(), ref["x_test"].astype(np.float32))
    assert np.array_equal(ds.train_y.numpy(), ref["y"])
    assert np.array_equal(np.random.get_state()[1], state)  # the global NumPy generator is left alone
    assert ds.layout == "sequence" and ds.train_x.shape == (4000, 40, 1) and ds.test_x.shape == (1000, 40, 1)
    assert ds.train_x.dtype == torch.float32 and sorted(ds.train_y.unique().tolist()) == list(range(10))
    assert len(list((tmp_path / "cache" / "mnist1d").glob("*.npz"))) == 1
    monkeypatch.setattr(m, "generate_mnist1d", lambda: pytest.fail("regenerated although cached"))
    again = create_dataset("mnist1d")  # read back from the cache file
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)


def test_mnist1d_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(DatasetError, match=r"pip install 'spikeformers\[data\]'"):
        create_dataset("mnist1d")


# ----------------------------------------------------------------------------- AEDAT and frames


def test_aedat2_round_trip(tmp_path):
    t, x, y, p = random_events(500, 10, 100_000, seed=1)
    f = write_aedat2_dvs128(tmp_path / "a.aedat", t, x, y, p, special=[(5, 50)])
    ev = read_aedat(f)
    assert len(ev) == 500  # the special event is dropped
    for got, want in ((ev.t, t), (ev.x, x), (ev.y, y), (ev.p, p)):
        assert np.array_equal(got, want)


def test_aedat3_round_trip(tmp_path):
    t, x, y, p = random_events(300, 0, 2**31 - 1, seed=2)
    ev1 = [(polarity_word(*a), int(b)) for a, b in zip(zip(x[:200], y[:200], p[:200]), t[:200])]
    ev2 = [(polarity_word(*a), int(b)) for a, b in zip(zip(x[200:], y[200:], p[200:]), t[200:])]
    ev2.append((polarity_word(3, 4, 1, valid=False), 5))  # invalid: skipped
    packets = [
        aedat3_packet(1, ev1, capacity=260),  # unused capacity after the events
        aedat3_packet(0, [(12345, 7)]),  # a special-event packet: skipped
        aedat3_packet(1, ev2, overflow=1),  # timestamps past 2^31
    ]
    ev = read_aedat(write_aedat3(tmp_path / "b.aedat", packets))
    assert len(ev) == 300
    assert np.array_equal(ev.t, np.concatenate([t[:200], t[200:] + (1 << 31)]))
    assert np.array_equal(ev.x, x) and np.array_equal(ev.y, y) and np.array_equal(ev.p, p)


def test_aedat_errors(tmp_path):
    f = write_aedat3(tmp_path / "c.aedat", [aedat3_packet(1, [(polarity_word(1, 2, 1), 3)] * 4)])
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(DatasetError, match="c.aedat: bad or truncated packet"):
        read_aedat(f)
    (tmp_path / "d.aedat").write_bytes(b"\x00\x01\x02")
    with pytest.raises(DatasetError, match="no '#!AER-DAT' version line"):
        read_aedat(tmp_path / "d.aedat")
    g = write_aedat2_dvs128(tmp_path / "e.aedat", [1], [2], [3], [1])
    g.write_bytes(g.read_bytes() + b"\x00\x01")
    with pytest.raises(DatasetError, match="truncated"):
        read_aedat(g)
    with pytest.raises(DatasetError, match="cannot read"):
        read_aedat(tmp_path / "absent.aedat")


def test_frames_by_number_and_time():
    ev = Events(t=np.array([0, 1, 2, 3, 10, 20, 30, 99]), x=np.array([0, 1, 2, 3, 0, 1, 2, 3]),
                y=np.zeros(8, np.int64), p=np.array([1, 0, 1, 0, 1, 1, 1, 1]))
    by_n = events_to_frames(ev, 2, (4, 4), split_by="number")
    assert by_n.shape == (2, 2, 4, 4) and by_n.dtype == np.uint8
    assert by_n[0, 1, 0].tolist() == [1, 0, 1, 0] and by_n[0, 0, 0].tolist() == [0, 1, 0, 1]  # first 4 events
    assert by_n[1, 1, 0].tolist() == [1, 1, 1, 1] and by_n[1, 0].sum() == 0
    by_t = events_to_frames(ev, 2, (4, 4), split_by="time")  # [0, 50) and [50, 100)
    assert by_t[0].sum() == 7 and by_t[1, 1, 0, 3] == 1
    win = events_to_frames(ev, 4, (4, 4), split_by="time", t_range=(0, 20))  # drops t >= 20; 5 us slices
    assert win.sum() == 5 and win[0].sum() == 4 and win[2].sum() == 1
    binned = events_to_frames(ev, 1, (4, 4), size=(2, 2))  # 2x2 sums
    assert binned.shape == (1, 2, 2, 2) and binned[0, 1, 0].tolist() == [3, 3] and binned.sum() == 8
    many = Events(np.zeros(300, np.int64), np.zeros(300, np.int64), np.zeros(300, np.int64), np.ones(300, np.int64))
    assert events_to_frames(many, 1, (2, 2))[0, 1, 0, 0] == 255  # saturates
    with pytest.raises(ConfigError, match="size must divide"):
        check_frame_options("x", 4, "number", 100, 128)
    with pytest.raises(ConfigError, match="split_by"):
        check_frame_options("x", 4, "count", 64, 128)


# ----------------------------------------------------------------------------- CIFAR10-DVS and DVS128 Gesture


def test_cifar10_dvs_round_trip(tmp_path):
    from spikeformers.data.cifar10_dvs import CIFAR10_DVS_CLASSES

    expected = {}
    for label, cls in enumerate(CIFAR10_DVS_CLASSES):
        for k in (0, 1, 2, 10):  # numeric order: 0, 1, 2, 10 (not 0, 1, 10, 2)
            ev = random_events(40, 0, 1000, seed=label * 100 + k)
            write_aedat2_dvs128(tmp_path / cls / f"cifar10_{cls}_{k}.aedat", *ev)
            expected[(label, k)] = ev
    ds = create_dataset("cifar10_dvs", root=str(tmp_path), frames=4, size=64, train_ratio=0.75)
    assert ds.layout == "events" and ds.frames == 4 and ds.in_chans == 2 and ds.img_size == 64
    assert ds.train_x.shape == (30, 4, 2, 64, 64) and ds.test_x.shape == (10, 4, 2, 64, 64)
    assert ds.train_y.tolist() == [c for c in range(10) for _ in range(3)] and ds.test_y.tolist() == list(range(10))
    t, x, y, p = expected[(3, 10)]  # class 3's test file is its number 10
    want = events_to_frames(Events(t, x, y, p), 4, (128, 128), size=(64, 64))
    assert np.array_equal(ds.test_x[3].numpy(), want) and int(ds.test_x[3].sum()) == 40
    assert ds.model_kwargs() == dict(img_size=64, in_chans=2, num_classes=10, T=4)
    cached = list((tmp_path / "cache" / "cifar10_dvs").glob("*.npz"))
    assert len(cached) == 1
    again = create_dataset("cifar10_dvs", root=str(tmp_path), frames=4, size=64, train_ratio=0.75)
    assert torch.equal(again.train_x, ds.train_x)
    small = create_dataset("cifar10_dvs", root=str(tmp_path), frames=2, size=32, train_ratio=0.75, max_per_class=1)
    assert small.train_x.shape == (10, 2, 2, 32, 32)


def test_cifar10_dvs_missing(tmp_path):
    from spikeformers.data.cifar10_dvs import CIFAR10_DVS_CLASSES

    with pytest.raises(DatasetError) as e:
        create_dataset("cifar10_dvs", root=str(tmp_path))
    msg = one_line(e)
    assert "airplane/*.aedat" in msg and str(tmp_path) in msg and "figshare" in msg
    for cls in CIFAR10_DVS_CLASSES:
        write_aedat2_dvs128(tmp_path / cls / f"cifar10_{cls}_0.aedat", [1], [2], [3], [1])
    with pytest.raises(DatasetError, match="empty train or test split"):
        create_dataset("cifar10_dvs", root=str(tmp_path))


def _gesture_recording(folder: Path, name: str, rows, seed: int):
    t, x, y, p = random_events(400, 0, 8000, seed=seed)
    words = [(polarity_word(int(a), int(b), int(c)), int(d)) for a, b, c, d in zip(x, y, p, t)]
    write_aedat3(folder / f"{name}.aedat", [aedat3_packet(1, words[:150]), aedat3_packet(1, words[150:])])
    lines = ["class,startTime_usec,endTime_usec"] + [f"{c},{s},{e}" for c, s, e in rows]
    (folder / f"{name}_labels.csv").write_text("\n".join(lines) + "\n")
    return Events(t, x, y, p)


@pytest.mark.parametrize("lists", [True, False])
def test_dvs_gesture_round_trip(tmp_path, lists):
    tr = _gesture_recording(tmp_path, "user01_fluorescent", [(1, 0, 3000), (11, 3000, 8000)], seed=1)
    te = _gesture_recording(tmp_path, "user24_led", [(5, 1000, 2000)], seed=2)
    if lists:
        (tmp_path / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
        (tmp_path / "trials_to_test.txt").write_text("user24_led.aedat\n")
    ds = create_dataset("dvs128_gesture", root=str(tmp_path), frames=3, split_by="time")
    assert ds.num_classes == 11 and ds.flip is False and ds.layout == "events"
    assert ds.train_x.shape == (2, 3, 2, 128, 128) and ds.train_y.tolist() == [0, 10] and ds.test_y.tolist() == [4]
    want = events_to_frames(te.window(1000, 2000), 3, (128, 128), split_by="time", t_range=(1000, 2000))
    assert np.array_equal(ds.test_x[0].numpy(), want)
    assert int(ds.train_x[1].sum()) == int(((tr.t >= 3000) & (tr.t < 8000)).sum())


def test_dvs_gesture_errors(tmp_path):
    with pytest.raises(DatasetError) as e:
        create_dataset("dvs128_gesture", root=str(tmp_path))
    assert "DvsGesture.tar.gz" in one_line(e)
    _gesture_recording(tmp_path, "user02_led", [(1, 0, 100)], seed=3)
    (tmp_path / "user02_led_labels.csv").unlink()
    with pytest.raises(DatasetError, match="user02_led_labels.csv"):
        create_dataset("dvs128_gesture", root=str(tmp_path))
    _gesture_recording(tmp_path, "user02_led", [(12, 0, 100)], seed=3)
    with pytest.raises(DatasetError, match="class 12"):
        create_dataset("dvs128_gesture", root=str(tmp_path), cache=False)


# ----------------------------------------------------------------------------- emulated DVS


@DATASETS.register("test_only_squares", layout="image", num_classes=2, img_size=12, in_chans=1)
def _squares() -> ArrayDataset:
    x = torch.zeros(4, 1, 12, 12, dtype=torch.uint8)
    x[0, :, 3:8, 3:8] = 255  # a bright square
    x[1, :, :, :] = 128  # uniform: nothing moves
    x[2, :, 2:10, 5:6] = 200  # a bar
    x[3] = x[0]
    y = torch.tensor([0, 1, 0, 1])
    return ArrayDataset("test_only_squares", x, y, x[:2], y[:2], 2, 1, 12, flip=True, crop_padding=1)


def test_emulated_dvs_properties():
    ds = create_dataset("emulated_dvs", source="test_only_squares", frames=4)
    assert "emulated" in ds.name and ds.layout == "events" and ds.train_x.shape == (4, 4, 2, 12, 12)
    assert ds.train_x.dtype == torch.uint8 and (ds.flip, ds.crop_padding) == (True, 1)
    x = ds.train_x.int()
    assert x[1].sum() == 0  # a uniform image makes no events
    assert x[0, :, 1].sum() > 0 and x[0, :, 0].sum() > 0  # edges moving both ways: ON and OFF
    assert torch.equal(ds.train_x[0], ds.train_x[3])  # deterministic
    assert x[0].sum() == x[0].sum() and x[0, :, :, 0].sum() == 0  # nothing far from the square
    fewer = create_dataset("emulated_dvs", source="test_only_squares", frames=4, threshold=0.8).train_x.int()
    assert 0 < fewer.sum() < x.sum()
    still = create_dataset("emulated_dvs", source="test_only_squares", frames=2, amplitude=0.0).train_x
    assert still.sum() == 0  # no motion, no events
    with pytest.raises(ConfigError, match="image dataset"):
        create_dataset("emulated_dvs", source="mnist1d")  # refused from its registered layout, before loading


def test_every_file_loader_is_registered_with_its_layout():
    for name, layout in [("cifar10", "image"), ("cifar100", "image"), ("imagefolder", "image"), ("mnist", "image"),
                         ("smnist", "sequence"), ("psmnist", "sequence"), ("scifar", "sequence"),
                         ("mnist1d", "sequence"), ("cifar10_dvs", "events"), ("dvs128_gesture", "events"),
                         ("emulated_dvs", "events")]:
        assert dataset_info(name)["layout"] == layout
