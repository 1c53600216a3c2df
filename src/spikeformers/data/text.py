"""Text corpora for language modelling, as byte tokens: `text` (any UTF-8 file or folder), `gcide`
(Debian's dict-gcide dictionary, 40 MB of English) and `enwik8` (the standard 100 MB Wikipedia file).

A corpus is one byte string split into contiguous train / validation / test parts (no shuffling, so no
sentence is shared between splits): `split` gives the fractions for `text` and `gcide` (default
98/1/1); enwik8 uses the literature's fixed 90M / 5M / 5M bytes. Tokens are the bytes themselves
(vocabulary 256), so bits per token are bits per byte (per character for ASCII text).

    ds = create_dataset("text", root="notes/", seq_len=128)    # a TokenDataset
    ds.train, ds.val, ds.test                                   # uint8 token streams [n]

Nothing is downloaded. A missing file, an empty corpus or a binary file is a one-line `DatasetError`
that names the path.
"""
from __future__ import annotations

import codecs
import dataclasses
import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..errors import DatasetError
from .registry import DATASETS

__all__ = ["TokenDataset", "ByteTokenizer", "split_bytes", "read_text_source", "GCIDE_PATH", "ENWIK8_SPLIT"]

GCIDE_PATH = "/usr/share/dictd/gcide.dict.dz"
ENWIK8_SPLIT = (90_000_000, 5_000_000, 5_000_000)  # bytes: train / validation / test (Mahoney's protocol)
_TEXT_SUFFIXES_SKIPPED = (".gz", ".zip", ".dz", ".png", ".jpg", ".pdf")


class ByteTokenizer:
    """Tokens are UTF-8 bytes (vocabulary 256); decoding replaces invalid sequences with U+FFFD."""

    vocab_size = 256
    name = "bytes"

    def encode(self, text: str) -> List[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def stream_decoder(self):
        """An incremental decoder: `feed(ids) -> str` returns only completed characters (for streaming)."""
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda ids: dec.decode(bytes(int(i) for i in ids))

    def token_bytes(self) -> Tensor:
        """UTF-8 bytes per token id [vocab]: all ones."""
        return torch.ones(self.vocab_size, dtype=torch.float64)


@dataclass(frozen=True)
class TokenDataset:
    """A tokenised corpus: three contiguous token streams and the window length models see.

    `train`, `val`, `test`: 1-D uint8 tensors (byte tokens). `seq_len`: tokens per training window (the
    model's block_size). `split`: how the corpus was cut, in words, stored with the run.
    """

    name: str
    train: Tensor
    val: Tensor
    test: Tensor
    seq_len: int
    split: str
    tokenizer: Any = dataclasses.field(default_factory=ByteTokenizer)

    kind = "tokens"  # what a task checks it can train on
    task = "lm"  # the default task

    def __post_init__(self) -> None:
        if not isinstance(self.seq_len, int) or self.seq_len < 1:
            raise DatasetError(f"{self.name}: seq_len must be a positive integer, got {self.seq_len!r}")
        for split, t in (("train", self.train), ("val", self.val), ("test", self.test)):
            if t.dim() != 1 or t.dtype != torch.uint8:
                raise DatasetError(f"{self.name}: the {split} tokens must be a uint8 stream [n], got {t.dtype} {list(t.shape)}")
            if len(t) < self.seq_len + 1:
                raise DatasetError(f"{self.name}: the {split} split has {len(t)} tokens, fewer than seq_len + 1 = "
                                   f"{self.seq_len + 1}; use a larger corpus or a smaller data.options.seq_len")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def model_kwargs(self) -> Dict[str, Any]:
        return {"vocab_size": self.vocab_size, "block_size": self.seq_len}

    def to(self, device: torch.device | str) -> "TokenDataset":
        return dataclasses.replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))

    def __repr__(self) -> str:
        return (f"TokenDataset({self.name!r}, {self.tokenizer.name}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)} tokens, seq_len={self.seq_len}, split {self.split}, device={self.train.device})")


