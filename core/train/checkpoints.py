"""What every trainer's run folder holds: a log, and safetensors checkpoints written atomically.

A checkpoint keeps the optimiser's per-parameter state as flat tensors (``<prefix>.<index>.<name>``,
e.g. ``opt_g.3.exp_avg``) beside the networks, so ``--resume`` restores exactly the same state
from a file that holds data only (safetensors, no pickle).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimiser's per-parameter state as flat, CPU tensors named ``<prefix>.<index>.<name>``."""
    return {f"{prefix}.{index}.{name}": torch.as_tensor(value).detach().cpu().clone().contiguous()
            for index, state in opt.state_dict()["state"].items() for name, value in state.items()}


def restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor]) -> None:
    """Load the state that :func:`optimizer_tensors` wrote under ``prefix`` into ``opt``."""
    state_dict = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    state_dict["state"] = state
    opt.load_state_dict(state_dict)


def save_atomic(tensors: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` through ``<path>.part``: a run stopped mid-write keeps its last checkpoint."""
    from safetensors.torch import save_file

    part = path.with_name(path.name + ".part")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(part), metadata=metadata)
    part.replace(path)


def metadata_of(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (empty when it has none)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return f.metadata() or {}


def run_log(out: Path) -> Callable[[str], None]:
    """A ``log(message)`` that prints and appends the line to ``out/log.txt``."""
    def log(message: str) -> None:
        print(message, flush=True)
        with open(out / "log.txt", "a") as f:
            f.write(message + "\n")

    return log
