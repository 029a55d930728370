"""The one cancel registry: the cancel flags of an app's running streaming jobs, by browser session."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import gradio as gr


class Cancels:
    """The cancel flags of an app's running streaming jobs, one per browser session.

    A handler runs its job inside ``with cancels.running(request) as cancel:`` and hands ``cancel``
    (a :class:`threading.Event`) to the pipeline's ``stream``; a "Stop" or "Finish now" button calls
    :meth:`cancel` with its own request, which ends that session's job after its running step
    (:mod:`core.pipelines.streaming`). A session has at most one job here: a new one replaces it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: dict[str, Any] = {}

    @staticmethod
    def _session(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or ""

    @contextlib.contextmanager
    def running(self, request: gr.Request | None):
        session, flag = self._session(request), threading.Event()
        with self._lock:
            self._flags[session] = flag
        try:
            yield flag
        finally:
            flag.set()  # a job whose handler was closed (its event cancelled) stops too
            with self._lock:
                if self._flags.get(session) is flag:
                    del self._flags[session]

    def cancel(self, request: gr.Request | None) -> None:
        """End the running job of ``request``'s session after its running step (nothing when none runs)."""
        with self._lock:
            flag = self._flags.get(self._session(request))
        if flag is not None:
            flag.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._flags)
