"""Tasks: what each kind of problem brings to the one training loop (data loaders, loss, metrics,
evaluation). `classify` (images, events, sequences) and `lm` (language modelling)."""
from .base import Task
from .registry import TASKS, create_task, list_tasks, register_task

# Importing the tasks registers them.
from . import classify as _classify  # noqa: F401  (registers "classify")
from . import lm as _lm  # noqa: F401  (registers "lm")

__all__ = ["Task", "TASKS", "create_task", "list_tasks", "register_task"]