def split_bytes(data: bytes, fractions: Sequence[float]) -> Tuple[bytes, bytes, bytes]:
    """Contiguous train / validation / test parts of `data` by `fractions` (three numbers summing to 1)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(f"split must be three non-negative fractions summing to 1 (train, val, test), got {list(fractions)}")
    n = len(data)
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    return data[:a], data[a:b], data[b:]


def _check_text(path: Path, data: bytes) -> None:
    """Refuse an empty or a binary file (NUL bytes or invalid UTF-8), naming it."""
    if not data:
        raise DatasetError(f"{path} is empty: a text corpus needs UTF-8 text")
    if b"\x00" in data[:1 << 20]:
        raise DatasetError(f"{path} looks binary (it holds NUL bytes): a text corpus needs UTF-8 text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path} is not UTF-8 text (invalid byte at offset {e.start})") from None


def read_text_source(root: Optional[str]) -> bytes:
    """The bytes of a UTF-8 file, or of every file under a folder (sorted by path, joined by newlines)."""
    if root is None:
        raise DatasetError("dataset 'text' needs data.root=PATH: a UTF-8 text file or a folder of them")
    path = Path(root).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() not in _TEXT_SUFFIXES_SKIPPED)
        if not files:
            raise DatasetError(f"{path} holds no text files")
    else:
        raise DatasetError(f"{path} does not exist (data.root must be a UTF-8 text file or a folder of them)")
    parts = []
    for f in files:
        data = f.read_bytes()
        _check_text(f, data)
        parts.append(data)
    return b"\n".join(parts)


def _seq_len(seq_len: int) -> int:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise DatasetError(f"seq_len must be a positive integer, got {seq_len!r}")
    return seq_len


def _max_bytes(data: bytes, max_bytes: Optional[int]) -> bytes:
    if max_bytes is None:
        return data
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise DatasetError(f"max_bytes must be a positive integer or null, got {max_bytes!r}")
    return data[:max_bytes]


def _dataset(name: str, data: bytes, fractions: Sequence[float], seq_len: int, how: str) -> TokenDataset:
    parts = split_bytes(data, fractions)
    tr, va, te = (torch.frombuffer(bytearray(p), dtype=torch.uint8) if p else torch.zeros(0, dtype=torch.uint8)
                  for p in parts)
    split = f"{how}: {len(tr):,} / {len(va):,} / {len(te):,} bytes (train / val / test, contiguous)"
    return TokenDataset(name, tr, va, te, _seq_len(seq_len), split)


_SPLIT = (0.98, 0.01, 0.01)


@DATASETS.register("text", layout="tokens", task="lm", vocab_size=256, seq_len=256)
def text(root: Optional[str] = None, *, seq_len: int = 256, split: Sequence[float] = _SPLIT,
         max_bytes: Optional[int] = None) -> TokenDataset:
    """Any UTF-8 text file or folder (`data.root`), as bytes; `max_bytes` keeps only the start."""
    data = _max_bytes(read_text_source(root), max_bytes)
    return _dataset("text", data, split, seq_len, f"{'/'.join(f'{100 * f:g}' for f in split)} % of {root}")


@DATASETS.register("gcide", layout="tokens", task="lm", vocab_size=256, seq_len=256)
def gcide(root: Optional[str] = None, *, seq_len: int = 256, split: Sequence[float] = _SPLIT,
          max_bytes: Optional[int] = None) -> TokenDataset:
    """The Collaborative International Dictionary of English (Debian `dict-gcide`, 39,952,321 bytes),
    read from `gcide.dict.dz` (gzip-compatible) in `root` or /usr/share/dictd."""
    folder = Path(root).expanduser() if root is not None else Path(GCIDE_PATH).parent
    path = folder / "gcide.dict.dz" if folder.is_dir() or root is None else folder
    if not path.is_file():
        raise DatasetError(f"{path} not found: install it with `apt-get install dict-gcide` (Debian/Ubuntu), "
                           f"or point data.root at a folder holding gcide.dict.dz")
    _max_bytes(b"", max_bytes)  # validate before reading
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(-1 if max_bytes is None else max_bytes)
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: cannot read it as gzip ({e})") from None
    return _dataset("gcide", data, split, seq_len, f"{'/'.join(f'{100 * f:g}' for f in split)} % of {path.name}")


@DATASETS.register("enwik8", layout="tokens", task="lm", vocab_size=256, seq_len=256)
def enwik8(root: Optional[str] = None, *, seq_len: int = 256) -> TokenDataset:
    """The Hutter Prize file enwik8 (100,000,000 bytes of Wikipedia XML) that the user brings: `root` is
    the file, `enwik8.zip`, or a folder holding either. Split 90M / 5M / 5M bytes as in the literature."""
    if root is None:
        raise DatasetError("dataset 'enwik8' needs data.root=PATH: the enwik8 file (or enwik8.zip, or their folder); "
                           "it is the first 10^8 bytes of the English Wikipedia dump of 2006-03-03 (mattmahoney.net/dc)")
    path = Path(root).expanduser()
    if path.is_dir():
        path = next((path / n for n in ("enwik8", "enwik8.zip") if (path / n).is_file()), path / "enwik8")
    if not path.is_file():
        raise DatasetError(f"{path} not found: data.root must be the enwik8 file, enwik8.zip, or their folder")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if "enwik8" not in z.namelist():
                raise DatasetError(f"{path} is a zip file without an 'enwik8' member")
            data = z.read("enwik8")
    else:
        data = path.read_bytes()
    if len(data) != sum(ENWIK8_SPLIT):
        raise DatasetError(f"{path} has {len(data):,} bytes; enwik8 has exactly {sum(ENWIK8_SPLIT):,}")
    fractions = [n / sum(ENWIK8_SPLIT) for n in ENWIK8_SPLIT]
    return _dataset("enwik8", data, fractions, seq_len, "90M / 5M / 5M bytes (the standard enwik8 split)")
