"""Crash-safe files: atomic writes, JSON lines, RNG states and checkpoints that never unpickle code.

A checkpoint folder `dirpath/` holds one subfolder per saved epoch and a pointer file:

    dirpath/latest.json          {"path": "epoch_0007", "epoch": 7, "step": ..., "history": [...]}
    dirpath/epoch_0007/model.safetensors   weights
    dirpath/epoch_0007/ema.safetensors     any extra tensor dicts (one file each)
    dirpath/epoch_0007/train_state.pt      optimizer/scheduler/RNG states, epoch, step (tensors + primitives)
    dirpath/epoch_0007/meta.json           config, model name and arguments

A new epoch is written completely into a hidden temporary folder, renamed into place, and only
then does `latest.json` (replaced atomically) point at it: a crash at any moment leaves the
previous checkpoint whole and pointed to. Loading uses safetensors, JSON and
`torch.load(weights_only=True)` only.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from safetensors.torch import load_file as _st_load_file
from safetensors.torch import save as _st_save
from torch import Tensor

from .errors import CheckpointError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "append_jsonl",
    "read_jsonl",
    "capture_rng_state",
    "restore_rng_state",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "safetensors_bytes",
    "load_safetensors",
    "safetensors_header",
    "load_model_state",
    "oneline",
    "write_csv",
]

# ----------------------------------------------------------------------------- atomic files


def oneline(e: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, shortened (torch.load's can span twenty lines)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (not possible, nor needed, on Windows)."""
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_UMASK: Optional[int] = None


def umask() -> int:
    """The process's umask (read once: os.umask can only be read by setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one.

    The bytes go to a temporary file in the same folder (same filesystem), are fsynced, then
    `os.replace`d over `path`. Parent folders are created. The file gets the permissions a plain
    `open()` would give it (0666 less the umask), not the temporary file's owner-only 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | os.PathLike, records: List[Dict[str, Any]]) -> None:
    """`records` as CSV (columns: the first record's keys), atomically."""
    keys = list(records[0])
    lines = [",".join(keys)] + [",".join(f"{r.get(k, '')}" for k in keys) for r in records]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf floats -> null (invalid in JSON), scalar tensors/numpy -> numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        return _jsonable(obj.tolist())
    return obj


def _dumps(obj: Any, indent: Optional[int] = None) -> str:
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically (non-finite floats become null)."""
    atomic_write_text(path, _dumps(obj, indent=2) + "\n")


def append_jsonl(path: str | os.PathLike, record: Dict[str, Any]) -> None:
    """Append `record` as one JSON line and flush.

    If an earlier crash left an unterminated last line, it is cut off first, so every line of the
    file stays valid JSON. The file is ours alone: a symbolic link (not followed) or a file with another
    hard link (someone else's file under a second name) is refused with an OSError, never written through.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (_dumps(record) + "\n").encode("utf-8")  # json.dumps escapes newlines: one line
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "r+b") as f:
        if os.fstat(fd).st_nlink > 1:
            raise OSError(errno.EMLINK, "the file has other hard links: not writing through them", str(path))
        end = f.seek(0, os.SEEK_END)
        if end:
            f.seek(end - 1)
            if f.read(1) != b"\n":
                f.seek(0)
                keep = f.read().rfind(b"\n") + 1  # 0 when the only line is partial
                f.truncate(keep)
        f.write(line)  # O_APPEND: always lands at the (new) end
        f.flush()


def read_jsonl(path: str | os.PathLike) -> List[Dict[str, Any]]:
    """All records of a JSON-lines file (an unterminated last line, from a crash, is skipped)."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")
    return [json.loads(line) for line in lines[:-1] if line.strip()]


# ----------------------------------------------------------------------------- RNG states


def capture_rng_state() -> Dict[str, Any]:
    """The global torch / CUDA / numpy / Python RNG states, as tensors and primitives only.

    Loadable with `torch.load(weights_only=True)`. CUDA states are captured only when CUDA is
    already initialised (capturing must not initialise it).
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),  # uint8 tensor
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA states are restored for the devices present)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)


# ----------------------------------------------------------------------------- checkpoints

