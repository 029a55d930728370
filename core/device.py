"""Device and dtype policy shared by every app.

Order of preference: CUDA > Apple MPS > CPU. ``GANHUB_DEVICE`` forces one (e.g. ``cpu``).
"""

from __future__ import annotations

import os

import torch


def get_device() -> torch.device:
    """The device models run on: ``GANHUB_DEVICE`` if set, else cuda > mps > cpu."""
    forced = os.environ.get("GANHUB_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


CUDA_DTYPES = ("float16", "bfloat16", "float32")


def default_dtype(device: torch.device | str, cuda_dtype: str | None = None) -> torch.dtype:
    """Inference dtype of a generator's weights on ``device``.

    On CUDA it is the model's manifest field ``cuda_dtype`` (float32 when absent: reduced
    precision is opt-in, per model, once its error is measured; see ``bench/gpu_check.py``).
    On CPU and MPS it is float32: CPU speed-ups come from bfloat16 autocast instead
    (:func:`autocast`), and MPS's fp16 support is uneven.
    """
    if torch.device(device).type != "cuda" or cuda_dtype is None:
        return torch.float32
    if cuda_dtype not in CUDA_DTYPES:
        raise ValueError(f"cuda_dtype must be one of {', '.join(CUDA_DTYPES)}, got {cuda_dtype!r}.")
    return getattr(torch, cuda_dtype)


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


CPU_BF16_VARIABLE = "GANHUB_CPU_BF16"


def cpu_bfloat16() -> bool:
    """Whether CPU work that may run in bfloat16 does (autocast generators, text-to-image weights).

    bfloat16 is ~1.4-2x faster than float32 on a CPU that computes it natively and slower where it
    is emulated, so the default (``GANHUB_CPU_BF16=auto``) follows the hardware; ``0`` keeps
    float32 everywhere, ``1`` uses bfloat16 on any CPU.
    """
    setting = os.environ.get(CPU_BF16_VARIABLE, "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting != "auto":
        raise ValueError(f"{CPU_BF16_VARIABLE} must be 0, 1 or auto (got {setting!r}).")
    return cpu_has_native_bfloat16()


def autocast(device: torch.device | str, cpu_autocast: str | None):
    """The reduced-precision context a model runs under on ``device``.

    ``cpu_autocast`` is the model's manifest field: ``"bfloat16"`` for generators whose output
    stays within a couple of 8-bit levels of fp32 (measured in bench/RESULTS.md on the trained
    weights). It applies where :func:`cpu_bfloat16` says so. (On CUDA the weights themselves are
    cast: see :func:`default_dtype`.)
    """
    import contextlib

    if torch.device(device).type != "cpu" or cpu_autocast != "bfloat16" or not cpu_bfloat16():
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_allocator() -> bool:
    """Let glibc keep freed memory for reuse instead of mapping fresh pages for every tensor.

    By default glibc serves allocations above its mmap threshold (at most 32 MB) with fresh
    ``mmap`` pages and unmaps them on free, so every large activation costs a page fault per
    4 KB, and pages freed at the top of the heap go back to the OS. With mmap off and a 1 GiB
    trim threshold, large tensors reuse the process's pages, so a large generator's time goes to
    computing rather than to page faults (bench/RESULTS.md, "default malloc" column: StyleGAN2
    1024 synthesis takes about 1.5x as long without it). The cost: memory freed after a large
    job stays with the process (its RSS keeps its high-water mark) for the next one.
    Called by the entry points (apps, hub, benchmarks), never on import. Returns whether it
    applied; ``GANHUB_MALLOC_TUNING=0`` turns it off, and it does nothing outside Linux/glibc.
    """
    if os.environ.get("GANHUB_MALLOC_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded ``torch.Generator`` (CPU generators are used for reproducible noise on any device)."""
    return torch.Generator(device=device).manual_seed(int(seed))
