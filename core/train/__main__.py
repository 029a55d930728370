"""``python -m core.train <name> [args...]``: dispatch to ``core.train.<name>.main(argv)``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    """Trainer modules in this package (every module with a ``main``)."""
    names = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not info.name.startswith("_"):
            names.append(info.name)
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
