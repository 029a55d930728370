"""core.pipelines.streaming: why a stream stops, and draining one to its result."""

import threading

import pytest

from core.limits import Budget
from core.pipelines.streaming import Progress, Stop, drain


def test_cancel_is_asked_first_and_marks_the_stream_cancelled():
    cancel = threading.Event()
    stop = Stop(cancel, Budget(seconds=1e-9))  # both would stop it
    assert not Stop(threading.Event(), Budget(seconds=0)).now("0 of 3 steps"), "nothing set, no limit"
    cancel.set()
    assert stop.now("2 of 3 steps") and stop.cancelled and stop.note == "" and stop.stopped


def test_the_budget_stops_with_one_note_saying_how_far_the_work_got():
    budget = Budget(seconds=1e-9)
    stop = Stop(budget=budget)
    assert not stop.cancel_requested()
    assert stop.now("4 of 10 steps") and stop.now("5 of 10 steps")
    assert not stop.cancelled and "stopped after 4 of 10 steps, and the best result so far is shown" in stop.note
    assert budget.notes == [stop.note], "recorded once"


def test_drain_returns_the_result_and_refuses_a_stream_without_one():
    assert drain(iter([Progress(1, 2), Progress(2, 2), "result"])) == "result"
    with pytest.raises(RuntimeError, match="without a result"):
        drain(iter([Progress(1, 2)]))
    with pytest.raises(RuntimeError, match="without a result"):
        drain(iter([]))
