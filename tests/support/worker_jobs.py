"""Tiny module-level jobs for the model worker tests (the worker imports them by reference)."""

from __future__ import annotations

import os


def where(*args, **kwargs) -> dict:
    """What the worker sees: its process id, CPU priority, arguments, a variable and torch's threads."""
    import torch

    return {"pid": os.getpid(), "nice": os.nice(0), "args": args, "kwargs": kwargs, "torch_threads":
            torch.get_num_threads(), "marker": os.environ.get("GANHUB_TEST_MARKER")}


def squares(n, progress=None):
    """0, 1, 4, ... (n items), calling ``progress(i, total=n)`` before each."""
    for i in range(n):
        if progress is not None:
            progress(i, total=n)
        yield i * i


def write_pid(path) -> None:
    """Write this process's id to ``path`` (shows where a warm-up ran)."""
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def write_pid_at_the_end(path, steps: int = 3):
    """A generator that writes this process's id to ``path`` after its last item (a streamed job's warm-up)."""
    for i in range(steps):
        yield i
    write_pid(path)
