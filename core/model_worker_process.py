"""The model worker's end (``core.model_worker`` starts it): jobs in threads, their items, results and errors sent back.

Also the message format both ends share: ``(kind, job, pickled body)``, so that a body one end
cannot read fails its job only, and the stand-ins for the arguments that stay with the caller.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import traceback
from multiprocessing.connection import Connection


class EventStandIn:
    """Stand-in for a :class:`threading.Event` argument: the worker's copy is set when the caller's is."""

    def __init__(self, index: int):
        self.index = index


class CallbackStandIn:
    """Stand-in for a callable argument: the worker's calls of it are replayed in the caller's process."""

    def __init__(self, index: int):
        self.index = index


def for_effect(target: str, *args, **kwargs) -> None:
    """Call the function named ``target`` (``"module:qualified.name"``; a function itself would be a
    callback run in the server) and drop its result, after running it to its end if it is a generator:
    a warm-up's loaded model stays in the worker."""
    import importlib
    import inspect

    module, _, name = target.partition(":")
    fn = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    result = fn(*args, **kwargs)
    if inspect.isgenerator(result):
        for _ in result:
            pass


def send_message(conn: Connection, lock: threading.Lock, kind: str, job: int, body) -> None:
    """One message: ``(kind, job, pickled body)``; the body is unpickled by the job's own thread, so a
    body that cannot be read fails that job only."""
    data = pickle.dumps((kind, job, pickle.dumps(body, pickle.HIGHEST_PROTOCOL)), pickle.HIGHEST_PROTOCOL)
    with lock:
        conn.send_bytes(data)


def rebuilt_error(cls: type, args: tuple, state: dict) -> BaseException:
    """An exception of ``cls`` with ``args`` and attributes ``state``, without calling its ``__init__``
    (whose parameters may differ from ``args``, as ``WeightsUnavailableError(model_id, message)``'s do)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _sendable_error(e: BaseException):
    """What tells the caller about ``e``: ``e`` itself if it survives pickling, else the recipe of
    :func:`rebuilt_error` (same type, message and attributes), else a RuntimeError that names it."""
    for candidate in (e, (rebuilt_error, type(e), e.args, dict(getattr(e, "__dict__", {})))):
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
        send_message(self.conn, self.send_lock, kind, job, body)

    def start(self, job: int, body: bytes) -> None:
        events, closed = [], threading.Event()
        self.jobs[job] = (events, closed)
        threading.Thread(target=self.work, args=(job, body, events, closed), daemon=True).start()

    def work(self, job: int, body: bytes, events: list[threading.Event], closed: threading.Event) -> None:
        def local(value):
            if isinstance(value, EventStandIn):
                events.append(threading.Event())
                return events[-1]
            if isinstance(value, CallbackStandIn):
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
    """The model worker's main loop (run by ``core.model_worker.Worker`` in a fresh interpreter): set its CPU
    priority, set up like the server, then serve jobs until the server's end of the connection closes."""
    conn = Connection(fd)
    path, threads, nice = pickle.loads(pickle.loads(conn.recv_bytes())[2])
    sys.path[:] = path
    os.nice(nice)
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
