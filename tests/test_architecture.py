"""The package's shape: imports only point down the layers, no import cycles, no private names borrowed from
another package, no Triton outside `kernels/`, and function-level imports only where a reason allows them.

Layers, lowest first (docs/design.md); a module may import its own layer or a lower one:
    0 errors, _registry, io, plotting, version      1 kernels
    2 neurons, data, encoding                      3 layers
    4 attention                                    5 models
    6 tasks                                        7 energy
    8 train                                        9 suite, speed, export, to_snn
   10 cli, the package's __init__, __main__
"""
from __future__ import annotations

import ast
import os
from typing import Dict, List, Set, Tuple

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
LAYERS = {
    "errors": 0, "_registry": 0, "io": 0, "plotting": 0, "version": 0,
    "kernels": 1,
    "neurons": 2, "data": 2, "encoding": 2,
    "layers": 3, "attention": 4, "models": 5, "tasks": 6, "energy": 7, "train": 8,
    "suite": 9, "speed": 9, "export": 9, "to_snn": 9,
    "cli": 10, "__init__": 10, "__main__": 10,
}
#: where a function-level import of the package may stand, and why
LAZY_ALLOWED = {
    "spikeformers.cli": "each command imports what it runs: `spikeformers --help` stays fast",
}


def modules(root: str = SRC) -> Dict[str, str]:
    """module name -> file path, for every module of the package under `root`."""
    out = {}
    for d, _, files in os.walk(os.path.join(root, "spikeformers")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return LAYERS["__init__"]
    return LAYERS[parts[1]]


def imports(name: str, path: str, mods: Dict[str, str]) -> List[Tuple[str, int, bool, List[str]]]:
    """(imported module, line, inside a function, imported names) for every import of the package."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    in_function: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function |= {id(sub) for sub in ast.walk(node) if sub is not node}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("spikeformers"):
                continue
            for alias in node.names:  # `from . import x` imports the module x
                sub = f"{target}.{alias.name}"
                mod = sub if sub in mods else target
                out.append((mod, node.lineno, id(node) in in_function, [alias.name]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("spikeformers"):
                    out.append((alias.name, node.lineno, id(node) in in_function, []))
    return out


def edges(mods: Dict[str, str]) -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for target, *_ in imports(m, p, mods):
            while target not in mods and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != m:
                graph[m].add(target)
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan). A package's `__init__` re-exporting its
    own modules is an edge like any other, so such a cycle is reported too."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    unknown = sorted(m for m in modules() if "." in m and m.split(".")[1] not in LAYERS)
    assert not unknown, f"modules of no layer (add them to LAYERS and docs/design.md): {unknown}"


def test_imports_only_point_down_the_layers():
    mods = modules()
    bad = []
    for m, p in mods.items():
        if m == "spikeformers":
            continue  # the facade re-exports the public API from every layer
        for target, line, _, _ in imports(m, p, mods):
            if target != "spikeformers" and layer_of(target) > layer_of(m):
                bad.append(f"{os.path.relpath(p, SRC)}:{line} imports {target} (layer {layer_of(target)} > "
                           f"{layer_of(m)})")
    assert not bad, "\n".join(bad)


def test_no_module_imports_the_package_facade():
    """`from spikeformers import x` (or `from .. import x`) inside the package hides which layer x lives in."""
    mods = modules()
    bad = [f"{os.path.relpath(p, SRC)}:{line}" for m, p in mods.items() if m not in ("spikeformers", "spikeformers.__main__")
           for target, line, _, names in imports(m, p, mods) if target == "spikeformers"]
    assert not bad, bad


def test_no_import_cycles():
    found = [c for c in cycles(edges(modules())) if c != ["spikeformers", "spikeformers.__main__"]]
    assert not found, found


def test_a_planted_cycle_is_found(tmp_path):
    pkg = tmp_path / "spikeformers"
    (pkg / "neurons").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "neurons" / "__init__.py").write_text("")
    (pkg / "neurons" / "a.py").write_text("from .b import f\n")
    (pkg / "neurons" / "b.py").write_text("def f():\n    pass\nfrom .a import f as g\n")
    assert ["spikeformers.neurons.a", "spikeformers.neurons.b"] in cycles(edges(modules(str(tmp_path))))


def test_function_level_imports_only_where_allowed():
    mods = modules()
    bad = [f"{os.path.relpath(p, SRC)}:{line} imports {target} inside a function"
           for m, p in mods.items() if not any(m == k or m.startswith(k + ".") for k in LAZY_ALLOWED)
           for target, line, lazy, _ in imports(m, p, mods) if lazy]
    assert not bad, "\n".join(bad)


def test_no_private_name_from_another_package():
    mods = modules()
    bad = []
    for m, p in mods.items():
        own = m.split(".")[:2]
        for target, line, _, names in imports(m, p, mods):
            other = target.split(".")[:2] != own
            private_module = any(part.startswith("_") and part not in ("__init__", "_registry")
                                 for part in target.split(".")[1:])
            if other and (private_module or any(n.startswith("_") and not n.startswith("__") for n in names)):
                bad.append(f"{os.path.relpath(p, SRC)}:{line} takes {names} from {target}")
    assert not bad, "\n".join(bad)


def test_triton_lives_only_in_kernels_and_kernels_import_no_model_code():
    mods = modules()
    for m, p in mods.items():
        text = open(p, encoding="utf-8").read()
        tree = ast.parse(text)
        uses_triton = any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(
            (getattr(n, "module", None) or a.name).split(".")[0] == "triton" for a in n.names) for n in ast.walk(tree))
        if uses_triton:
            assert m.startswith("spikeformers.kernels"), f"{m} imports triton outside kernels/"
        if m.startswith("spikeformers.kernels"):
            for target, line, _, _ in imports(m, p, mods):
                assert target.startswith("spikeformers.kernels"), f"{m}:{line} imports {target}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_declares_all(name):
    tree = ast.parse(open(modules()[name], encoding="utf-8").read())
    declared = any(isinstance(n, (ast.Assign, ast.AnnAssign)) and any(
        getattr(t, "id", None) == "__all__" for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
        for n in tree.body)
    assert declared or name.endswith("__main__"), f"{name} has no __all__"
