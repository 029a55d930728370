"""Where a handler's job runs: the lanes (``core.lanes``) by its cost, and a GPU window on ZeroGPU.

gradio's queue (which shows each waiting user their position and an estimated wait) hands an
app's jobs to the lanes, which run them by cost: several at once for events that may be light, so
a quick job never waits in gradio's queue behind a long one of the same app; one at a time per
device for handlers that are always heavy. Decorate a handler as
``@ui.user_errors`` / ``@ui.in_lane(cost)`` (or ``@ui.heavy``) / ``@ui.gpu(...)``, in that order,
and register it with ``**ui.JOB_EVENTS`` (or ``**ui.HEAVY_EVENTS``).

Inside a heavy-lane job, the handler runs its pipeline with ``ui.offload(pipeline.run, ...)`` (or
``ui.offload_stream(pipeline.stream, ...)``): on a CPU that is the model worker process
(``core.model_worker``), so the server's own threads and the light lane keep the CPU and the GIL.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import gradio as gr

_log = logging.getLogger(__name__)

# gradio event settings of an app's jobs (see the module docstring).
JOB_EVENTS = dict(concurrency_id="jobs", concurrency_limit=int(os.environ.get("GANHUB_APP_WORKERS", "4")))
HEAVY_EVENTS = dict(concurrency_id="heavy", concurrency_limit=int(os.environ.get("GANHUB_DEVICE_CONCURRENCY", "1")))
HEAVY_PRIOR_SECONDS = 30.0  # the wait announced for a heavy job of a kind not measured here yet
# The longest GPU window a handler asks ZeroGPU for; longer requests are refused by ZeroGPU's scheduler
# and eat into visitors' daily quota, so long jobs are bounded by their own settings instead.
GPU_SECONDS_MAX = 180


# The device type of the heavy lane the current job holds a slot of (None outside a heavy lane).
_HEAVY_LANE_DEVICE: contextvars.ContextVar[str | None] = contextvars.ContextVar("ganhub_heavy_lane", default=None)
MODEL_WORKER_VARIABLE = "GANHUB_MODEL_WORKER"


def _progress_of(args, kwargs) -> gr.Progress | None:
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Progress)), None)


@contextlib.contextmanager
def _lane_slot(cost: Callable[..., tuple[str, float]], args, kwargs):
    """Hold a place in the lane ``cost(*args, **kwargs)`` calls for while the job runs, and record its time."""
    from core.lanes import LaneFullError, lane, lane_for
    from core.limits import JOB_CLOCK

    kind, expected = cost(*args, **kwargs)
    lane_kind = lane_for(expected)
    chosen = lane(lane_kind)
    progress = _progress_of(args, kwargs)

    def on_wait(position: int, seconds: float) -> None:
        if progress is not None:
            progress(0, desc=f"Waiting for the {chosen.name}: queue position {position}, about "
                             f"{max(1, round(seconds))} s")

    try:
        job = f"job:{kind}"  # seconds per job (apps may measure their own units under ``kind``)
        with chosen.enter(JOB_CLOCK.estimate(job, 1, prior=expected), on_wait):
            started = time.monotonic()
            outer = _HEAVY_LANE_DEVICE.get()
            if lane_kind == "heavy":
                from core.device import get_device

                _HEAVY_LANE_DEVICE.set(get_device().type)
            try:
                yield
            finally:
                _HEAVY_LANE_DEVICE.set(outer)  # set, not reset: a generator's steps may run in other contexts
            JOB_CLOCK.record(job, 1, time.monotonic() - started)
    except LaneFullError as e:
        raise gr.Error(str(e), title="Server busy", print_exception=False) from None


def in_lane(cost: Callable[..., tuple[str, float]]) -> Callable[[Callable], Callable]:
    """Run a handler in the lane its cost calls for (``core.lanes``): ``cost(*args, **kwargs)`` gives
    the job's kind and its expected seconds on this hardware (from the benchmarks); under a second
    is the light lane, anything else the device's heavy lane. While the job waits, a ``gr.Progress``
    argument of the handler shows its position and the estimated wait (from the durations measured
    here, ``core.limits.JOB_CLOCK``). Works for generator (streaming) handlers."""

    def decorate(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator_wrapper(*args, **kwargs):
                with _lane_slot(cost, args, kwargs):
                    yield from fn(*args, **kwargs)

            return generator_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _lane_slot(cost, args, kwargs):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def heavy(fn: Callable) -> Callable:
    """Run a handler that always does heavy model work in the device's heavy lane (one job per device
    across the hub's apps; see :func:`in_lane`)."""
    return in_lane(lambda *args, **kwargs: (fn.__qualname__, HEAVY_PRIOR_SECONDS))(fn)


def light(fn: Callable) -> Callable:
    """Run a handler that always takes well under a second (no model, a tiny one) in the light lane."""
    return in_lane(lambda *args, **kwargs: (fn.__qualname__, 0.0))(fn)


