"""Where a handler's job runs: the lanes (``core.lanes``) by its cost, and a GPU window on ZeroGPU.

gradio's queue (which shows each waiting user their position and an estimated wait) hands an
app's jobs to the lanes, which run them by cost: several at once for events that may be light, so
a quick job never waits in gradio's queue behind a long one of the same app; one at a time per
device for handlers that are always heavy. Decorate a handler as
``@ui.user_errors`` / ``@ui.in_lane(cost)`` (or ``@ui.heavy``) / ``@ui.gpu(...)``, in that order,
and register it with ``**ui.JOB_EVENTS`` (or ``**ui.HEAVY_EVENTS``).

Inside a job, the handler runs its pipeline with ``ui.offload(pipeline.run, ...)`` (or
``ui.offload_stream(pipeline.stream, ...)``): on a CPU that is the lane's model worker process
(``core.model_worker``; the heavy lane's at a lower priority), so the server's own threads keep the
GIL for serving requests and a quick job never waits for the CPU behind a long one.
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


# (device type, lane) of the lane slot the current job holds (None outside a lane).
_JOB_LANE: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("ganhub_job_lane", default=None)
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

    entered = time.monotonic()
    try:
        job = f"job:{kind}"  # seconds per job (apps may measure their own units under ``kind``)
        with chosen.enter(JOB_CLOCK.estimate(job, 1, prior=expected), on_wait):
            from core.device import get_device

            started = time.monotonic()
            outer = _JOB_LANE.get()
            _JOB_LANE.set((get_device().type, lane_kind))
            try:
                yield
            finally:
                _JOB_LANE.set(outer)  # set, not reset: a generator's steps may run in other contexts
            ran = time.monotonic() - started
            JOB_CLOCK.record(job, 1, ran)
            _log.debug("%s lane, %s: waited %.3f s, ran %.3f s", lane_kind, kind, started - entered, ran)
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
    """Whether jobs' model work on ``device_type`` runs in the lanes' model worker processes: by default on a CPU only
    (an accelerator does the work itself, the server's CPU stays free); ``GANHUB_MODEL_WORKER=process``
    or ``inline`` decides for every device. Never on ZeroGPU, whose ``spaces.GPU`` attaches the GPU to
    the handler's own process, nor outside POSIX."""
    setting = os.environ.get(MODEL_WORKER_VARIABLE, "").strip().lower() or "auto"
    if setting not in ("auto", "process", "inline"):
        raise ValueError(f"{MODEL_WORKER_VARIABLE} must be process, inline or auto (got {setting!r}).")
    if on_zero_gpu() or os.name != "posix":
        return False
    return device_type == "cpu" if setting == "auto" else setting == "process"


def _job_worker() -> tuple[str, str] | None:
    """(device type, lane) of the model worker this job's model work goes to, or None to run it here."""
    job_lane = _JOB_LANE.get()
    return job_lane if job_lane is not None and uses_model_worker(job_lane[0]) else None


def offload(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` where the job's model work belongs: in its lane's model worker process
    when the job holds a lane slot and :func:`uses_model_worker` says so, else here. ``fn`` must be a
    module-level function; arguments and result must pickle (``threading.Event`` and function arguments
    stay here, see ``core.model_worker``); a ``model=`` object is never sent (the worker loads its own).
    Call it from the handler's body, inside its lane."""
    from core import model_worker

    where = _job_worker()
    if where is None:
        return fn(*args, **kwargs)
    return model_worker.worker(*where).call(fn, *args, **kwargs)


def offload_stream(fn: Callable, *args, **kwargs) -> Iterator:
    """:func:`offload` for a generator function (``pipeline.stream``): its items, as they come."""
    from core import model_worker

    where = _job_worker()
    if where is None:
        return fn(*args, **kwargs)
    return model_worker.worker(*where).stream(fn, *args, **kwargs)


_warm_ups: list[tuple[Callable, tuple, dict, str]] = []
_started = threading.Event()


def warm_up(fn: Callable, *args, lane: str = "heavy", **kwargs) -> None:
    """Run the module-level function ``fn(*args, **kwargs)`` (imports, a model load, a tiny job; its result
    is dropped, a generator is run to its end)
    when the server starts (:func:`start_warm_ups`;
    at once if it has started), in a background thread, in the process where the model work of
    ``lane``'s jobs runs: that lane's model worker when :func:`uses_model_worker` says so for this
    device, else here. Apps call it at import: importing an app stays light. A failure is logged,
    never raised: the first job then pays for it instead."""
    _warm_ups.append((fn, args, kwargs, lane))
    if _started.is_set():
        _run_warm_up(fn, args, kwargs, lane)


def _run_warm_up(fn: Callable, args: tuple, kwargs: dict, lane: str) -> threading.Thread:
    from core.device import get_device

    def work():
        from core.model_worker_process import for_effect

        try:
            device_type = get_device().type
            target = f"{fn.__module__}:{fn.__qualname__}"
            if uses_model_worker(device_type):
                from core import model_worker

                model_worker.worker(device_type, lane).call(for_effect, target, *args, **kwargs)
            else:
                for_effect(target, *args, **kwargs)
        except Exception as e:  # noqa: BLE001  (a warm-up is an optimisation)
            _log.warning("warming up %s failed: %s", getattr(fn, "__qualname__", fn), e)

    thread = threading.Thread(target=work, name=f"warm-up-{getattr(fn, '__name__', 'fn')}", daemon=True)
    thread.start()
    return thread


def start_warm_ups() -> list[threading.Thread]:
    """Start the model workers of both lanes (when this device uses them) and every registered
    :func:`warm_up`, in background threads; the server calls it as it starts serving, so its first
    requests find the workers started and the quick jobs' models loaded. Returns the threads."""
    _started.set()
    tasks = [(os.getpid, (), {}, lane) for lane in ("light", "heavy")]  # a no-op: starts the worker
    return [_run_warm_up(*task) for task in [*tasks, *_warm_ups]]


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
