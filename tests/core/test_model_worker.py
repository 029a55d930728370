"""The model worker process for real: results, streams, errors, cancels, a killed worker, the environment.

The functions the worker runs are defined here, at module level (the worker imports this module).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from core import model_worker
from core.model_worker import RemoteTraceback, WorkerStoppedError
from tests.support.worker_jobs import squares, where


def until_cancelled(cancel, finished_file, linger=0.0):
    """Yield step numbers until ``cancel`` is set, then a last item saying so (a streaming pipeline's
    protocol); ``linger`` seconds later, write how far it got to ``finished_file``."""
    step = 0
    try:
        while not cancel.is_set():
            yield step
            step += 1
            time.sleep(0.02)
        yield ("cancelled after", step)
    finally:
        time.sleep(linger)
        with open(finished_file, "w") as out:
            out.write(str(step))


def refuse(kind):
    from core.weights import WeightsUnavailableError

    if kind == "value":
        raise ValueError("Upload a photo first.")
    raise WeightsUnavailableError("cyclegan.summer2winter", "No source of cyclegan.summer2winter could be used.")


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def record_duration(kind):
    from core.limits import JOB_CLOCK

    JOB_CLOCK.record(kind, 4, 2.0)


@pytest.fixture(scope="module", autouse=True)
def workers():
    """One worker for the module's tests (each start costs seconds); none left behind."""
    model_worker.shutdown()
    yield
    model_worker.shutdown()


def test_a_call_runs_in_a_lower_priority_process_and_its_result_comes_back():
    from PIL import Image

    image = Image.new("RGB", (5, 3), (10, 20, 30))
    done = model_worker.status().get("cpu", {}).get("jobs_done", 0)
    seen = model_worker.call(where, image, 7, name="x")
    assert seen["pid"] != os.getpid()
    assert seen["nice"] == min(19, os.nice(0) + 10)
    assert seen["args"][0].size == (5, 3) and seen["args"][0].getpixel((4, 2)) == (10, 20, 30)
    assert seen["args"][1:] == (7,) and seen["kwargs"] == {"name": "x"}
    assert model_worker.call(where)["pid"] == seen["pid"]  # one long-lived worker
    assert model_worker.status()["cpu"]["jobs_done"] == done + 2


def test_a_stream_yields_its_items_in_order_and_its_callbacks_run_here():
    calls = []
    items = list(model_worker.stream(squares, 6, progress=lambda i, total: calls.append((i, total,
                                                                                          threading.get_ident()))))
    assert items == [0, 1, 4, 9, 16, 25]
    assert [c[:2] for c in calls] == [(i, 6) for i in range(6)]
    assert {c[2] for c in calls} == {threading.get_ident()}  # replayed in the caller's thread


@pytest.mark.parametrize("kind", ["value", "weights"])
def test_an_error_keeps_its_type_and_message(kind):
    from core.weights import WeightsUnavailableError

    expected = ValueError if kind == "value" else WeightsUnavailableError
    with pytest.raises(expected) as raised:
        model_worker.call(refuse, kind)
    assert type(raised.value) is expected
    assert str(raised.value) in ("Upload a photo first.", "No source of cyclegan.summer2winter could be used.")
    assert isinstance(raised.value.__cause__, RemoteTraceback) and "in refuse" in str(raised.value.__cause__)
    if kind == "weights":
        assert raised.value.model_id == "cyclegan.summer2winter"


def test_a_cancel_here_stops_the_streamed_job_in_the_worker(tmp_path):
    cancel, finished = threading.Event(), tmp_path / "finished"
    items = []
    for item in model_worker.stream(until_cancelled, cancel, str(finished)):
        items.append(item)
        if item == 3:
            cancel.set()
            cancelled_at = time.monotonic()
    ended = time.monotonic() - cancelled_at
    assert items[-1][0] == "cancelled after" and items[:4] == [0, 1, 2, 3]
    assert finished.exists()
    assert ended < 1.5, f"the job took {ended:.2f} s to stop"


def test_leaving_a_stream_early_stops_its_job_before_the_next_one(tmp_path):
    finished = tmp_path / "finished"
    items = model_worker.stream(until_cancelled, threading.Event(), str(finished), linger=1.0)
    for item in items:
        if item == 2:
            break
    started = time.monotonic()
    items.close()  # what gradio does with a cancelled handler, on its event loop: it must not wait
    assert time.monotonic() - started < 0.5 and not finished.exists()
    assert model_worker.call(where)["pid"] != os.getpid()
    assert finished.exists()  # the next job started only once the left one had ended in the worker


def test_a_killed_worker_fails_its_job_clearly_and_the_next_job_gets_a_fresh_one():
    first = model_worker.call(where)["pid"]
    with pytest.raises(WorkerStoppedError, match=r"model worker .*killed by SIGKILL.*try again"):
        model_worker.call(die)
    assert model_worker.call(where)["pid"] != first


def test_durations_measured_in_the_worker_refine_the_estimates_here():
    from core.limits import JOB_CLOCK

    model_worker.call(record_duration, "test:worker-clock")
    assert JOB_CLOCK.estimate("test:worker-clock", 10, prior=100.0) == pytest.approx(5.0)


def test_the_worker_sees_the_environment_of_the_call(monkeypatch):
    import torch

    monkeypatch.setenv("GANHUB_TEST_MARKER", "first")
    first = model_worker.call(where)
    assert first["marker"] == "first" and first["torch_threads"] == torch.get_num_threads()
    monkeypatch.setenv("UNRELATED_TO_THE_MODELS", "1")
    assert model_worker.call(where)["pid"] == first["pid"]  # variables that choose nothing keep the worker
    monkeypatch.setenv("GANHUB_TEST_MARKER", "second")
    second = model_worker.call(where)
    assert second["marker"] == "second" and second["pid"] != first["pid"]
    deadline = time.monotonic() + 10
    while _alive(first["pid"]) and time.monotonic() < deadline:  # the old, idle worker is closed
        time.sleep(0.05)
    assert not _alive(first["pid"])


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_light_lane_has_its_own_worker_at_the_server_priority_with_one_torch_thread(monkeypatch):
    monkeypatch.delenv("GANHUB_LIGHT_WORKER_NICE", raising=False)
    monkeypatch.delenv("GANHUB_LIGHT_WORKER_THREADS", raising=False)
    heavy, light = model_worker.worker("cpu").call(where), model_worker.worker("cpu", "light").call(where)
    assert os.getpid() != light["pid"] != heavy["pid"]
    assert light["nice"] == min(19, os.nice(0) + 5) and heavy["nice"] == min(19, os.nice(0) + 10)
    assert light["torch_threads"] == 1
    assert model_worker.status()["cpu:light"]["pid"] == light["pid"]
    with pytest.raises(ValueError, match="Unknown lane 'medium'"):
        model_worker.worker("cpu", "medium")
