"""The process-wide LRU cache: byte budgets per kind of memory, one load per key."""

import threading

import torch

from core.cache import ModelCache, module_bytes


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
