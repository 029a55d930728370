"""Heavy model work in a separate, lower-priority process, so the serving process stays responsive.

A server that runs PULSE searches or tiled CycleGAN in its own process shares the CPU and the GIL
between that work and everything else it does (gradio's request handling, the quick jobs of the
light lane). :func:`call` and :func:`stream` run a module-level function in the device's model
worker instead: one long-lived child process per device type, started on first use, at a lower
CPU priority (``os.nice``, ``GANHUB_MODEL_WORKER_NICE``, default 10) so the OS serves the
server's own threads first.

- The function travels by reference (its module is imported in the worker); arguments and
  results are pickled. Top-level arguments that are a :class:`threading.Event` (a cancel flag)
  or a function (a progress callback, ``notify``) stay here: the worker gets a stand-in, an Event
  that is set when this one is, and a function whose calls are replayed here (results ignored).
- :func:`stream` runs a generator function and yields its items as they come. Closing the
  stream (a handler cancelled by gradio) sets the job's events, closes the generator in the
  worker; the next job starts once it has ended, so one device slot never holds two running jobs.
- An exception raised in the worker is raised here with its type and message (its traceback
  chained as the cause). If the worker dies (killed for memory, a crash), the job raises
  :class:`WorkerStoppedError` and the next job starts a fresh worker.
- Durations the worker's jobs record (``core.limits.JOB_CLOCK``) are recorded here too, so this
  process's estimates of waits and lanes learn from them.
- The worker starts with this process's environment and ``sys.path`` and uses as many torch
  threads as this process; when one of the variables that choose weights, caches and devices
  (:data:`ENV_PREFIXES`) changes, or the torch thread count, the next job gets a fresh worker.

Pickle is safe here, unlike for weights files: the two ends talk only over a ``socketpair`` this
process creates and hands to its own child (no address anyone else can connect to), and every
pickle on it was made by the other end of the same code. User uploads cross it as decoded images
that the apps have already admitted, never as bytes read back with pickle.

The worker's end is :mod:`core.model_worker_process`, run in a fresh interpreter (``python -c``)
rather than by ``multiprocessing``'s "spawn", which would import the parent's ``__main__`` module
in the child: the whole hub with every app.
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.model_worker_process import CallbackStandIn, EventStandIn, send_message

ENV_PREFIXES = ("GANHUB_", "HF_", "HUGGINGFACE_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "CUDA_", "GRADIO_TEMP_DIR",
                "HOME", "XDG_CACHE_HOME", "TMPDIR")
START_SECONDS = 300.0  # the most a worker may take to start (importing torch on a loaded machine)
POLL_SECONDS = 0.1  # how often a waiting job looks at its cancel flags
CLOSE_SECONDS = 60.0  # how long a job its caller left may take to stop before its worker is stopped
REPO_ROOT = str(Path(__file__).resolve().parents[1])


class WorkerStoppedError(RuntimeError):
    """The model worker process ended while it ran a job (the message says how; try again)."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the model worker (chained as its ``__cause__``)."""

    def __str__(self) -> str:
        return self.args[0]


CALLBACK_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)


def _stand_ins(args: tuple, kwargs: dict) -> tuple[tuple, dict, list, list]:
    """(args, kwargs) with Events and callables replaced by stand-ins, and those Events and callables."""
    events, callbacks = [], []

    def swap(value):
        if isinstance(value, threading.Event):
            events.append(value)
            return EventStandIn(len(events) - 1)
        if isinstance(value, CALLBACK_TYPES):
            callbacks.append(value)
            return CallbackStandIn(len(callbacks) - 1)
        return value

    return tuple(map(swap, args)), {k: swap(v) for k, v in kwargs.items()}, events, callbacks


def environment_key() -> tuple:
    """What a worker must share with this process: the variables of :data:`ENV_PREFIXES` and torch's threads."""
    import torch

    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIXES))), torch.get_num_threads()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "closed its connection"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often the system running out of memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


