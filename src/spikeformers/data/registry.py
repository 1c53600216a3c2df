"""Dataset registry: one decorator on a builder function adds a dataset.

    @DATASETS.register("my_data")
    def my_data(root: Optional[str] = None, *, some_option: int = 3) -> ArrayDataset: ...

`create_dataset("my_data", root=..., some_option=4)` then builds it; unknown names and unknown
options raise `ConfigError` listing the valid ones. A builder that reads no files simply has no
`root` parameter, so a `data.root` given for it is an error rather than silently ignored.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._registry import Registry, check_options
from ..errors import ConfigError

__all__ = ["DATASETS", "create_dataset", "list_datasets", "dataset_info"]

DATASETS = Registry("dataset")


def create_dataset(name: str, root: Optional[str] = None, **opts: Any):
    """Build the registered dataset `name` (tensors on the CPU; move them with `.to(device)`)."""
    try:
        builder = DATASETS.get(name)
        if root is not None:
            opts = {"root": root, **opts}
        check_options(f"dataset {name!r}", builder, opts)
    except ValueError as e:  # user input: report as a one-line config error
        raise ConfigError(str(e)) from None
    ds = builder(**opts)
    if not hasattr(ds, "model_kwargs") or not hasattr(ds, "to"):
        raise TypeError(f"dataset builder {name!r} returned {type(ds).__name__}, not a dataset (ArrayDataset, "
                        f"TokenDataset, ...)")
    return ds


def list_datasets(pattern: str = "*") -> List[str]:
    """Registered dataset names matching a glob `pattern`, sorted."""
    return DATASETS.names(pattern)


def dataset_info(name: str) -> Dict[str, Any]:
    """What a dataset declares when registered: layout, classes and default shape (img_size/in_chans,
    seq_len/in_features, frames), where known before loading."""
    try:
        return dict(DATASETS.meta(name))
    except ValueError as e:
        raise ConfigError(str(e)) from None
