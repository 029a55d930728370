"""Lanes glue and ZeroGPU: ``core.ui.jobs``."""

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


def test_model_work_goes_to_the_worker_process_only_inside_a_heavy_lane(monkeypatch):
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
        assert heavy_job() != os.getpid()
        assert list(heavy_stream()) == [0, 1, 4]
        assert light_job() == os.getpid() and ui.offload(where)["pid"] == os.getpid()
        monkeypatch.setenv("GANHUB_MODEL_WORKER", "inline")
        assert heavy_job() == os.getpid()
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


def test_a_warm_up_runs_where_the_heavy_model_work_runs_and_never_raises(monkeypatch, tmp_path, caplog):
    import os

    from core import model_worker
    from tests.support.worker_jobs import write_pid

    monkeypatch.setenv("GANHUB_MODEL_WORKER", "inline")
    ui.warm_up(write_pid, tmp_path / "inline").join(30)
    assert (tmp_path / "inline").read_text() == str(os.getpid())
    monkeypatch.setenv("GANHUB_MODEL_WORKER", "process")
    try:
        ui.warm_up(write_pid, tmp_path / "worker").join(120)
        pid = int((tmp_path / "worker").read_text())
        assert pid != os.getpid() and pid == model_worker.status()["cpu"]["pid"]
        thread = ui.warm_up(write_pid, tmp_path / "missing" / "file")  # the worker's OSError is logged
        thread.join(60)
        assert not thread.is_alive() and "warming up write_pid failed" in caplog.text
    finally:
        model_worker.shutdown()