def uses_model_worker(device_type: str) -> bool:
    """Whether heavy jobs on ``device_type`` run in the model worker process: by default on a CPU only
    (an accelerator does the work itself, the server's CPU stays free); ``GANHUB_MODEL_WORKER=process``
    or ``inline`` decides for every device. Never on ZeroGPU, whose ``spaces.GPU`` attaches the GPU to
    the handler's own process, nor outside POSIX."""
    setting = os.environ.get(MODEL_WORKER_VARIABLE, "").strip().lower() or "auto"
    if setting not in ("auto", "process", "inline"):
        raise ValueError(f"{MODEL_WORKER_VARIABLE} must be process, inline or auto (got {setting!r}).")
    if on_zero_gpu() or os.name != "posix":
        return False
    return device_type == "cpu" if setting == "auto" else setting == "process"


def _worker_device() -> str | None:
    """The device whose model worker this job's model work goes to, or None to run it here."""
    device_type = _HEAVY_LANE_DEVICE.get()
    return device_type if device_type is not None and uses_model_worker(device_type) else None


def offload(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` where the job's model work belongs: in the model worker process when the
    job holds a heavy-lane slot and :func:`uses_model_worker` says so, else here. ``fn`` must be a
    module-level function; arguments and result must pickle (``threading.Event`` and function arguments
    stay here, see ``core.model_worker``); a ``model=`` object is never sent (the worker loads its own).
    Call it from the handler's body, inside its lane."""
    from core import model_worker

    device_type = _worker_device()
    if device_type is None:
        return fn(*args, **kwargs)
    return model_worker.worker(device_type).call(fn, *args, **kwargs)


def offload_stream(fn: Callable, *args, **kwargs) -> Iterator:
    """:func:`offload` for a generator function (``pipeline.stream``): its items, as they come."""
    from core import model_worker

    device_type = _worker_device()
    if device_type is None:
        return fn(*args, **kwargs)
    return model_worker.worker(device_type).stream(fn, *args, **kwargs)


def warm_up(fn: Callable, *args, **kwargs) -> threading.Thread:
    """Run ``fn(*args, **kwargs)`` (imports, a model load) in a background thread, in the process where
    heavy jobs' model work runs: the model worker when :func:`uses_model_worker` says so for this
    device, else here. A failure is logged, never raised: the first job then pays for it instead."""
    from core.device import get_device

    def work():
        try:
            device_type = get_device().type
            if uses_model_worker(device_type):
                from core import model_worker

                model_worker.worker(device_type).call(fn, *args, **kwargs)
            else:
                fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001  (a warm-up is an optimisation)
            _log.warning("warming up %s failed: %s", getattr(fn, "__qualname__", fn), e)

    thread = threading.Thread(target=work, name=f"warm-up-{getattr(fn, '__name__', 'fn')}", daemon=True)
    thread.start()
    return thread


def on_zero_gpu() -> bool:
    """Whether this process serves a Hugging Face ZeroGPU Space (the Space sets ``SPACES_ZERO_GPU``)."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")


def gpu(duration: int | Callable[..., float] = 60) -> Callable[[Callable], Callable]:
    """Decorator for handlers that run a model: ``spaces.GPU`` on Hugging Face ZeroGPU, where the
    GPU is attached only while the handler runs; the handler unchanged everywhere else (the
    ``spaces`` package returns it as it is outside ZeroGPU, and is not needed at all).

    ``duration`` is the GPU window in seconds, or a function of the handler's arguments that
    estimates it (e.g. steps x samples); its answer is clamped to 5..``GPU_SECONDS_MAX``, and a
    request whose arguments it cannot read gets 60 s (the handler then refuses them itself).
    Put this decorator below :func:`in_lane` (or `heavy`), so that waiting in a lane happens outside
    the GPU window and spends none of the visitor's GPU quota."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    if callable(duration):
        estimate = duration

        def duration(*args, **kwargs):
            try:
                seconds = float(estimate(*args, **kwargs))
            except (TypeError, ValueError, KeyError):
                seconds = 60.0
            return int(min(max(seconds, 5.0), GPU_SECONDS_MAX))

    return spaces.GPU(duration=duration)


def preload_on_zero_gpu(model_ids: Iterable[str], load: Callable[[str], object] | None = None) -> list[str]:
    """On ZeroGPU, put the models whose weights are here on the GPU at start-up; elsewhere do nothing.

    ZeroGPU keeps a model on the GPU across requests only if it was moved there outside any GPU
    window (it packs those tensors at start-up and maps them into each window); a model moved
    inside a handler would be loaded again on every request. Returns the ids it loaded."""
    if not on_zero_gpu():
        return []
    import torch

    from core.weights import availability, load_model

    load = load or (lambda model_id: load_model(model_id, device=torch.device("cuda")))
    loaded = []
    for model_id in model_ids:
        if availability(model_id)[0]:
            load(model_id)
            loaded.append(model_id)
    return loaded
