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


def test_cuda_dtype_comes_from_the_manifest_field():
    assert device.default_dtype("cuda", "float16") == torch.float16
    assert device.default_dtype("cuda", "bfloat16") == torch.bfloat16
    assert device.default_dtype("cuda", None) == torch.float32  # not measured: no reduced precision
    assert device.default_dtype("cpu", "float16") == torch.float32  # the field is about CUDA only
    assert device.default_dtype("mps", "float16") == torch.float32
    with pytest.raises(ValueError, match="cuda_dtype must be one of"):
        device.default_dtype("cuda", "half")


def test_every_generator_loaded_for_cuda_takes_its_manifest_dtype():
    from core.models import ARCHITECTURES
    from core.weights import dtype_for, load_manifest

    for model_id, entry in load_manifest().items():
        if entry.arch not in ARCHITECTURES:  # diffusers, transformers, external files: their own loaders
            continue
        assert "cuda_dtype" in entry.info, f"{model_id} has no cuda_dtype"
        assert dtype_for(model_id, "cuda") == getattr(torch, entry.info["cuda_dtype"])
        assert dtype_for(model_id, "cpu") == torch.float32
    # generators searched with gradients (PULSE) stay in float32
    assert dtype_for("stylegan2.ffhq1024", "cuda") == torch.float32
    assert dtype_for("dcgan.faces64", "cuda") == torch.float32


def test_cache_get_builds_with_the_manifest_dtype(monkeypatch):
    import core.weights

    built = []
    monkeypatch.setattr(core.weights, "_build_model", lambda model_id, dev, dtype: built.append((dev, dtype)) or
                        torch.nn.Linear(1, 1))
    cache = ModelCache()
    cache.get("cyclegan.vintage", device="cuda")  # nothing runs on the device: the builder is replaced
    cache.get("stylegan2.ffhq1024", device="cuda")
    cache.get("cyclegan.vintage", device="cpu")
    entry_dtype = getattr(torch, core.weights.get_entry("cyclegan.vintage").info["cuda_dtype"])
    assert built == [(torch.device("cuda"), entry_dtype), (torch.device("cuda"), torch.float32),
                     (torch.device("cpu"), torch.float32)]
    # counted on the device it was asked for, whatever the stand-in holds
    assert cache.total_bytes("cuda") == 2 * module_bytes(torch.nn.Linear(1, 1))


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


def test_ram_and_each_accelerator_have_their_own_budget():
    def linear(n, device="cpu"):
        return lambda: torch.nn.Linear(n, n, bias=False, device=device)  # n*n*4 bytes

    size = 64 * 64 * 4
    cache = ModelCache(budget_bytes=2 * size, vram_budget_bytes=size)
    cache.get_or_load(("ram", 1), linear(64))
    cache.get_or_load(("gpu", 1), linear(64), device="cuda")  # accounting only: the key's device
    cache.get_or_load(("ram", 2), linear(64))
    # RAM holds 2 models, VRAM 1: nothing was evicted, although the total is 3 models
    assert set(cache.keys()) == {("ram", 1), ("gpu", 1), ("ram", 2)}
    assert (cache.total_bytes("cpu"), cache.total_bytes("cuda"), cache.total_bytes()) == (2 * size, size, 3 * size)
    cache.get_or_load(("gpu", 2), linear(64), device=torch.device("cuda", 0))
    assert set(cache.keys()) == {("ram", 1), ("ram", 2), ("gpu", 2)}  # only the other GPU model went
    cache.get_or_load(("ram", 3), linear(64))
    assert set(cache.keys()) == {("ram", 2), ("gpu", 2), ("ram", 3)}  # only the oldest RAM model went
    # without a device, a value is counted where its tensors are (meta has the VRAM budget here)
    cache.get_or_load(("meta", 1), linear(128, device="meta"))
    assert cache.total_bytes("meta") == 128 * 128 * 4 and ("gpu", 2) in cache.keys()


def test_device_kind_and_default_budgets(monkeypatch):
    from core.cache import default_budget, device_kind

    assert device_kind(torch.nn.Linear(2, 2)) == "cpu"
    assert device_kind(torch.nn.Linear(2, 2, device="meta")) == "meta"
    assert device_kind((torch.zeros(1, device="meta"), torch.zeros(1))) == "meta"
    assert device_kind(object()) == "cpu"
    monkeypatch.setenv("GANHUB_MODEL_CACHE_MB", "100")
    monkeypatch.setenv("GANHUB_MODEL_CACHE_VRAM_MB", "30")
    assert (default_budget("cpu"), default_budget("cuda"), default_budget("mps")) == (100 * 2**20, 30 * 2**20, 30 * 2**20)
    monkeypatch.delenv("GANHUB_MODEL_CACHE_VRAM_MB")
    if not torch.cuda.is_available():
        assert default_budget("cuda") == 100 * 2**20  # no CUDA device to measure: the RAM budget
    else:
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        assert default_budget("cuda") == int(total * 0.5)
    assert ModelCache().budget_for("cpu") == 100 * 2**20


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
    assert not enabled("cuda", "bfloat16")  # CUDA has its own policy (cuda_dtype weights)
    monkeypatch.setenv("GANHUB_CPU_BF16", "0")
    assert not enabled("cpu", "bfloat16")
    monkeypatch.setenv("GANHUB_CPU_BF16", "auto")
    assert enabled("cpu", "bfloat16") == device.cpu_has_native_bfloat16()
