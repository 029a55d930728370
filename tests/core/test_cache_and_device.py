import platform
import threading

import pytest
import torch

from core import device
from core.cache import ModelCache, module_bytes


def test_device_policy(monkeypatch):
    monkeypatch.setenv("GANHUB_DEVICE", "cpu")
    assert device.get_device() == torch.device("cpu")
    monkeypatch.delenv("GANHUB_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert device.get_device().type == expected
    assert device.default_dtype(torch.device("cpu")) == torch.float32
    assert device.default_dtype(torch.device("cuda")) == torch.float16


def test_seeded_generator_is_reproducible():
    a = torch.randn(4, generator=device.make_generator(7))
    b = torch.randn(4, generator=device.make_generator(7))
    assert torch.equal(a, b)


def test_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert device.configure_threads(1) == 1
    finally:
        torch.set_num_threads(before)


def test_cache_loads_once_and_evicts_least_recently_used():
    calls = []

    def loader(n):
        def load():
            calls.append(n)
            return torch.nn.Linear(n, n, bias=False)  # n*n*4 bytes
        return load

    cache = ModelCache(budget_bytes=2 * 64 * 64 * 4 + 1)
    first = cache.get_or_load(("a",), loader(64))
    assert cache.get_or_load(("a",), loader(64)) is first
    cache.get_or_load(("b",), loader(64))
    cache.get_or_load(("a",), loader(64))  # a is now the most recent
    cache.get_or_load(("c",), loader(64))  # over budget: b goes
    assert set(cache.keys()) == {("a",), ("c",)}
    assert calls == [64, 64, 64]
    assert cache.total_bytes() == 2 * module_bytes(first)


def test_concurrent_requests_load_a_model_once():
    calls = []
    gate = threading.Event()

    def slow():
        gate.wait(2)
        calls.append(1)
        return torch.nn.Linear(2, 2)

    cache = ModelCache()
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load(("m",), slow))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r is results[0] for r in results)


_RSS_PROBE = """
import sys, torch
from core.device import tune_allocator
applied = tune_allocator()
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
blocks = [torch.ones(2**25) for _ in range(4)]  # 4 x 128 MB
held = rss_mb()
del blocks
print(applied, round(held - rss_mb()))
"""


def _probe(env_value):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, GANHUB_MALLOC_TUNING=env_value, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-c", _RSS_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    applied, released_mb = out.stdout.split()
    return applied == "True", int(released_mb)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the mallopt tuning applies to Linux/glibc only")
def test_allocator_tuning_keeps_freed_large_tensors_for_reuse():
    applied, released_mb = _probe("1")
    assert applied and released_mb < 50  # the 512 MB stays with the process for the next job
    applied, released_mb = _probe("0")
    assert not applied and released_mb > 450  # glibc's default: large blocks go straight back


def test_cpu_autocast_policy(monkeypatch):
    def enabled(dev, field):
        with device.autocast(dev, field):
            return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16

    monkeypatch.setenv("GANHUB_CPU_BF16", "1")
    assert enabled("cpu", "bfloat16")
    assert not enabled("cpu", None)  # no opt-in in the manifest: fp32
    assert not enabled("cuda", "bfloat16")  # CUDA has its own policy (fp16 weights)
    monkeypatch.setenv("GANHUB_CPU_BF16", "0")
    assert not enabled("cpu", "bfloat16")
    monkeypatch.setenv("GANHUB_CPU_BF16", "auto")
    assert enabled("cpu", "bfloat16") == device.cpu_has_native_bfloat16()
