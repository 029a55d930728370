"""Loading text-to-image pipelines and TAESD from their pinned Hub snapshots, and decoding latents.

A pipeline is loaded once per process (``core.cache.MODEL_CACHE``) from the snapshot the
manifest pins (``core.weights.resolve_snapshot``: safetensors only, no remote code), in the
dtype :func:`pipeline_dtype` picks for the device. Previews are decoded with TAESD
(``diffusers.taesd``) when it is on this machine, otherwise with a linear latent->RGB map.
diffusers is imported lazily: importing this module stays cheap (:func:`import_diffusers`
imports it ahead when a model's weights are here). On CPUs whose manifest row says so, the UNet
runs on OpenVINO (:mod:`core.pipelines.text_to_image_openvino`): from its cached IR without
building the torch UNet, or, on the first start with these weights, eager torch serves while the
IR is converted in the background.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core import cpu_backend
from core.pipelines import text_to_image_openvino as openvino_unet
from core.cache import MODEL_CACHE, module_bytes
from core.device import cpu_bfloat16, get_device
from core.weights import WeightsUnavailableError, dtype_for, get_entry, resolve_snapshot, sha256_of

TAESD_ID = "diffusers.taesd"
SUPPORTED_PIPELINES = ("StableDiffusionPipeline",)
# Linear map from SD 1.x/2.x latents (4 channels) to approximate RGB in [-1, 1]: the preview
# used by popular UIs when no decoder is at hand. Rows are latent channels, columns R, G, B.
LATENT_RGB_FACTORS = torch.tensor([
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
])


def pipeline_dtype(model_id: str, device: torch.device) -> torch.dtype:
    """The dtype of ``model_id``'s pipeline on ``device``: off the CPU its manifest's ``cuda_dtype``
    (``core.weights.dtype_for``). On CPUs bfloat16 where :func:`core.device.cpu_bfloat16` says so
    (native bfloat16 by default: measured 1.7x faster than float32 end to end, images within
    52-60 dB PSNR of the float32 ones), else float32."""
    if device.type != "cpu":
        return dtype_for(model_id, device)
    return torch.bfloat16 if cpu_bfloat16() else torch.float32


def model_defaults(model_id: str) -> dict:
    """Steps, guidance and size limits of a text-to-image manifest entry."""
    entry = get_entry(model_id)
    if entry.arch != "diffusers" or entry.config.get("pipeline") not in SUPPORTED_PIPELINES:
        raise ValueError(f"{model_id} is not a text-to-image pipeline (supported: {', '.join(SUPPORTED_PIPELINES)}).")
    c = entry.config
    size = int(c.get("size", 512))
    return {
        "steps": int(c.get("steps", 25)), "max_steps": int(c.get("max_steps", 50)),
        "guidance_scale": float(c.get("guidance_scale", 7.5)), "size": size,
        "min_size": int(c.get("min_size", size // 2)), "max_size": int(c.get("max_size", size * 3 // 2)),
    }


def hf_source(model_id: str):
    """The manifest entry of a diffusers model and its Hugging Face Hub source (ValueError otherwise)."""
    entry = get_entry(model_id)
    sources = [s for s in entry.sources if s.kind == "hf"]
    if entry.arch != "diffusers" or not sources:
        raise ValueError(f"{model_id} is not a diffusers model with a Hugging Face Hub source.")
    return entry, sources[0]


def _verify_files(folder: Path, spec: dict, model_id: str) -> None:
    """Check the sha256 of the files the manifest pins (the Hub checks the rest by etag)."""
    for name, expected in spec.get("files_sha256", {}).items():
        actual = sha256_of(folder / name)
        if actual != expected:
            raise WeightsUnavailableError(model_id, f"{model_id}: sha256 of {name} is {actual[:16]}..., the "
                                                    f"manifest expects {expected[:16]}...; delete the cached "
                                                    f"snapshot and fetch it again.")


def _snapshot(model_id: str, download: bool) -> Path:
    entry, src = hf_source(model_id)
    folder = resolve_snapshot(model_id, download=download)
    _verify_files(folder, src.spec, model_id)
    return folder


def _cache_key(kind: str, model_id: str, device: torch.device, dtype: torch.dtype) -> tuple:
    _, src = hf_source(model_id)
    return (kind, model_id, src.spec["repo_id"], src.spec["revision"], str(device), str(dtype))


def _pipeline_bytes(pipe) -> int:
    return sum(module_bytes(m) + getattr(m, "weight_bytes", 0) for m in pipe.components.values()
               if isinstance(m, torch.nn.Module))


def import_diffusers() -> None:
    """Import diffusers' pipeline machinery and transformers: ~7 s that the first load would otherwise
    wait for (apps run it ahead with ``ui.warm_up`` when a model's weights are here)."""
    from diffusers import StableDiffusionPipeline  # noqa: F401  (the import is the point)
    from transformers import CLIPTextModel  # noqa: F401


def load_pipeline(model_id: str, device: torch.device | None = None, dtype: torch.dtype | None = None,
                  download: bool = True):
    """The diffusers pipeline of ``model_id`` on ``device`` (loaded once; raises WeightsUnavailableError)."""
    device = device or get_device()
    dtype = dtype or pipeline_dtype(model_id, device)
    entry, _ = hf_source(model_id)
    model_defaults(model_id)  # refuses unsupported pipeline classes

    def load():
        folder = _snapshot(model_id, download)
        backend = cpu_backend.unet_backend(entry.info.get("cpu_backend"), device, dtype)
        compiled = openvino_unet.compile_cached(folder / "unet") if backend == "openvino" else None
        pipe = _from_pretrained(folder, entry, dtype, compiled)
        lock = pipe._ganhub_lock = threading.Lock()  # one generation at a time per pipeline object
        pipe = cpu_backend.configure(pipe.to(device), entry.info.get("cpu_backend"), device)
        if backend == "openvino" and compiled is None:
            if openvino_unet.openvino_version() is None:
                openvino_unet.report_once("OpenVINO is not installed (pip install -r requirements.txt); the "
                                          "UNet runs on eager torch.")
            else:
                pipe._ganhub_openvino = openvino_unet.switch_in_background(pipe, folder / "unet", lock)
        return pipe

    return MODEL_CACHE.get_or_load(_cache_key("pipeline", model_id, device, dtype), load, size=_pipeline_bytes)


def _from_pretrained(folder: Path, entry, dtype: torch.dtype, compiled_unet=None):
    """The pipeline of the snapshot in ``folder`` with the manifest's scheduler; with
    ``compiled_unet`` (OpenVINO) in place of the torch UNet, which is then never built."""
    import diffusers

    pipeline_class = getattr(diffusers, entry.config["pipeline"])
    unet = {"unet": None} if compiled_unet is not None else {}
    pipe = pipeline_class.from_pretrained(
        folder, use_safetensors=True, local_files_only=True, dtype=dtype,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False, **unet,
    )
    if compiled_unet is not None:
        pipe.register_modules(unet=compiled_unet)
    wanted = entry.config.get("scheduler")
    if wanted and type(pipe.scheduler).__name__ != wanted:
        scheduler_class = getattr(diffusers, wanted, None)
        if scheduler_class is None or not issubclass(scheduler_class, diffusers.SchedulerMixin):
            raise ValueError(f"{entry.id}: unknown scheduler {wanted!r} in the manifest.")
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_taesd(device: torch.device | None = None, dtype: torch.dtype | None = None, download: bool = False):
    """The TAESD decoder (``diffusers.taesd``); raises WeightsUnavailableError or ValueError (not in manifest)."""
    device = device or get_device()
    dtype = dtype or pipeline_dtype(TAESD_ID, device)

    def load():
        from diffusers import AutoencoderTiny

        folder = _snapshot(TAESD_ID, download)
        return AutoencoderTiny.from_pretrained(folder, use_safetensors=True, local_files_only=True,
                                               dtype=dtype).to(device).eval()

    return MODEL_CACHE.get_or_load(_cache_key("taesd", TAESD_ID, device, dtype), load)


def try_load_taesd(device=None, dtype=None, download: bool = False):
    """TAESD, or None when it is not available here (never an error)."""
    try:
        return load_taesd(device, dtype, download=download)
    except (WeightsUnavailableError, ValueError):
        return None


def missing_message(model_id: str) -> str:
    """What to download, and how, when a diffusers snapshot is not on this machine."""
    entry, src = hf_source(model_id)
    s = src.spec
    includes = " ".join(f"--include '{p}'" for p in s.get("allow_patterns", []))
    excludes = " ".join(f"--exclude '{p}'" for p in s.get("ignore_patterns", []))
    return (
        f"The weights of {entry.title} (`{model_id}`, Hugging Face Hub `{s['repo_id']}` at commit "
        f"`{s['revision'][:12]}`) are not on this machine. Licence: {entry.license}\n\n"
        f"Download them with `python -m core.weights fetch {model_id}` (or "
        f"`hf download {s['repo_id']} --revision {s['revision']} {includes} {excludes}`) on a machine that can "
        f"reach the Hub, then copy its `$HF_HOME/hub/models--{s['repo_id'].replace('/', '--')}` folder into this "
        f"machine's `$HF_HOME/hub/` (HF_HOME defaults to ~/.cache/huggingface)."
    )


# --------------------------------------------------------------------------- previews and decoding


def latents_to_rgb(latents: torch.Tensor) -> torch.Tensor:
    """Cheap approximate RGB in [-1, 1] at latent resolution (N, 3, h, w)."""
    factors = LATENT_RGB_FACTORS.to(latents.device, torch.float32)
    return torch.einsum("nchw,cr->nrhw", latents.float(), factors).clamp(-1, 1)


def to_pil_images(images: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] -> RGB PIL images (resized to ``size`` = (w, h) when given)."""
    array = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    pils = [Image.fromarray(np.ascontiguousarray(a)) for a in array]
    if size is not None:
        pils = [p if p.size == size else p.resize(size, Image.Resampling.BILINEAR) for p in pils]
    return pils


@torch.inference_mode()
def decode_preview(latents: torch.Tensor, size: tuple[int, int], taesd=None) -> list[Image.Image]:
    if taesd is not None:
        images = taesd.decode(latents.to(taesd.dtype), return_dict=False)[0]
    else:
        images = latents_to_rgb(latents)
    return to_pil_images(images, size)


@torch.inference_mode()
def decode_final(pipe, latents: torch.Tensor, taesd=None) -> torch.Tensor:
    """Latents -> images in [-1, 1] with the pipeline's VAE, or TAESD (which takes the latents as they are)."""
    if taesd is not None:
        return taesd.decode(latents.to(taesd.dtype), return_dict=False)[0]
    vae = pipe.vae
    return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]


def truncated_part(tokenizer, text: str) -> str | None:
    """The part of ``text`` the text encoder ignores (it reads ``model_max_length`` tokens), or None."""
    if not text:
        return None
    ids = tokenizer(text, truncation=False, add_special_tokens=True).input_ids
    limit = tokenizer.model_max_length
    if len(ids) <= limit:
        return None
    cut = tokenizer.decode(ids[limit - 1:-1], skip_special_tokens=True).strip()
    return cut if len(cut) <= 300 else cut[:150] + " ... " + cut[-150:]


def default_fast_decode() -> bool:
    """TAESD for the final image by default on CPUs (where the full VAE decode is a large share of the time)."""
    return os.environ.get("GANHUB_T2I_FAST_DECODE", "1" if get_device().type == "cpu" else "0") == "1"
