"""The import graph of lipdub and its built-in plugins: no circles, no arrows that point up.

Every import is counted, also those inside functions and under ``TYPE_CHECKING``: an import
hidden in a function to make a cycle load is still a cycle in the design. The layers, lowest
first, are the ones docs/architecture.md draws; a module may import its own layer and any layer
below it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Lowest first. Names are modules or packages (a package covers its modules).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("lipdub", "lipdub.errors", "lipdub.events", "lipdub.cluster"),
    ("lipdub.media",),
    ("lipdub.speech",),
    ("lipdub.phonetics",),
    ("lipdub.analysis",),
    ("lipdub.stages",),
    ("lipdub.config",),
    ("lipdub.timeline",),
    ("lipdub.model",),
    ("lipdub.data",),
    ("lipdub.eval",),
    ("lipdub.train",),
    ("lipdub.exemplar",),
    ("lipdub.hookspecs",),
    ("lipdub.plugin_manager",),
    ("lipdub.render",),
    ("lipdub.testing",),
    ("lipdub.plugins",),
    ("lipdub.cli", "lipdub.demo", "lipdub.__main__"),
)


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module under lipdub/ (the built-in plugins included)."""
    found = {}
    for path in sorted((REPO / "lipdub").rglob("*.py")):
        parts = path.relative_to(REPO / "lipdub").with_suffix("").parts
        found[".".join(["lipdub", *(p for p in parts if p != "__init__")])] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every lipdub import in ``path``; ``from P import m`` of a
    module ``m`` counts as an import of ``P.m``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "lipdub":
                continue
            subs = [f"{node.module}.{a.name}" for a in node.names]
            named = [s for s in subs if s in known]
            yield from ((s, node.lineno) for s in named)
            if len(named) < len(subs):
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.startswith("lipdub"))


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the layer entry) of ``module``: the longest entry it is or lies under."""
    best = (-1, "")
    for rank, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best[1]):
                best = (rank, name)
    assert best[0] >= 0, f"{module} is in no layer of {__file__}: add it to LAYERS"
    return best


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {m: sorted(set(imports(p, known))) for m, p in known.items()}


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_imports_point_down_only() -> None:
    known = modules()
    upward = []
    for module, targets in graph().items():
        rank, own = layer_of(module)
        for target, line in targets:
            t_rank, t_entry = layer_of(target)
            if t_rank > rank:
                where = known[module].relative_to(REPO)
                upward.append(
                    f"{where}:{line}: {module} imports {target} ({t_entry} is above {own})"
                )
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    """Depth-first search over module imports; a back edge is a cycle, printed in full."""
    edges = {m: sorted({t for t, _ in targets}) for m, targets in graph().items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done.
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_package_is_installed() -> None:
    """A new folder under lipdub/ must be listed in pyproject.toml, or a non-editable install
    (a farm node's) would lack it while every editable checkout still works."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "lipdub").rglob("__init__.py")
    }
    assert folders <= listed, f"add to pyproject.toml packages: {sorted(folders - listed)}"
