"""Text corpora and the window loader: contiguous splits of the true bytes, one-line errors that name
the file, windows that are slices of the stream, deterministic per (seed, epoch), sharded like DDP."""
import gzip
import math
import zipfile

import pytest
import torch

from spikeformers.data import WindowLoader, create_dataset
from spikeformers.data.text import ENWIK8_SPLIT, GCIDE_PATH, split_bytes
from spikeformers.errors import DatasetError

CORPUS = ("The quick brown fox jumps over the lazy dog. " * 40 + "Caf\u00e9 na\u00efve \u00fcber. ") * 3


def test_split_is_contiguous_and_by_fraction():
    data = bytes(range(200)) * 5  # 1000 bytes
    tr, va, te = split_bytes(data, (0.98, 0.01, 0.01))
    assert (len(tr), len(va), len(te)) == (980, 10, 10) and tr + va + te == data
    with pytest.raises(DatasetError, match="three non-negative fractions summing to 1"):
        split_bytes(data, (0.5, 0.2))


def test_text_file_and_folder_are_read_as_utf8_bytes(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text(CORPUS, encoding="utf-8")
    ds = create_dataset("text", root=str(f), seq_len=16, split=[0.8, 0.1, 0.1])
    raw = CORPUS.encode("utf-8")
    assert bytes(torch.cat([ds.train, ds.val, ds.test]).tolist()) == raw
    assert len(ds.train) == round(0.8 * len(raw)) and ds.vocab_size == 256 and "contiguous" in ds.split
    assert ds.model_kwargs() == {"vocab_size": 256, "block_size": 16} and ds.task == "lm"
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "2.txt").write_text("second", encoding="utf-8")
    (folder / "sub" / "1.txt").write_text(CORPUS, encoding="utf-8")
    (folder / ".hidden").write_text("skipped", encoding="utf-8")
    ds = create_dataset("text", root=str(folder), seq_len=8, split=[0.9, 0.05, 0.05])
    assert bytes(torch.cat([ds.train, ds.val, ds.test]).tolist()) == b"second\n" + raw  # sorted by path


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"text\x00with a NUL" * 50, "looks binary"),
    (b"caf\xe9 latin-1 " * 50, "is not UTF-8 text"),
])
def test_bad_text_files_are_one_line_errors_naming_the_file(tmp_path, content, match):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as e:
        create_dataset("text", root=str(f))
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_text_needs_a_root_and_enough_tokens(tmp_path):
    with pytest.raises(DatasetError, match="needs data.root"):
        create_dataset("text")
    with pytest.raises(DatasetError, match="does not exist"):
        create_dataset("text", root=str(tmp_path / "missing.txt"))
    f = tmp_path / "short.txt"
    f.write_text("short text " * 20)
    with pytest.raises(DatasetError, match="fewer than seq_len \\+ 1"):
        create_dataset("text", root=str(f), seq_len=64)


def test_gcide_missing_says_how_to_install_it(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dict-gcide"):
        create_dataset("gcide", root=str(tmp_path))


def test_gcide_reads_a_gzip_dictionary(tmp_path):
    with gzip.open(tmp_path / "gcide.dict.dz", "wb") as f:
        f.write(CORPUS.encode("utf-8"))
    ds = create_dataset("gcide", root=str(tmp_path), seq_len=32)
    assert bytes(torch.cat([ds.train, ds.val, ds.test]).tolist()) == CORPUS.encode("utf-8")
    small = create_dataset("gcide", root=str(tmp_path), seq_len=8, max_bytes=1000)
    assert len(small.train) + len(small.val) + len(small.test) == 1000


@pytest.mark.skipif(not __import__("os").path.exists(GCIDE_PATH), reason="dict-gcide is not installed")
def test_the_real_gcide_has_its_published_size():
    ds = create_dataset("gcide", seq_len=256)
    n = len(ds.train) + len(ds.val) + len(ds.test)
    assert n == 39_952_321 and len(ds.val) == round(0.01 * n)


def test_enwik8_is_split_90_5_5_and_checked(tmp_path):
    data = bytes(range(256)) * (sum(ENWIK8_SPLIT) // 256) + bytes(sum(ENWIK8_SPLIT) % 256)
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("enwik8", data)
    ds = create_dataset("enwik8", root=str(tmp_path))
    assert (len(ds.train), len(ds.val), len(ds.test)) == ENWIK8_SPLIT
    assert int(ds.val[0]) == data[ENWIK8_SPLIT[0]] and int(ds.test[-1]) == data[-1]
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "enwik8").write_bytes(b"x" * 1000)
    with pytest.raises(DatasetError, match="has 1,000 bytes; enwik8 has exactly 100,000,000"):
        create_dataset("enwik8", root=str(tmp_path / "small"))
    with pytest.raises(DatasetError, match="needs data.root"):
        create_dataset("enwik8")


def stream(n=1000, seed=0):
    return torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


def test_training_windows_are_slices_of_the_stream_and_replay_per_epoch():
    tokens = stream()
    loader = WindowLoader(tokens, 4, 16, shuffle=True, seed=3)
    assert len(loader) == 1000 // 64
    batches = list(loader)
    for x, y in batches:
        assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
        for row_x, row_y in zip(x, y):
            starts = [s for s in range(len(tokens) - 16) if torch.equal(tokens[s:s + 16].long(), row_x)]
            assert any(torch.equal(tokens[s + 1:s + 17].long(), row_y) for s in starts)
    again = list(loader)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader))[0], batches[0][0])


def test_evaluation_windows_cover_the_stream_once():
    tokens = stream(1000)
    loader = WindowLoader(tokens, 8, 16, shuffle=False)
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    n = (1000 - 1) // 16
    assert len(loader) == math.ceil(n / 8) and x.shape == (n, 16)
    assert torch.equal(x.flatten(), tokens[:n * 16].long()) and torch.equal(y.flatten(), tokens[1:n * 16 + 1].long())


def test_shards_split_every_global_batch_between_ranks():
    tokens = stream()
    full = next(iter(WindowLoader(tokens, 4, 8, shuffle=True, seed=1)))[0]
    parts = []
    for rank in (0, 1):
        loader = WindowLoader(tokens, 4, 8, shuffle=True, seed=1)
        loader.set_shard(rank, 2)
        parts.append(next(iter(loader))[0])
    assert torch.equal(torch.stack(parts, 1).flatten(0, 1), full)
