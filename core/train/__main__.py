"""``python -m core.train <name> [args...]``: dispatch to ``core.train.<name>.main(argv)``."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path


def available() -> list[str]:
    """Trainer modules in this package: every module that defines a top-level ``main`` (read, not imported;
    the helpers the trainers share have none)."""
    names = []
    for path in Path(__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        if not path.name.startswith("_") and any(
                isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            names.append(path.stem)
    return sorted(names)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m core.train <name> [args...]  (name: " + ", ".join(names) + ")")
        print("Run `python -m core.train <name> --help` for a trainer's own options.")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"Unknown trainer {name!r}. Available: {', '.join(names)}.", file=sys.stderr)
        return 2
    module = importlib.import_module(f"core.train.{name}")
    if not hasattr(module, "main"):
        print(f"core.train.{name} has no main(argv).", file=sys.stderr)
        return 2
    result = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
