"""Lanes by cost: a job that takes a fraction of a second never waits behind minute-long searches.

Every job the hub runs enters one of two process-wide lanes, shared by all apps of the hub:

- ``heavy``, one per device type: at most ``GANHUB_DEVICE_CONCURRENCY`` (default 1) jobs run on a
  device at once, so big models never run side by side and exhaust its memory;
- ``light``: jobs expected to take under :data:`LIGHT_SECONDS` (classical OpenCV methods that use
  no model, 64 px generators, short searches), ``GANHUB_LIGHT_CONCURRENCY`` (default 4) at once.

The heavy lane is a FIFO queue. The light lane serves the shortest jobs first, with ageing: a job
expected to take ``e`` seconds waits as if it had arrived :data:`SHORTEST_FIRST_WEIGHT` x ``e``
seconds later, so a 0.1 s inpainting passes the 1 s searches queued just before it, and a search
waits a few seconds more at most, never forever. Each waiting job knows its position and an
estimated wait (from the measured durations of the jobs ahead of it), and a lane refuses new jobs
once ``GANHUB_LANE_MAX_WAITING`` (default 16) are waiting, so the queue bounds the memory its
waiting jobs hold.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

LIGHT_SECONDS = 1.0
SHORTEST_FIRST_WEIGHT = 4.0  # the light lane's ageing (see the module docstring)


class LaneFullError(RuntimeError):
    """Too many jobs are waiting in a lane: the message says so (the caller shows it)."""


class Lane:
    """A queue with ``slots`` jobs running at once and at most ``max_waiting`` waiting: first come, first
    served, or with ``shortest_first`` > 0 the shortest first, with ageing (see the module docstring)."""

    def __init__(self, name: str, slots: int, max_waiting: int, shortest_first: float = 0.0):
        self.name, self.slots, self.max_waiting = name, max(1, slots), max(0, max_waiting)
        self.shortest_first = max(0.0, shortest_first)
        self._cond = threading.Condition()
        self._waiting: list = []  # tickets in order of arrival
        self._running: dict[object, tuple[float, float]] = {}  # ticket -> (started, expected seconds)
        self._expected: dict[object, float] = {}
        self._turn: dict[object, float] = {}  # ticket -> when it would have arrived, for the order

    def _ahead(self, ticket) -> list:
        return [t for t in self._waiting if self._turn[t] < self._turn[ticket]]

    def _wait_estimate(self, ticket) -> tuple[int, float]:
        """(position, seconds) of ``ticket``: the jobs ahead of it and the running jobs' remaining time,
        shared among the slots."""
        now = time.monotonic()
        ahead = self._ahead(ticket)
        remaining = sum(max(0.0, expected - (now - started)) for started, expected in self._running.values())
        return len(ahead) + 1, (remaining + sum(self._expected[t] for t in ahead)) / self.slots

    @contextlib.contextmanager
    def enter(self, expected_seconds: float = 1.0,
              on_wait: Callable[[int, float], None] | None = None) -> Iterator[None]:
        """Hold one slot of the lane for the ``with`` block; ``on_wait(position, seconds)`` is called
        about once a second while the job waits. Raises :class:`LaneFullError` when the lane is full."""
        ticket = object()
        with self._cond:
            if len(self._waiting) >= self.max_waiting and len(self._running) >= self.slots:
                raise LaneFullError(
                    f"The queue is full: {len(self._waiting)} jobs are already waiting for the {self.name} lane of "
                    "this server. Please try again in a minute.")
            self._waiting.append(ticket)
            self._expected[ticket] = expected_seconds
            self._turn[ticket] = time.monotonic() + self.shortest_first * expected_seconds
            try:
                while self._ahead(ticket) or len(self._running) >= self.slots:
                    if on_wait is not None:
                        on_wait(*self._wait_estimate(ticket))
                    self._cond.wait(1.0)
            except BaseException:
                self._waiting.remove(ticket)
                self._expected.pop(ticket)
                self._turn.pop(ticket)
                self._cond.notify_all()
                raise
            self._waiting.remove(ticket)
            self._turn.pop(ticket)
            self._running[ticket] = (time.monotonic(), self._expected.pop(ticket))
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                del self._running[ticket]
                self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def running(self) -> int:
        with self._cond:
            return len(self._running)


_lanes: dict[str, Lane] = {}
_lanes_guard = threading.Lock()


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(name, "").strip() or default)


def lane(kind: str, device_type: str | None = None) -> Lane:
    """The process-wide lane ``"light"``, or ``"heavy"`` of ``device_type`` (default: the device in use)."""
    if kind == "heavy":
        if device_type is None:
            from core.device import get_device

            device_type = get_device().type
        key, slots, name = f"heavy:{device_type}", _setting("GANHUB_DEVICE_CONCURRENCY", 1), f"{device_type} device"
    elif kind == "light":
        key, slots, name = "light", _setting("GANHUB_LIGHT_CONCURRENCY", 4), "quick-job"
    else:
        raise ValueError(f"Unknown lane {kind!r}: 'light' or 'heavy'.")
    with _lanes_guard:
        if key not in _lanes:
            _lanes[key] = Lane(name, slots, _setting("GANHUB_LANE_MAX_WAITING", 16),
                               shortest_first=SHORTEST_FIRST_WEIGHT if kind == "light" else 0.0)
        return _lanes[key]


def lane_for(expected_seconds: float) -> str:
    """``"light"`` for jobs expected to take under :data:`LIGHT_SECONDS`, else ``"heavy"``."""
    return "light" if expected_seconds < LIGHT_SECONDS else "heavy"
