"""Lanes glue and ZeroGPU: ``core.ui.jobs``."""

import threading
import time

from core import ui


def test_heavy_handlers_share_one_device_slot():
    import threading
    import time

    active, peak = [0], [0]
    lock = threading.Lock()

    def work():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    @ui.heavy
    def plain():
        work()

    @ui.heavy
    def streaming():
        work()
        yield 1

    threads = [threading.Thread(target=plain) for _ in range(3)]
    threads += [threading.Thread(target=lambda: list(streaming())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


def test_gpu_leaves_a_handler_unchanged_outside_zero_gpu():
    def handler(x):
        return x

    assert ui.gpu(30)(handler) is handler and ui.gpu(lambda x: 10 * x)(handler) is handler


def test_models_are_preloaded_on_zero_gpu_only_and_only_when_their_weights_are_here(isolated_cache, monkeypatch):
    override = isolated_cache / "override"
    override.mkdir()
    (override / "cyclegan.vintage.safetensors").write_bytes(b"")
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    loaded = []
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert ui.preload_on_zero_gpu(["cyclegan.vintage"], load=loaded.append) == [] and loaded == []
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert ui.preload_on_zero_gpu(["cyclegan.vintage", "cyclegan.summer2winter"], load=loaded.append) == [
        "cyclegan.vintage"]
    assert loaded == ["cyclegan.vintage"]


def test_model_work_goes_to_its_lanes_worker_process_only_inside_a_lane(monkeypatch):
    import os

    from core import model_worker
    from tests.support.worker_jobs import squares, where

    monkeypatch.setenv("GANHUB_MODEL_WORKER", "process")

    @ui.heavy
    def heavy_job():
        return ui.offload(where, 1)["pid"]

    @ui.heavy
    def heavy_stream():
        yield from ui.offload_stream(squares, 3)

    @ui.light
    def light_job():
        return ui.offload(where)["pid"]

    try:
        heavy_pid, light_pid = heavy_job(), light_job()
        assert len({heavy_pid, light_pid, os.getpid()}) == 3
        assert heavy_pid == model_worker.status()["cpu"]["pid"] and light_pid == model_worker.status()["cpu:light"]["pid"]
        assert list(heavy_stream()) == [0, 1, 4]
        assert ui.offload(where)["pid"] == os.getpid()  # outside a lane: here
        monkeypatch.setenv("GANHUB_MODEL_WORKER", "inline")
        assert heavy_job() == os.getpid() and light_job() == os.getpid()
    finally:
        model_worker.shutdown()


def test_the_model_worker_is_used_on_a_cpu_by_default_and_never_on_zero_gpu(monkeypatch):
    import pytest

    monkeypatch.delenv("GANHUB_MODEL_WORKER")
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert ui.uses_model_worker("cpu") and not ui.uses_model_worker("cuda") and not ui.uses_model_worker("mps")
    monkeypatch.setenv("GANHUB_MODEL_WORKER", "process")
    assert ui.uses_model_worker("cuda")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert not ui.uses_model_worker("cuda") and not ui.uses_model_worker("cpu")
    monkeypatch.setenv("GANHUB_MODEL_WORKER", "threads")
    with pytest.raises(ValueError, match="GANHUB_MODEL_WORKER must be process, inline or auto"):
        ui.uses_model_worker("cpu")


def test_warm_ups_wait_for_the_server_to_start_then_run_where_their_lanes_work_runs(monkeypatch, tmp_path, caplog):
    import os

    from core import model_worker
    from core.ui import jobs
    from tests.support.worker_jobs import write_pid

    monkeypatch.setattr(jobs, "_warm_ups", [])
    monkeypatch.setattr(jobs, "_started", threading.Event())
    monkeypatch.setenv("GANHUB_MODEL_WORKER", "process")
    ui.warm_up(write_pid, tmp_path / "heavy")
    ui.warm_up(write_pid, tmp_path / "light", lane="light")
    ui.warm_up(write_pid, tmp_path / "missing" / "file", lane="light")  # the worker's OSError is logged
    time.sleep(0.5)
    assert not list(tmp_path.iterdir()), "an app's import must not start its warm-ups"
    try:
        threads = ui.start_warm_ups()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
        workers = model_worker.status()
        assert int((tmp_path / "heavy").read_text()) == workers["cpu"]["pid"] != os.getpid()
        assert int((tmp_path / "light").read_text()) == workers["cpu:light"]["pid"] != os.getpid()
        assert "warming up write_pid failed" in caplog.text
        monkeypatch.setenv("GANHUB_MODEL_WORKER", "inline")
        ui.warm_up(write_pid, tmp_path / "inline")  # once started, a warm-up runs at once
        deadline = time.monotonic() + 30
        while not ((tmp_path / "inline").exists() and (tmp_path / "inline").read_text()) \
                and time.monotonic() < deadline:  # written by the warm-up's thread: wait for the whole id
            time.sleep(0.05)
        assert (tmp_path / "inline").read_text() == str(os.getpid())
    finally:
        model_worker.shutdown()