class Worker:
    """One model worker process and the jobs running in it (see the module docstring)."""

    def __init__(self, device_type: str, lane: str = "heavy"):
        self.device_type, self.lane, self.key = device_type, lane, environment_key()
        nice = int(os.environ.get("GANHUB_MODEL_WORKER_NICE" if lane == "heavy" else "GANHUB_LIGHT_WORKER_NICE", "").strip()
                   or (10 if lane == "heavy" else 5))
        ours, theirs = socket.socketpair()
        command = f"import core.model_worker_process as w; w.serve({theirs.fileno()})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-c", command], pass_fds=[theirs.fileno()], env=env,
                                        stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send_lock, self._jobs_lock = threading.Lock(), threading.Lock()
        self._jobs: dict[int, queue.Queue] = {}
        self._closing: set[int] = set()  # jobs their callers left, still ending in the worker
        self._closed_all = threading.Condition(self._jobs_lock)
        self._ids = itertools.count()
        self.stopped: str | None = None  # why the worker is gone, once it is
        self.jobs_done = 0
        self.pid = self.process.pid
        try:
            threads = self.key[1] if lane == "heavy" else int(os.environ.get("GANHUB_LIGHT_WORKER_THREADS", "").strip() or 1)
            self._send("start", 0, (list(sys.path), threads, nice))
            if not self._conn.poll(START_SECONDS):
                self.close()
                raise WorkerStoppedError(f"The model worker did not start within {START_SECONDS:g} s; try again.")
            self._conn.recv_bytes()  # "ready"
        except (EOFError, OSError):
            self.close()
            raise WorkerStoppedError(f"The model worker {_exit_reason(self.process.returncode)} while starting; "
                                     "try again.") from None
        threading.Thread(target=self._read, name=f"model-worker-{self.pid}", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.stopped is None and self.process.poll() is None

    def busy(self) -> bool:
        with self._jobs_lock:
            return bool(self._jobs)

    def _send(self, kind: str, job: int, body=None) -> None:
        send_message(self._conn, self._send_lock, kind, job, body)

    def _read(self) -> None:
        """Hand each message to its job; when the worker is gone, tell every running job why."""
        try:
            while True:
                kind, job, body = pickle.loads(self._conn.recv_bytes())
                if kind == "clock":  # a duration the worker measured: estimates here learn from it too
                    from core.limits import JOB_CLOCK

                    JOB_CLOCK.record(*pickle.loads(body))
                    continue
                with self._jobs_lock:
                    inbox = self._jobs.get(job)
                if inbox is not None:
                    inbox.put((kind, body))
        except (EOFError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stopped = (f"The model worker (process {self.pid}) {_exit_reason(self.process.returncode)} while "
                        "running this job; try again (a fresh worker starts with the next job).")
        with self._jobs_lock:
            for inbox in self._jobs.values():
                inbox.put(("stopped", None))
            self._closed_all.notify_all()

    def run(self, fn: Callable, args: tuple, kwargs: dict, streaming: bool) -> Iterator[tuple[str, Any]]:
        """The job's ``("item", value)`` as they come (streaming), then ``("done", its result)``."""
        args, kwargs, events, callbacks = _stand_ins(args, kwargs)
        job, inbox = next(self._ids), queue.Queue()
        with self._jobs_lock:  # a job left by its caller ends before the next one starts (one job per slot)
            self._closed_all.wait_for(lambda: not self._closing or self.stopped, timeout=CLOSE_SECONDS + 10)
            self._jobs[job] = inbox
        sent_events, started, finished = set(), False, False
        try:
            if self.stopped:
                raise WorkerStoppedError(self.stopped)
            try:
                self._send("call", job, (fn, args, kwargs, streaming))
            except OSError:
                raise WorkerStoppedError(self.stopped or "The model worker stopped; try again.") from None
            started = True
            while True:
                for i, event in enumerate(events):
                    if i not in sent_events and event.is_set():
                        sent_events.add(i)
                        self._send("set", job, i)
                try:
                    kind, body = inbox.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
                if kind == "stopped":
                    finished = True
                    raise WorkerStoppedError(self.stopped)
                value = pickle.loads(body)
                if kind == "item":
                    yield kind, value
                elif kind == "callback":
                    index, call_args, call_kwargs = value
                    callbacks[index](*call_args, **call_kwargs)
                elif kind == "done":
                    finished = True
                    self.jobs_done += 1
                    yield kind, value
                    return
                elif kind == "error":
                    finished = True
                    error, text = value
                    if isinstance(error, tuple):
                        error = error[0](*error[1:])
                    raise error from RemoteTraceback(text)
        finally:
            if started and not finished and self.alive:
                self._close_job(job, inbox)
            else:
                with self._jobs_lock:
                    del self._jobs[job]

    def _close_job(self, job: int, inbox: queue.Queue) -> None:
        """Stop a job its caller left (a stream closed early): its cancel flags are set and its generator
        closed in the worker. This returns at once (gradio closes a cancelled handler's generator on its
        event loop); the next job waits until this one has ended, and a job still running
        :data:`CLOSE_SECONDS` later takes the worker down with it."""
        with self._jobs_lock:
            self._closing.add(job)
        try:
            self._send("close", job)
        except OSError:
            pass
        threading.Thread(target=self._end_closed_job, args=(job, inbox), daemon=True).start()

    def _end_closed_job(self, job: int, inbox: queue.Queue) -> None:
        try:
            while inbox.get(timeout=CLOSE_SECONDS)[0] not in ("done", "error", "stopped"):
                pass
        except queue.Empty:
            self.close()
        finally:
            with self._jobs_lock:
                del self._jobs[job]
                self._closing.discard(job)
                self._closed_all.notify_all()

    def call(self, fn: Callable, *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)`` in this worker (see the module docstring)."""
        for _, result in self.run(fn, args, kwargs, streaming=False):
            return result

    def stream(self, fn: Callable, *args, **kwargs) -> Iterator:
        """The items of the generator ``fn(*args, **kwargs)``, run in this worker, as they come."""
        for kind, value in self.run(fn, args, kwargs, streaming=True):
            if kind == "item":
                yield value

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()


_workers: dict[str, Worker] = {}
_retired: list[Worker] = []
_workers_lock = threading.Lock()
LANES = ("heavy", "light")


def worker(device_type: str, lane: str = "heavy") -> Worker:
    """The live model worker of ``device_type`` and ``lane`` (``core.lanes``) for this environment:
    started, or restarted, as needed. A worker left behind by a change of environment is closed once
    its running jobs have ended."""
    if lane not in LANES:
        raise ValueError(f"Unknown lane {lane!r}: 'light' or 'heavy'.")
    name = device_type if lane == "heavy" else f"{device_type}:{lane}"
    with _workers_lock:
        for old in [w for w in _retired if not w.busy()]:
            _retired.remove(old)
            old.close()
        current = _workers.get(name)
        if current is not None and current.alive and current.key == environment_key():
            return current
        if current is not None:
            if current.busy():
                _retired.append(current)
            else:
                current.close()
        _workers[name] = Worker(device_type, lane)
        return _workers[name]


def _device_type() -> str:
    from core.device import get_device

    return get_device().type


def call(fn: Callable, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` in the model worker of the device in use (see the module docstring)."""
    return worker(_device_type()).call(fn, *args, **kwargs)


def stream(fn: Callable, *args, **kwargs) -> Iterator:
    """The items of the generator ``fn(*args, **kwargs)``, run in the device's model worker, as they come."""
    return worker(_device_type()).stream(fn, *args, **kwargs)


def status() -> dict[str, Any]:
    """The device type (``"cpu:light"`` for the light lane's worker) -> the worker's process id, whether
    it is alive and the jobs it finished (without waiting for a worker that is starting)."""
    return {d: {"pid": w.pid, "alive": w.alive, "jobs_done": w.jobs_done} for d, w in list(_workers.items())}


def shutdown() -> None:
    """Close every model worker (they also end by themselves when this process exits)."""
    with _workers_lock:
        for w in [*_workers.values(), *_retired]:
            w.close()
        _workers.clear()
        _retired.clear()


