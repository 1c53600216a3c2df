"""Task registry: `@register_task("name")` on a `Task` subclass; `create_task(name, cfg, **options)`."""
from __future__ import annotations

from typing import Any, List

from .._registry import Registry, check_options
from ..errors import ConfigError

__all__ = ["TASKS", "register_task", "create_task", "list_tasks"]

TASKS = Registry("task")


def register_task(name: str):
    def deco(cls):
        cls.name = name
        return TASKS.register(name)(cls)

    return deco


def create_task(name: str, cfg: Any, **options: Any):
    """The task `name` for the run config `cfg`; unknown names or options raise ConfigError."""
    try:
        cls = TASKS.get(name)
        check_options(f"task {name!r}", cls, options, exclude=("cfg",))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return cls(cfg, **options)


def list_tasks(pattern: str = "*") -> List[str]:
    return TASKS.names(pattern)
