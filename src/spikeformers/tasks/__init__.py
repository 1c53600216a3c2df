"""Tasks: what each kind of problem brings to the one training loop (data loaders, loss, metrics,
evaluation): `classify` (images, events, sequences), `lm` (language modelling), `segment` and `detect`
(scenes)."""
from .base import Task
from .distill import DistillationLoss, kl_sigmoid, kl_softmax
from .registry import TASKS, create_task, list_tasks, register_task

# Importing the tasks registers them.
from . import classify as _classify  # noqa: F401  (registers "classify")
from . import lm as _lm  # noqa: F401  (registers "lm")
from . import segment as _segment  # noqa: F401  (registers "segment")
from . import detect as _detect  # noqa: F401  (registers "detect")

__all__ = ["Task", "DistillationLoss", "kl_softmax", "kl_sigmoid", "TASKS", "create_task", "list_tasks", "register_task"]
