"""The package's layering: each part imports only the parts below it, and no module cycles.

Read from the source (every ``import`` statement, function-local ones included), so a new
import that climbs a layer fails here before it becomes a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sdsen"

#: Each part of the package and the parts it may import (besides itself). Read bottom-up:
#: persist, metrics and gconv stand alone; the command line sits on top of everything.
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "persist": set(),
    "metrics": set(),
    "gconv": set(),
    "equivariance": {"gconv"},
    "rain": set(),
    "data": {"_version", "persist", "gconv", "rain"},
    "models": {"gconv", "data"},
    "pretrained": {"persist", "models"},
    "train": {"_version", "persist", "metrics", "gconv", "rain", "data", "models", "pretrained"},
    "evaluate": {"persist", "metrics", "data", "models"},
    "gallery": {"persist", "evaluate"},
    "analysis": set(),
    "viz": {"metrics", "gconv", "equivariance", "rain", "data", "models", "train", "evaluate",
            "analysis"},
    "__init__": {"_version", "pretrained"},
    "__main__": {"cli"},
}
ALLOWED["cli"] = set(ALLOWED) - {"cli", "__init__", "__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the ``sdsen`` modules that ``path`` imports (any depth)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "sdsen"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sdsen":
                continue
            # `from sdsen.x import y` imports the submodule sdsen.x.y when there is one
            subs = {f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")}
            found |= subs
            if len(subs) < len(node.names):  # names defined in target itself
                found.add(target)
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _part(module: str) -> str:
    """``sdsen.train.loop`` -> ``train``; ``sdsen`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_part_imports_only_the_parts_below_it() -> None:
    assert set(ALLOWED) >= {_part(m) for m in _graph()}, "a new part: give it a layer in ALLOWED"
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if _part(target) != _part(module) and _part(target) not in ALLOWED[_part(module)]
    )
    assert not wrong, "imports that climb the layering:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    modules = set(graph)
    edges = {m: {t for t in graph[m] if t in modules and t != m} for m in modules}
    # a package's __init__ importing its own submodules is not a cycle of roles
    for m in modules:
        edges[m] = {t for t in edges[m] if not t.startswith(m + ".")}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_relative_and_function_local_imports(tmp_path: Path) -> None:
    found = _imports(PACKAGE / "train" / "validation.py")
    assert "sdsen.metrics" in found and "sdsen.train.devices" in found
    assert _part("sdsen.train.loop") == "train" and _part("sdsen") == "__init__"
    assert "sdsen.pretrained" in _imports(PACKAGE / "cli" / "train.py")  # a local import
