"""Dependencies point one way: apps -> UI kit / pipelines / weights -> models; deploy -> apps and core.

Every import of every module counts, also the ones inside functions (which hide a dependency from a
reader of the module's head). The rules:

- ``core`` never imports ``apps`` or ``deploy``;
- serving code (``apps`` and all of ``core`` except ``core/train``) never imports ``core.train`` or ``deploy``;
- an architecture in ``core/models`` imports only torch, numpy, the standard library and ``core.models``
  (numpy for MTCNN's greedy box suppression, a loop of small array operations that is 3-5x slower in torch).

``tests/core/test_import_graph.py`` checks that ``core`` has no import cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything ``path`` imports, anywhere in it; ``from a import b`` gives ``a.b``."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names]
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def modules_under(root: Path, *folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)


def forbidden_imports(root: Path, folders: tuple[str, ...], forbidden: tuple[str, ...],
                      exempt: tuple[str, ...] = ()) -> list[str]:
    """``file:line imports name`` for each import of a ``forbidden`` package by a module under ``folders``."""
    found = []
    for path in modules_under(root, *folders):
        if any(within(module_name(path, root), package) for package in exempt):
            continue
        for line, name in imported_names(path, root):
            if any(within(name, package) for package in forbidden):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return found


def imports_outside(root: Path, folder: str, allowed: tuple[str, ...]) -> list[str]:
    """``file:line imports name`` for each import, by a module under ``folder``, of anything but ``allowed``
    packages and the standard library."""
    found = []
    for path in modules_under(root, folder):
        for line, name in imported_names(path, root):
            if name.split(".")[0] not in STDLIB and not any(within(name, package) for package in allowed):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return found


RULES = {
    "core never imports apps or deploy": lambda root: forbidden_imports(root, ("core",), ("apps", "deploy")),
    "serving code never imports training or deployment code": lambda root: forbidden_imports(
        root, ("apps", "core"), ("core.train", "deploy"), exempt=("core.train",)),
    "models import only torch, numpy, the standard library and core.models": lambda root: imports_outside(
        root, "core/models", ("torch", "numpy", "core.models")),
}


@pytest.mark.parametrize("rule", RULES)
def test_dependencies_point_one_way(rule):
    assert RULES[rule](REPO_ROOT) == []


def test_the_rules_see_imports_anywhere_in_a_module(tmp_path):
    """Each rule reports a violation hidden inside a function, by relative import or by ``from x import y``."""
    files = {
        "core/__init__.py": "",
        "core/pipelines/__init__.py": "",
        "core/pipelines/task.py": "def run():\n    from apps.season import app\n",
        "core/ui.py": "import os\n\n\ndef train():\n    from core import train\n",
        "core/train/__init__.py": "from core.train import trainer\n",
        "core/train/trainer.py": "import deploy.spaces\n",
        "core/models/__init__.py": "from . import layers\n",
        "core/models/layers.py": "import torch\nfrom ..weights import load_model\n",
        "apps/hub.py": "def main():\n    import deploy\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert RULES["core never imports apps or deploy"](tmp_path) == [
        "core/pipelines/task.py:2 imports apps.season.app", "core/train/trainer.py:1 imports deploy.spaces"]
    assert RULES["serving code never imports training or deployment code"](tmp_path) == [
        "apps/hub.py:2 imports deploy", "core/ui.py:5 imports core.train"]
    assert RULES["models import only torch, numpy, the standard library and core.models"](tmp_path) == [
        "core/models/layers.py:2 imports core.weights.load_model"]
