"""How a suite's runs are grouped and summed up: the experiment a run belongs to, mean and spread over seeds,
the Pareto front of cost against quality, and whether a run matches an `expect` entry."""
from __future__ import annotations

import json
import math
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["NOT_EXPERIMENT", "config_key", "mean_std", "pareto_front", "where_matches"]

#: config keys that do not change the experiment (bookkeeping, where and how fast it runs)
NOT_EXPERIMENT = {"seed", "name", "out_dir", "log_every", "threads", "device", "compile", "cuda_graph", "max_minutes"}


def config_key(config: Dict[str, Any]) -> str:
    """The experiment a run belongs to: its config without the seed and bookkeeping keys."""
    c = {s: dict(v) for s, v in config.items() if isinstance(v, dict)}
    for k in NOT_EXPERIMENT:
        c.get("run", {}).pop(k, None)
    return json.dumps(c, sort_keys=True, default=str)


def mean_std(values: Sequence[float]) -> Tuple[Optional[float], Optional[float], int]:
    """(mean, sample standard deviation (n - 1), n) of the finite values; std is None below two."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return None, None, 0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else None), len(v)


def pareto_front(points: Sequence[Tuple[float, float]], higher_is_better: bool = True) -> List[int]:
    """Indices of the points (cost, quality) that no other point beats on both: no lower-or-equal cost
    with strictly better quality, nor strictly lower cost with equal-or-better quality. Sorted by cost."""
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for i, (c, q) in enumerate(points):
        dominated = any((c2 <= c and sign * q2 > sign * q) or (c2 < c and sign * q2 >= sign * q)
                        for j, (c2, q2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def where_matches(where: Dict[str, Any], values: Dict[str, Any]) -> bool:
    return all(values.get(k) == v for k, v in where.items())