_LATEST = "latest.json"
_EPOCH_DIR = re.compile(r"epoch_\d{4,}(-\d+)?$")
_TMP_PREFIX = ".tmp-"
_EXTRA_NAME = re.compile(r"[A-Za-z0-9_]+$")


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns; `path` is the epoch folder that was read."""

    model_state: Dict[str, Tensor]
    extra_tensors: Dict[str, Dict[str, Tensor]]
    train_state: Dict[str, Any]
    meta: Dict[str, Any]
    path: str


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError unless `obj` holds only tensors and Python primitives (weights_only-safe)."""
    if obj is None or isinstance(obj, (bool, int, float, str, Tensor)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"train_state key {where}[{k!r}] must be a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"train_state value {where} is a {type(obj).__name__}; only tensors and primitives are allowed")


def safetensors_bytes(tensors: Dict[str, Tensor]) -> bytes:
    """safetensors bytes of a state dict; tied tensors (one storage, two names) are cloned apart."""
    seen, out = set(), {}
    for k, t in tensors.items():
        t = t.detach().cpu()
        ptr = t.untyped_storage().data_ptr()
        out[k] = t.clone(memory_format=torch.contiguous_format) if ptr in seen and t.numel() else t.contiguous()
        seen.add(ptr)
    return _st_save(out)


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    dirpath: str | os.PathLike,
    *,
    model_state: Dict[str, Tensor],
    train_state: Dict[str, Any],
    meta: Dict[str, Any],
    extra_tensors: Optional[Dict[str, Dict[str, Tensor]]] = None,
    keep: int = 2,
) -> Path:
    """Write `dirpath/epoch_{epoch:04d}/`, point `latest.json` at it, keep the last `keep` epochs.

    `train_state` must contain `"epoch"` (int) and hold only tensors and primitives (use
    `capture_rng_state()` for RNG states); `meta` must be JSON-able. Re-saving an epoch writes
    `epoch_XXXX-1`, ... rather than overwriting the folder `latest.json` may point at.
    Returns the new epoch folder.
    """
    if keep < 1:
        raise ValueError(f"save_checkpoint: keep must be >= 1, got {keep}")
    epoch = train_state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"save_checkpoint: train_state['epoch'] must be an int >= 0, got {epoch!r}")
    extra_tensors = extra_tensors or {}
    for name in extra_tensors:
        if not _EXTRA_NAME.match(name) or name == "model":
            raise ValueError(f"save_checkpoint: bad extra tensor name {name!r} (letters, digits, _; not 'model')")
    _check_plain(train_state, "train_state")
    meta_text = _dumps(meta, indent=2) + "\n"  # fails early if meta is not JSON-able

    root = Path(dirpath)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f"{_TMP_PREFIX}epoch_{epoch:04d}-"))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp's folder is owner-only
        _write_durable(tmp / "model.safetensors", safetensors_bytes(model_state))
        for name, tensors in extra_tensors.items():
            _write_durable(tmp / f"{name}.safetensors", safetensors_bytes(tensors))
        buf = io.BytesIO()
        torch.save(train_state, buf)
        _write_durable(tmp / "train_state.pt", buf.getvalue())
        _write_durable(tmp / "meta.json", meta_text.encode("utf-8"))
        name, n = f"epoch_{epoch:04d}", 0
        while (root / name).exists():
            n += 1
            name = f"epoch_{epoch:04d}-{n}"
        os.rename(tmp, root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)

    try:  # a missing or damaged pointer only loses the pruning history
        previous = _read_latest(root).get("history", [])
    except CheckpointError:
        previous = []
    previous = [h for h in previous if isinstance(h, str) and _EPOCH_DIR.match(h)]
    history = previous[-(keep - 1) :] if keep > 1 else []
    history.append(name)
    step = train_state.get("step")
    atomic_write_json(root / _LATEST, {"path": name, "epoch": epoch, "step": step, "history": history})
    # Prune only after the pointer moved, and only what this code wrote: the epochs the pointer listed before,
    # and leftovers of crashed saves (named as we name them, holding only the files we write). Links are never
    # followed; someone else's folder that merely looks like ours stays.
    for entry in root.iterdir():
        if entry.name in history:
            continue
        if entry.name in previous or (entry.name.startswith(_TMP_PREFIX + "epoch_") or _EPOCH_DIR.match(entry.name)) \
                and _holds_only_ours(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
    return root / name


_OURS = re.compile(r"([A-Za-z0-9_]+\.safetensors|train_state\.pt|meta\.json)$")


def _holds_only_ours(folder: Path) -> bool:
    """A real folder (not a link) holding nothing but files named as a checkpoint's (an empty one too), its
    meta.json, when present, a JSON object: what a crashed save leaves."""
    try:
        if folder.is_symlink() or not folder.is_dir():
            return False
        entries = list(folder.iterdir())
        if any(e.is_symlink() or not e.is_file() or not _OURS.match(e.name) for e in entries):
            return False
        meta = folder / "meta.json"
        return not meta.exists() or isinstance(json.loads(meta.read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def _read_latest(root: Path) -> Dict[str, Any]:
    path = root / _LATEST
    try:
        latest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable or corrupt ({oneline(e)})") from None
    if not isinstance(latest, dict) or not isinstance(latest.get("path"), str) or not _EPOCH_DIR.match(latest["path"]):
        raise CheckpointError(f"{path}: does not name an epoch folder (got {latest!r})")
    return latest


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> Dict[str, Tensor]:
    """The tensors of a safetensors file; `CheckpointError` naming it when it is corrupt or truncated."""
    try:
        return _st_load_file(str(path), device=device)
    except Exception as e:  # safetensors raises several types for truncated/corrupt files
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({oneline(e)})") from None


def safetensors_header(path: str | os.PathLike) -> Dict[str, Dict[str, Any]]:
    """name -> {"dtype", "shape"} of every tensor in a safetensors file, from its header alone (the first 8 bytes
    give the JSON header's length): a file's layout can be checked before any tensor is allocated."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= n <= min(size - 8, 100 << 20):
                raise ValueError(f"header length {n} does not fit the file's {size} bytes")
            header = json.loads(f.read(n).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        out = {}
        for k, v in header.items():
            if k == "__metadata__":
                continue
            if not (isinstance(v, dict) and isinstance(v.get("dtype"), str) and isinstance(v.get("shape"), list)
                    and all(isinstance(d, int) and d >= 0 for d in v["shape"])):
                raise ValueError(f"entry {k!r} is not a tensor description")
            out[k] = {"dtype": v["dtype"], "shape": tuple(v["shape"])}
        return out
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({oneline(e)})") from None


def load_checkpoint(dirpath: str | os.PathLike, map_location: str | torch.device = "cpu",
                    train_state: bool = True) -> Checkpoint:
    """Load the checkpoint `dirpath/latest.json` points at (or `dirpath` itself if it is an epoch folder).

    Tensors go to `map_location`. Raises `CheckpointError` naming the file on anything missing or corrupt.
    `train_state=False` reads only the weights and meta (evaluation needs no optimizer state, so a damaged
    train_state.pt does not block it).
    """
    load_state = train_state
    root = Path(dirpath)
    device = str(map_location)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist")
    if (root / _LATEST).is_file():
        folder = root / _read_latest(root)["path"]
        if not folder.is_dir():
            raise CheckpointError(f"{root / _LATEST} points at {folder.name}, which does not exist")
    elif (root / "meta.json").is_file():
        folder = root  # an epoch folder given directly
    else:
        raise CheckpointError(f"no {_LATEST} in {root}: no checkpoint was completed there")

    for required in ("model.safetensors", "meta.json") + (("train_state.pt",) if load_state else ()):
        if not (folder / required).is_file():
            raise CheckpointError(f"{folder / required} is missing")
    model_state = load_safetensors(folder / "model.safetensors", device)
    extra = {
        p.name[: -len(".safetensors")]: load_safetensors(p, device)
        for p in sorted(folder.glob("*.safetensors"))
        if p.name != "model.safetensors"
    }
    train_state = {}
    try:
        if load_state:
            train_state = torch.load(folder / "train_state.pt", map_location=device, weights_only=True)
    except Exception as e:  # truncated zip, or a pickle that is not plain data
        raise CheckpointError(
            f"{folder / 'train_state.pt'}: corrupt or not loadable with weights_only=True ({oneline(e)})"
        ) from None
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{folder / 'meta.json'}: corrupt ({oneline(e)})") from None
    return Checkpoint(model_state, extra, train_state, meta, str(folder))


def load_model_state(model: torch.nn.Module, state: Dict[str, Tensor], path: str) -> None:
    """`model.load_state_dict(state)`, or a one-line `CheckpointError` naming `path` when they do not match."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split()).replace("Error(s) in loading state_dict for ", "")
        detail = detail if len(detail) <= 400 else detail[:397] + "..."
        raise CheckpointError(f"checkpoint {path} does not match the model ({detail}); was it trained with another "
                              f"model or options? its config is in the run's config.yaml") from None
