"""What a user reads when a job fails: bad input, missing weights, GPU out-of-memory and a model
worker that stopped (``core.model_worker``) become ``gr.Error`` (a message in the page, an error with
that message for API and MCP clients, no traceback in the log); every other exception is a bug and
is raised as it is."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable

import gradio as gr

from core.model_worker import WorkerStoppedError
from core.weights import WeightsUnavailableError


def out_of_memory_message() -> str:
    """What the user reads when the GPU ran out of memory, after its allocator's cache is freed."""
    import torch

    free = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()
        free = torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    now = f" ({free / 2**30:.1f} GiB free now)" if free is not None else ""
    return (f"The GPU ran out of memory for this job{now}. Try a smaller image, fewer samples, restarts or "
            "steps, or try again in a moment: other jobs may be using the GPU.")


def _is_out_of_memory(e: BaseException) -> bool:
    import torch  # loaded already whenever a model ran

    return isinstance(e, torch.OutOfMemoryError) or "MPS backend out of memory" in str(e)


def as_user_error(e: Exception) -> gr.Error | None:
    """The ``gr.Error`` that tells the user what went wrong, or None when ``e`` is not theirs to fix."""
    if isinstance(e, gr.Error):
        return None
    if isinstance(e, WeightsUnavailableError):
        return gr.Error(str(e), title="Weights not available", print_exception=False)
    if isinstance(e, ValueError):
        return gr.Error(str(e), title="Invalid input", print_exception=False)
    if isinstance(e, WorkerStoppedError):
        return gr.Error(str(e), title="Model worker stopped", print_exception=False)
    if isinstance(e, RuntimeError) and _is_out_of_memory(e):
        return gr.Error(out_of_memory_message(), title="Out of GPU memory", print_exception=False)
    return None


@contextlib.contextmanager
def _shown_to_user():
    try:
        yield
    except (ValueError, RuntimeError) as e:
        error = as_user_error(e)
        if error is None:
            raise
        raise error from e


def user_errors(fn: Callable) -> Callable:
    """Show ``ValueError``, missing weights and GPU out-of-memory to the user as ``gr.Error`` (no
    traceback in the log); anything else is raised as it is. Works for generator (streaming) handlers."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            with _shown_to_user():
                yield from fn(*args, **kwargs)

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _shown_to_user():
            return fn(*args, **kwargs)

    return wrapper
