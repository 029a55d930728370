"""No module of ``core/`` imports itself through others, counting imports inside functions too:
a cycle hidden in a function still ties the two modules into one, and breaks when it moves."""

from __future__ import annotations

import ast
from pathlib import Path

from core.weights import REPO_ROOT


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, package: str = "core") -> dict[str, set[str]]:
    """``{module: modules of `package` it imports}`` from the source of ``root/package/**/*.py``.

    ``from a.b import c`` counts as an import of ``a.b.c`` when that is a module, else of ``a.b``."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package, one level up per extra dot
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                               for alias in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_core_has_no_import_cycle():
    graph = import_graph(REPO_ROOT)
    assert "core.weights.loading" in graph and "core.cache" in graph["core.weights.loading"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_finds_a_cycle_hidden_inside_a_function(tmp_path):
    package = tmp_path / "core"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .leaf import VALUE\n")
    (package / "sub" / "leaf.py").write_text("VALUE = 1\n")
    (package / "a.py").write_text("from core.sub import leaf\n")
    (package / "b.py").write_text("def later():\n    from core import a\n")
    (package / "c.py").write_text("import core.b\n")
    graph = import_graph(tmp_path)
    assert graph["core.sub"] == {"core.sub.leaf"} and graph["core.a"] == {"core.sub.leaf"}
    assert find_cycle(graph) is None
    (package / "sub" / "leaf.py").write_text("def later():\n    import core.c\nVALUE = 1\n")
    assert find_cycle(import_graph(tmp_path)) == ["core.a", "core.sub.leaf", "core.c", "core.b", "core.a"]
