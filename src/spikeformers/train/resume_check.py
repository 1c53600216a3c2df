"""A resume continues the run its checkpoint holds: `config.yaml` may differ from the config stored with
the checkpoint only where the command line may change it too (every run.* key but the seed, name and
folder, and schedule.epochs). Anything else, edited by hand, would train a different experiment under
the old one's name, silently.

    config_differences({"optim": {"lr": 0.1}}, {"optim": {"lr": 0.2}})   # [("optim.lr", 0.1, 0.2)]
    refuse_edited_config("runs/r", saved)                              # ConfigError naming each key
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

from ..errors import CheckpointError, ConfigError
from .config import TrainConfig, config_from_dict, config_to_dict
from ..io import load_checkpoint

__all__ = ["config_differences", "may_change_on_resume", "refuse_edited_config", "ABSENT"]


class _Absent:
    def __repr__(self) -> str:
        return "absent"


#: stands for a key one side of `config_differences` lacks
ABSENT = _Absent()
_FIXED_RUN_KEYS = ("run.seed", "run.name", "run.out_dir")


def _flat(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def config_differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every leaf that differs, sorted by key; a nested mapping
    (model.options) is compared key by key, a missing key is `ABSENT`."""
    fa, fb = _flat(a), _flat(b)
    return [(k, fa.get(k, ABSENT), fb.get(k, ABSENT)) for k in sorted(set(fa) | set(fb))
            if fa.get(k, ABSENT) != fb.get(k, ABSENT)]


def may_change_on_resume(key: str) -> bool:
    return (key.startswith("run.") and key not in _FIXED_RUN_KEYS) or key == "schedule.epochs"


def _show(v: Any) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def refuse_edited_config(run_dir: str, saved: TrainConfig) -> None:
    """A one-line ConfigError when `saved` (the run's config.yaml) differs from its checkpoint's config in a
    key a resume may not change."""
    ck = load_checkpoint(os.path.join(run_dir, "checkpoint"), train_state=False)
    try:
        stored = config_from_dict(ck.meta["config"])
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{ck.path}/meta.json holds no readable config ({e})") from None
    bad = [(k, a, b) for k, a, b in config_differences(config_to_dict(saved), config_to_dict(stored))
           if not may_change_on_resume(k)]
    if bad:
        diffs = "; ".join(f"{k}: {_show(a)} in config.yaml, {_show(b)} in the checkpoint" for k, a, b in bad)
        raise ConfigError(f"{os.path.join(run_dir, 'config.yaml')} was edited after its checkpoint was written "
                          f"({diffs}); a resume may change only run.* keys (not seed, name, out_dir) and "
                          f"schedule.epochs: restore the file, or start a new run with the new config")
