"""Device and dtype policy, seeded generators, the allocator tuning and CPU autocast."""

import platform

import pytest
import torch

from core import device


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


def test_seeded_generator_is_reproducible():
    a = torch.randn(4, generator=device.make_generator(7))
    b = torch.randn(4, generator=device.make_generator(7))
    assert torch.equal(a, b)


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


def test_one_variable_decides_cpu_bfloat16(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.delenv("GANHUB_CPU_BF16", raising=False)
    assert device.cpu_bfloat16() is False  # auto: emulated bfloat16 is slower, so float32
    monkeypatch.setattr(device, "cpu_has_native_bfloat16", lambda: True)
    assert device.cpu_bfloat16() is True
    for value, expected in (("0", False), ("off", False), ("1", True), (" Yes ", True), ("AUTO", True)):
        monkeypatch.setenv("GANHUB_CPU_BF16", value)
        assert device.cpu_bfloat16() is expected, value
    monkeypatch.setenv("GANHUB_CPU_BF16", "bfloat16")
    with pytest.raises(ValueError, match=r"GANHUB_CPU_BF16 must be 0, 1 or auto \(got 'bfloat16'\)"):
        device.cpu_bfloat16()
