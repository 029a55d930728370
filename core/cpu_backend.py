"""How a text-to-image pipeline is configured on a CPU, per CPU feature set.

The choice is model metadata: the manifest field ``cpu_backend`` of a text-to-image entry maps a
feature set (:data:`FEATURE_SETS`) to the levers measured in bench/RESULTS.md (issue 20):

- ``channels_last``: the UNet's weights and activations in NHWC, the layout oneDNN's convolutions
  compute in (no reorder of every activation on the way in and out);
- ``attention``: the scaled-dot-product backend, ``"flash"`` (the fused CPU kernel, which never
  materialises the 4096x4096 score matrix at 512 px) or ``"math"`` (the reference three-op path);
  ``"default"`` leaves torch's own choice;
- ``unet``: which engine runs the UNet, ``"torch"`` (eager) or ``"openvino"`` (its CPU plugin, on
  an IR converted from the same safetensors: :mod:`core.pipelines.text_to_image_openvino`).
  ``GANHUB_T2I_BACKEND=torch|openvino`` overrides the manifest; OpenVINO runs only float32 CPU
  pipelines, and only where it is installed (else torch, logged once).

The dtype per feature set is :func:`core.pipelines.text_to_image.pipeline_dtype` (bfloat16 where
the CPU computes it natively). CUDA and MPS pipelines are never touched.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import torch

FEATURE_SETS = ("avx2", "avx512", "avx512_bf16")  # avx512_bf16 also covers AMX (which implies it)
ATTENTION_BACKENDS = ("default", "flash", "math")
UNET_BACKENDS = ("torch", "openvino")
LEVERS = {"channels_last": bool, "attention": str, "unet": str}
DEFAULT_LEVERS = {"channels_last": False, "attention": "default", "unet": "torch"}
BACKEND_VARIABLE = "GANHUB_T2I_BACKEND"


def feature_set(cpu_flags: str | None = None) -> str:
    """The feature set of this CPU (or of ``cpu_flags``, a /proc/cpuinfo ``flags`` text).

    Anything without AVX-512 counts as ``avx2``: the baseline row, which only chooses levers
    that help on any CPU.
    """
    if cpu_flags is None:
        try:
            cpu_flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpu_flags = ""
    flags = set(re.findall(r"[a-z0-9_]+", cpu_flags.lower()))
    if flags & {"avx512_bf16", "amx_bf16"}:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def manifest_problems(where: str, field) -> list[str]:
    """What is wrong with a manifest entry's ``cpu_backend`` field (None: absent, which is fine)."""
    if field is None:
        return []
    if not isinstance(field, dict) or set(field) != set(FEATURE_SETS):
        return [f"{where} cpu_backend must map each of {', '.join(FEATURE_SETS)} to its levers"]
    problems = []
    for name, levers in field.items():
        if not isinstance(levers, dict) or set(levers) != set(LEVERS):
            problems.append(f"{where} cpu_backend.{name} must set exactly {', '.join(LEVERS)}")
            continue
        if not isinstance(levers["channels_last"], bool):
            problems.append(f"{where} cpu_backend.{name}.channels_last must be true or false")
        if levers["attention"] not in ATTENTION_BACKENDS:
            problems.append(f"{where} cpu_backend.{name}.attention must be one of {', '.join(ATTENTION_BACKENDS)}")
        if levers["unet"] not in UNET_BACKENDS:
            problems.append(f"{where} cpu_backend.{name}.unet must be one of {', '.join(UNET_BACKENDS)}")
    return problems


def chosen_levers(field: dict | None, cpu_flags: str | None = None) -> dict:
    """The levers the manifest field chooses for this CPU (defaults when the entry has none)."""
    return {**DEFAULT_LEVERS, **((field or {}).get(feature_set(cpu_flags), {}))}


def unet_backend(field: dict | None, device: torch.device, dtype: torch.dtype) -> str:
    """``"openvino"`` or ``"torch"``: the manifest's choice for this CPU, or ``GANHUB_T2I_BACKEND``'s.
    Always torch off the CPU and for reduced-precision pipelines (OpenVINO is measured in float32);
    the manifest's rows are x86 measurements, so other CPUs (ARM) use torch unless overridden."""
    setting = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if setting not in ("", "auto", *UNET_BACKENDS):
        raise ValueError(f"{BACKEND_VARIABLE} must be torch, openvino or auto (got {setting!r}).")
    if torch.device(device).type != "cpu" or dtype != torch.float32:
        return "torch"
    if setting in UNET_BACKENDS:
        return setting
    return chosen_levers(field)["unet"] if platform.machine().lower() in ("x86_64", "amd64") else "torch"


def configure(pipe, field: dict | None, device: torch.device):
    """Apply the chosen levers to a loaded diffusers pipeline on a CPU; return it (as is elsewhere)."""
    if torch.device(device).type != "cpu":
        return pipe
    levers = chosen_levers(field)
    if not isinstance(pipe.unet, torch.nn.Module) or not hasattr(pipe.unet, "set_attn_processor"):
        return pipe  # not a torch UNet (OpenVINO's): nothing to configure
    if levers["channels_last"]:
        pipe.unet.to(memory_format=torch.channels_last)
    if levers["attention"] != "default":
        pipe.unet.set_attn_processor(_FixedBackendProcessor(levers["attention"]))
    return pipe


class _FixedBackendProcessor:
    """diffusers' SDPA attention processor, run under one SDPA backend."""

    def __init__(self, backend: str):
        from diffusers.models.attention_processor import AttnProcessor2_0
        from torch.nn.attention import SDPBackend

        self.inner = AttnProcessor2_0()
        self.backend = {"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}[backend]

    def __call__(self, *args, **kwargs):
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel([self.backend]):
            return self.inner(*args, **kwargs)
