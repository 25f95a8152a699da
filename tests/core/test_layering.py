"""The package's architecture, checked: shared layers at the bottom, methods above them, `run` and
the CLI on top. No module imports from a layer above its own, and no two folders import each other
(directly or round a longer loop). Imports inside functions count, and so do the "module:attribute"
references core/lazy.py resolves: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "bertcompress"

# bottom to top; a folder may import its own layer's modules and any layer below
LAYERS = ("core", "data", "models", "train", "export", "evaluation", "methods", "pipeline", "")


def folder_of(module: str) -> str:
    """'bertcompress.methods.distill.verb' -> 'methods.distill'; 'bertcompress.data.x' -> 'data';
    top-level modules (cli, commands, __init__) -> ''."""
    parts = module.split(".")[1:]
    if len(parts) >= 2 and parts[0] == "methods":
        return "methods." + parts[1]
    if len(parts) >= 2 and parts[0] in LAYERS:
        return parts[0]
    if len(parts) == 1 and parts[0] in LAYERS:  # a layer's own package (its __init__)
        return parts[0]
    return ""


def layer_of(folder: str) -> int:
    return LAYERS.index(folder.split(".")[0])


def module_name(path: Path) -> tuple[str, bool]:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


LAZY_REFERENCE = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*):[A-Za-z_]\w*")


def is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every bertcompress module `path` imports (relative imports resolved), or names in a lazy
    "module:attribute" reference."""
    name, is_package = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = LAZY_REFERENCE.fullmatch(node.value)
            if match and is_module(f"bertcompress.{match[1]}"):
                found.add(f"bertcompress.{match[1]}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "bertcompress":  # `from bertcompress import x`: x may be a module
                found |= {f"bertcompress.{a.name}" for a in node.names}
            elif target.startswith("bertcompress."):
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bertcompress")}
    return found


def folder_edges() -> dict[tuple[str, str], list[str]]:
    """(importing folder, imported folder) -> the imports that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name, _ = module_name(path)
        for target in imported_modules(path):
            a, b = folder_of(name), folder_of(target)
            if a != b:
                edges.setdefault((a, b), []).append(f"{name} -> {target}")
    return edges


def test_every_folder_belongs_to_a_layer():
    for path in PACKAGE.iterdir():
        if path.is_dir() and not path.name.startswith(("_", ".")):
            assert path.name in LAYERS, f"{path.name}/ is in no layer: add it to LAYERS (bottom to top)"


def test_no_import_runs_up_a_layer():
    upward = [why for (a, b), whys in folder_edges().items() if layer_of(b or "") > layer_of(a or "")
              for why in whys]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_core_imports_nothing_else_of_ours():
    leaks = [why for (a, b), whys in folder_edges().items() if a == "core" for why in whys]
    assert not leaks, "\n".join(leaks)


def test_no_two_folders_import_each_other():
    edges = folder_edges()
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    # a depth-first search for a cycle, reporting its imports
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            hops = [edges[(x, y)][0] for x, y in zip(cycle, cycle[1:])]
            pytest.fail("folders import each other: " + " -> ".join(c or "<top>" for c in cycle) + "\n" +
                        "\n".join(hops))


def test_the_checker_sees_a_cycle(tmp_path):
    """The checker itself: relative imports resolve, and a lazy import counts."""
    src = tmp_path / "bertcompress" / "data"
    src.mkdir(parents=True)
    (tmp_path / "bertcompress" / "evaluation").mkdir()
    (tmp_path / "bertcompress" / "evaluation" / "metrics.py").write_text("")
    (src / "x.py").write_text("def f():\n    from ..methods.distill import verb\n"
                              "SCORER = 'evaluation.metrics:scores'\nTEXT = 'not:a reference'\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "bertcompress"
    try:
        assert imported_modules(src / "x.py") == {"bertcompress.methods.distill", "bertcompress.evaluation.metrics"}
        assert folder_of("bertcompress.methods.distill.verb") == "methods.distill"
    finally:
        PACKAGE = saved
