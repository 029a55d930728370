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
