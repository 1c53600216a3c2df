"""A small name -> builder registry shared by neurons, surrogates, attention, models and datasets."""
from __future__ import annotations

import fnmatch
import inspect
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

__all__ = ["Registry", "accepted_kwargs", "check_options"]


class Registry:
    """Maps names to builders; unknown names fail listing the valid ones.

    `kind` is the word used in error messages ("neuron", "attention", ...).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable] = {}
        self._meta: Dict[str, Dict[str, Any]] = {}

    def register(self, name: Optional[str] = None, **meta: Any) -> Callable:
        """Decorator: `@REG.register("lif")` or `@REG.register()` (uses the function/class name)."""

        def deco(fn: Callable) -> Callable:
            key = name or fn.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = fn
            self._meta[key] = dict(meta)
            return fn

        return deco

    def get(self, name: str) -> Callable:
        if not isinstance(name, str) or name not in self._items:
            valid = ", ".join(sorted(self._items))
            raise ValueError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid}")
        return self._items[name]

    def meta(self, name: str) -> Dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def names(self, pattern: str = "*") -> List[str]:
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items


def accepted_kwargs(cls: Callable) -> Set[str]:
    """Keyword arguments a class (or function) accepts, following `**kw` up through base classes."""
    if not isinstance(cls, type):
        params = inspect.signature(cls).parameters
        return {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    names: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    names.discard("self")
    return names


def check_options(what: str, cls: Callable, opts: Dict[str, Any], exclude: Iterable[str] = ()) -> None:
    """Raise ValueError naming every option `cls` does not accept, listing those it does."""
    valid = accepted_kwargs(cls) - set(exclude)
    bad = sorted(set(opts) - valid)
    if bad:
        raise ValueError(
            f"{what} got unknown option(s) {', '.join(map(repr, bad))}; valid options: {', '.join(sorted(valid)) or '(none)'}"
        )
