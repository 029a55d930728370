"""The iterator and cancel protocol shared by the streaming pipelines (PULSE, text to image).

A streaming task has ``stream(inputs, settings, *, model=None, cancel=None) -> Iterator``: it
yields a :class:`Progress` after its steps and its task's ``Result`` last. Between steps it asks
a :class:`Stop` whether to go on. Setting ``cancel`` (a :class:`threading.Event`, from any
thread) or running out of the request's time budget (:class:`core.limits.Budget`) ends the
stream after the step that is running; the ``Result`` then holds the best work so far and says
why it ended (``cancelled``, or the budget's note). The task's ``run()`` is :func:`drain`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One step of a streaming task."""

    step: int  # steps done
    total: int  # steps planned
    preview: Any = None  # the work so far (a PIL image, or a list of them), or None for this step
    note: str = ""  # a line for the user about where the task stands


class Stop:
    """Why a stream ends early: ``cancel`` was set (``cancelled``) or ``budget`` ran out (``note``)."""

    def __init__(self, cancel: threading.Event | None = None, budget=None):
        self.cancel = cancel
        self.budget = budget
        self.cancelled = False
        self.note = ""

    def cancel_requested(self) -> bool:
        """Whether ``cancel`` is set (then the stream is ``cancelled``); the budget is not asked."""
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
        return self.cancelled

    def now(self, done: str) -> bool:
        """Whether to end before the next step; ``done`` says how far the task got (for the budget's note)."""
        if self.cancel_requested():
            return True
        if self.budget is not None and self.budget.expired():
            if not self.note:
                self.note = self.budget.stopped(done)
            return True
        return False

    @property
    def stopped(self) -> bool:
        return self.cancelled or bool(self.note)


def drain(events: Iterable[Any]) -> Any:
    """The last item of a stream (its ``Result``), discarding the progress before it."""
    last = None
    for last in events:
        pass
    if last is None or isinstance(last, Progress):
        raise RuntimeError("the stream ended without a result")
    return last
