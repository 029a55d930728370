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
  worker and waits for it to end, so one device slot never holds two running jobs.
- An exception raised in the worker is raised here with its type and message (its traceback
  chained as the cause). If the worker dies (killed for memory, a crash), the job raises
  :class:`WorkerStoppedError` and the next job starts a fresh worker.
- Durations the worker's jobs record (``core.limits.JOB_CLOCK``) are recorded here too, so this
  process's estimates of waits and lanes learn from them.
- The worker starts with this process's environment and ``sys.path`` and uses as many torch
  threads as this process; when one of the variables that choose weights, caches and devices
  (:data:`ENV_PREFIXES`) changes, or the torch thread count, the next job gets a fresh worker.

It is a fresh interpreter (``python -c``), not ``multiprocessing``'s "spawn", which imports the
parent's ``__main__`` module in the child: the whole hub with every app.
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
import traceback
import types
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

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


class _Event:
    """Stand-in for a :class:`threading.Event` argument: the worker's copy is set when the caller's is."""

    def __init__(self, index: int):
        self.index = index


class _Callback:
    """Stand-in for a callable argument: the worker's calls of it are replayed in the caller's process."""

    def __init__(self, index: int):
        self.index = index


CALLBACK_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)


def _stand_ins(args: tuple, kwargs: dict) -> tuple[tuple, dict, list, list]:
    """(args, kwargs) with Events and callables replaced by stand-ins, and those Events and callables."""
    events, callbacks = [], []

    def swap(value):
        if isinstance(value, threading.Event):
            events.append(value)
            return _Event(len(events) - 1)
        if isinstance(value, CALLBACK_TYPES):
            callbacks.append(value)
            return _Callback(len(callbacks) - 1)
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

        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        hint = " (often the system running out of memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


class Worker:
    """One model worker process and the jobs running in it (see the module docstring)."""

    def __init__(self, device_type: str):
        self.device_type, self.key = device_type, environment_key()
        ours, theirs = socket.socketpair()
        command = f"import core.model_worker as w; w.serve({theirs.fileno()})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-c", command], pass_fds=[theirs.fileno()], env=env,
                                        stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send_lock, self._jobs_lock = threading.Lock(), threading.Lock()
        self._jobs: dict[int, queue.Queue] = {}
        self._ids = itertools.count()
        self.stopped: str | None = None  # why the worker is gone, once it is
        self.jobs_done = 0
        self.pid = self.process.pid
        try:
            self._send("start", 0, (list(sys.path), self.key[1]))
            if not self._conn.poll(START_SECONDS):
                self.close()
                raise WorkerStoppedError(f"The model worker did not start within {START_SECONDS:g} s; try again.")
            self._conn.recv_bytes()  # "ready"
        except (EOFError, OSError):
            self.process.wait(10)
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
        _send(self._conn, self._send_lock, kind, job, body)

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

    def run(self, fn: Callable, args: tuple, kwargs: dict, streaming: bool) -> Iterator[tuple[str, Any]]:
        """The job's ``("item", value)`` as they come (streaming), then ``("done", its result)``."""
        args, kwargs, events, callbacks = _stand_ins(args, kwargs)
        job, inbox = next(self._ids), queue.Queue()
        with self._jobs_lock:
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
            with self._jobs_lock:
                del self._jobs[job]

    def _close_job(self, job: int, inbox: queue.Queue) -> None:
        """Stop a job its caller left (its cancel flags set, its generator closed) and wait until it has
        ended; a job still running :data:`CLOSE_SECONDS` later takes the worker down with it."""
        try:
            self._send("close", job)
            while inbox.get(timeout=CLOSE_SECONDS)[0] not in ("done", "error", "stopped"):
                pass
        except (OSError, queue.Empty):
            self.close()

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


def _send(conn: Connection, lock: threading.Lock, kind: str, job: int, body) -> None:
    """One message: ``(kind, job, pickled body)``; the body is unpickled by the job's own thread, so a
    body that cannot be read fails that job only."""
    data = pickle.dumps((kind, job, pickle.dumps(body, pickle.HIGHEST_PROTOCOL)), pickle.HIGHEST_PROTOCOL)
    with lock:
        conn.send_bytes(data)


_workers: dict[str, Worker] = {}
_retired: list[Worker] = []
_workers_lock = threading.Lock()


