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
