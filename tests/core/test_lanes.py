"""Lanes by cost: quick jobs never wait behind long ones; one heavy job per device; bounded queues."""

import threading
import time

import gradio as gr
import pytest

from core import lanes, ui


@pytest.fixture(autouse=True)
def fresh_lanes(monkeypatch):
    monkeypatch.setattr(lanes, "_lanes", {})


def test_a_lane_is_fifo_reports_positions_and_bounds_its_queue():
    lane = lanes.Lane("test", slots=1, max_waiting=2)
    order, reports = [], []
    release = threading.Event()

    def job(name, expected=1.0):
        with lane.enter(expected, on_wait=lambda position, seconds: reports.append((name, position, seconds))):
            order.append(name)
            release.wait(5)

    first = threading.Thread(target=job, args=("first", 10.0))
    first.start()
    while not order:
        time.sleep(0.01)
    waiting = [threading.Thread(target=job, args=(name,)) for name in ("second", "third")]
    for t in waiting:
        t.start()
        while lane.waiting() < waiting.index(t) + 1:
            time.sleep(0.01)
    with pytest.raises(lanes.LaneFullError, match="The queue is full: 2 jobs are already waiting"):
        with lane.enter():
            pass
    release.set()
    for t in [first, *waiting]:
        t.join(5)
    assert order == ["first", "second", "third"]
    second = [r for r in reports if r[0] == "second"][0]
    third = [r for r in reports if r[0] == "third"][0]
    assert second[1] == 1 and third[1] == 2  # queue positions
    assert 8 < second[2] <= 10 and third[2] > second[2]  # the running job's expected 10 s, then one more job


def test_quick_jobs_do_not_wait_behind_a_heavy_one():
    started = threading.Event()
    finish = threading.Event()
    done = []

    @ui.heavy
    def long_search():
        started.set()
        finish.wait(10)

    @ui.in_lane(lambda method: (f"inpaint:{method}", 0.2 if method == "telea" else 10.0))
    def inpaint(method):
        done.append(method)

    @ui.in_lane(lambda method: ("second heavy", 10.0))
    def other_heavy(method):
        done.append(method)

    search = threading.Thread(target=long_search)
    search.start()
    started.wait(5)
    heavy = threading.Thread(target=other_heavy, args=("lama",))
    heavy.start()
    t0 = time.monotonic()
    inpaint("telea")  # the light lane: runs at once
    assert done == ["telea"] and time.monotonic() - t0 < 1
    time.sleep(0.2)
    assert done == ["telea"], "the second heavy job waits for the device"
    finish.set()
    search.join(5)
    heavy.join(5)
    assert done == ["telea", "lama"]


def test_a_waiting_job_shows_its_position_through_its_progress():
    calls = []

    class Recorder(gr.Progress):
        def __call__(self, progress, desc=None, **kwargs):
            calls.append(desc)

    release = threading.Event()

    @ui.heavy
    def hold():
        release.wait(10)

    @ui.heavy
    def job(x, progress=gr.Progress()):
        return x

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    result = []
    waiter = threading.Thread(target=lambda: result.append(job(3, Recorder())))
    waiter.start()
    time.sleep(1.5)
    release.set()
    holder.join(5)
    waiter.join(5)
    assert result == [3]
    assert calls and calls[0].startswith("Waiting for the cpu device: queue position 1, about")


def test_a_full_lane_is_a_clear_gradio_error(monkeypatch):
    monkeypatch.setenv("GANHUB_LANE_MAX_WAITING", "0")
    release = threading.Event()

    @ui.heavy
    def hold():
        release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    try:
        with pytest.raises(gr.Error, match="The queue is full"):
            ui.heavy(lambda: None)()
    finally:
        release.set()
        holder.join(5)


def test_the_light_lane_serves_the_shortest_job_first_and_ages_the_long_ones():
    lane = lanes.Lane("test", slots=1, max_waiting=8, shortest_first=4.0)
    order, release = [], threading.Event()

    def job(name, expected):
        with lane.enter(expected):
            order.append(name)
            if name == "running":
                release.wait(5)

    def queue(name, expected):
        thread = threading.Thread(target=job, args=(name, expected))
        waiting = lane.waiting()
        thread.start()
        while lane.waiting() == waiting:
            time.sleep(0.01)
        return thread

    running = threading.Thread(target=job, args=("running", 0.1))
    running.start()
    while not order:
        time.sleep(0.01)
    threads = [queue("search", 1.0), queue("inpaint", 0.05)]  # the search waits as if it came 4 s later
    threads.append(queue("old", 0.05))
    time.sleep(0.6)  # "old" has waited longer than 4 x 0.05 s when the next short job comes
    threads.append(queue("new", 0.05))
    release.set()
    for thread in [running, *threads]:
        thread.join(5)
    assert order == ["running", "inpaint", "old", "new", "search"]


def test_the_heavy_lane_keeps_arrival_order_whatever_the_jobs_cost():
    assert lanes.lane("heavy", "cpu").shortest_first == 0 and lanes.lane("light").shortest_first > 0