def worker(device_type: str) -> Worker:
    """The live model worker of ``device_type`` for this environment: started, or restarted, as needed.
    A worker left behind by a change of environment is closed once its running jobs have ended."""
    with _workers_lock:
        current = _workers.get(device_type)
        if current is not None and current.alive and current.key == environment_key():
            return current
        if current is not None:
            _retired.append(current)
        for old in [w for w in _retired if not w.busy()]:
            _retired.remove(old)
            old.close()
        _workers[device_type] = Worker(device_type)
        return _workers[device_type]


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
    """device type -> the worker's process id, whether it is alive and the jobs it finished."""
    with _workers_lock:
        return {d: {"pid": w.pid, "alive": w.alive, "jobs_done": w.jobs_done} for d, w in _workers.items()}


def shutdown() -> None:
    """Close every model worker (they also end by themselves when this process exits)."""
    with _workers_lock:
        for w in [*_workers.values(), *_retired]:
            w.close()
        _workers.clear()
        _retired.clear()


# --- the worker process -------------------------------------------------------------------------


def _rebuilt_error(cls: type, args: tuple, state: dict) -> BaseException:
    """An exception of ``cls`` with ``args`` and attributes ``state``, without calling its ``__init__``
    (whose parameters may differ from ``args``, as ``WeightsUnavailableError(model_id, message)``'s do)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _sendable_error(e: BaseException):
    """What tells the caller about ``e``: ``e`` itself if it survives pickling, else the recipe of
    :func:`_rebuilt_error` (same type, message and attributes), else a RuntimeError that names it."""
    for candidate in (e, (_rebuilt_error, type(e), e.args, dict(getattr(e, "__dict__", {})))):
        try:
            copy = pickle.loads(pickle.dumps(candidate))
            if isinstance(copy, tuple):
                copy[0](*copy[1:])
            return candidate
        except Exception:
            continue
    return RuntimeError(f"{type(e).__name__}: {e}")


class _Served:
    """The worker's end: runs each job in its own thread and sends back what it yields or returns."""

    def __init__(self, conn: Connection):
        self.conn, self.send_lock = conn, threading.Lock()
        self.jobs: dict[int, tuple[list[threading.Event], threading.Event]] = {}

    def send(self, kind: str, job: int, body=None) -> None:
        _send(self.conn, self.send_lock, kind, job, body)

    def start(self, job: int, body: bytes) -> None:
        events, closed = [], threading.Event()
        self.jobs[job] = (events, closed)
        threading.Thread(target=self.work, args=(job, body, events, closed), daemon=True).start()

    def work(self, job: int, body: bytes, events: list[threading.Event], closed: threading.Event) -> None:
        def local(value):
            if isinstance(value, _Event):
                events.append(threading.Event())
                return events[-1]
            if isinstance(value, _Callback):
                return lambda *a, **k: self.send("callback", job, (value.index, a, k))
            return value

        try:
            fn, args, kwargs, streaming = pickle.loads(body)  # imports fn's module
            args, kwargs = tuple(map(local, args)), {k: local(v) for k, v in kwargs.items()}
            if closed.is_set():
                for event in events:
                    event.set()
            if streaming:
                items = fn(*args, **kwargs)
                try:
                    for item in items:
                        self.send("item", job, item)
                        if closed.is_set():
                            break
                finally:
                    items.close()
                result = None
            else:
                result = fn(*args, **kwargs)
            self.send("done", job, result)
        except BaseException as e:
            text = "".join(traceback.format_exception(e))
            self.send("error", job, (_sendable_error(e), f"\nIn the model worker:\n{text}"))
        finally:
            self.jobs.pop(job, None)

    def on_message(self, kind: str, job: int, body: bytes) -> None:
        if kind == "call":
            self.start(job, body)
            return
        events, closed = self.jobs.get(job, ([], None))
        if kind == "set":
            index = pickle.loads(body)
            if index < len(events):
                events[index].set()
        elif kind == "close" and closed is not None:
            closed.set()
            for event in events:
                event.set()


def serve(fd: int) -> None:
    """The model worker's main loop (run by :class:`Worker` in a fresh interpreter): lower its CPU
    priority, set up like the server, then serve jobs until the server's end of the connection closes."""
    conn = Connection(fd)
    path, threads = pickle.loads(pickle.loads(conn.recv_bytes())[2])
    sys.path[:] = path
    os.nice(int(os.environ.get("GANHUB_MODEL_WORKER_NICE", "").strip() or 10))
    import torch

    from core.device import tune_allocator
    from core.limits import JOB_CLOCK

    tune_allocator()
    if threads:
        torch.set_num_threads(threads)
    served = _Served(conn)
    JOB_CLOCK.on_record = lambda kind, units, seconds: served.send("clock", 0, (kind, units, seconds))
    served.send("ready", 0, os.getpid())
    while True:
        try:
            kind, job, body = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            os._exit(0)
        try:
            served.on_message(kind, job, body)
        except Exception:  # a malformed message must not take the worker down
            traceback.print_exc()
