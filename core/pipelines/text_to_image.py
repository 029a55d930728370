"""Text to image with Stable Diffusion pipelines listed in the manifest (``arch: diffusers``).

1. :func:`make_request` checks and completes the user's settings (model defaults, a random
   seed when none is given) and raises ``ValueError`` with a message fit for the user.
2. :func:`start` loads the pipeline once per process (``core.cache.MODEL_CACHE``) from the
   pinned Hub snapshot (``core.weights.resolve_snapshot``, safetensors only, no remote code) and
   runs it in a worker thread. Iterating the returned :class:`Generation` yields a
   :class:`Preview` after every denoising step (with images while previews stay within
   ``PREVIEW_MAX_SHARE`` of the time) and finally a :class:`Result`;
   :meth:`Generation.cancel` stops the pipeline after the step that is running.
3. Every image carries its settings as A1111-style ``parameters`` text (:func:`infotext`),
   which :func:`parse_infotext` / :func:`read_parameters` read back.

Previews are decoded with TAESD (``diffusers.taesd``) when it is on this machine, otherwise with
a linear latent->RGB map. diffusers is imported lazily: importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core import cpu_backend
from core.cache import MODEL_CACHE, module_bytes
from core.device import get_device, make_generator
from core.weights import WeightsUnavailableError, get_entry, resolve_snapshot, sha256_of

TAESD_ID = "diffusers.taesd"
SUPPORTED_PIPELINES = ("StableDiffusionPipeline",)
MAX_IMAGES = 4
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 4000
MAX_GUIDANCE = 30.0
# Previews may take at most this share of a run: TAESD decodes a 512x512 preview in about 2 CPU-seconds on
# one core, so on slow CPUs a preview is skipped until enough denoising time has passed since the last one.
PREVIEW_MAX_SHARE = 0.1
# Linear map from SD 1.x/2.x latents (4 channels) to approximate RGB in [-1, 1]: the preview
# used by popular UIs when no decoder is at hand. Rows are latent channels, columns R, G, B.
LATENT_RGB_FACTORS = torch.tensor([
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
])


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Request:
    """Complete, validated settings of one generation."""

    model_id: str
    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    width: int
    height: int
    seed: int
    num_images: int = 1
    fast_decode: bool = False

    @property
    def seeds(self) -> list[int]:
        """One seed per image: ``seed``, ``seed + 1``, ... (as A1111 does for a batch)."""
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.num_images)]


def random_seed() -> int:
    return random.SystemRandom().randrange(MAX_SEED + 1)


def model_defaults(model_id: str) -> dict[str, Any]:
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


def _check_size(name: str, value: Any, low: int, high: int) -> int:
    if value is None or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number of pixels (got {value!r}).")
    value = int(value)
    if value % 8 or not low <= value <= high:
        raise ValueError(f"{name} must be a multiple of 8 between {low} and {high} pixels for this model "
                         f"(got {value}).")
    return value


def make_request(model_id: str, prompt: str, negative_prompt: str = "", steps: int | None = None,
                 guidance_scale: float | None = None, width: int | None = None, height: int | None = None,
                 seed: int | None = None, num_images: int = 1, fast_decode: bool = False) -> Request:
    """Validate the settings and fill in the model's defaults; ``seed`` None or negative = random."""
    d = model_defaults(model_id)
    prompt = (prompt or "").strip()
    negative_prompt = (negative_prompt or "").strip()
    if not prompt:
        raise ValueError("The prompt is empty: describe the picture you want, "
                         "e.g. 'a lighthouse on a cliff at sunset'.")
    for name, text in (("prompt", prompt), ("negative prompt", negative_prompt)):
        if len(text) > MAX_PROMPT_CHARS:
            raise ValueError(f"The {name} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS} "
                             f"(the text encoder reads only about the first 60 words anyway).")
    steps = d["steps"] if steps is None else steps
    if not float(steps).is_integer() or not 1 <= int(steps) <= d["max_steps"]:
        raise ValueError(f"Steps must be a whole number from 1 to {d['max_steps']} for this model (got {steps}).")
    guidance_scale = d["guidance_scale"] if guidance_scale is None else float(guidance_scale)
    if not 0.0 <= guidance_scale <= MAX_GUIDANCE:
        raise ValueError(f"Guidance must be between 0 and {MAX_GUIDANCE:g} (got {guidance_scale:g}).")
    width = _check_size("Width", d["size"] if width is None else width, d["min_size"], d["max_size"])
    height = _check_size("Height", d["size"] if height is None else height, d["min_size"], d["max_size"])
    if not float(num_images).is_integer() or not 1 <= int(num_images) <= MAX_IMAGES:
        raise ValueError(f"The number of images must be from 1 to {MAX_IMAGES} (got {num_images}).")
    if seed is None or seed < 0:
        seed = random_seed()
    elif not float(seed).is_integer() or seed > MAX_SEED:
        raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED}, or -1 for a random one (got {seed}).")
    return Request(model_id, prompt, negative_prompt, int(steps), guidance_scale, width, height, int(seed),
                   int(num_images), bool(fast_decode))


# --------------------------------------------------------------------------- loading


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes in bfloat16 natively (AVX512-BF16 or AMX; read from /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def pipeline_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA and MPS. On CPUs bfloat16 where the CPU has native bfloat16 (measured 1.7x faster than
    float32 end to end, images within 52-60 dB PSNR of the float32 ones), else float32;
    ``GANHUB_T2I_CPU_DTYPE=float32|bfloat16`` forces one."""
    if device.type in ("cuda", "mps"):
        return torch.float16
    forced = os.environ.get("GANHUB_T2I_CPU_DTYPE", "").strip().lower()
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise ValueError(f"GANHUB_T2I_CPU_DTYPE must be float32 or bfloat16 (got {forced!r}).")
        return getattr(torch, forced)
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def _hf_source(model_id: str):
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
    entry, src = _hf_source(model_id)
    folder = resolve_snapshot(model_id, download=download)
    _verify_files(folder, src.spec, model_id)
    return folder


def _cache_key(kind: str, model_id: str, device: torch.device, dtype: torch.dtype) -> tuple:
    _, src = _hf_source(model_id)
    return (kind, model_id, src.spec["repo_id"], src.spec["revision"], str(device), str(dtype))


def _pipeline_bytes(pipe) -> int:
    return sum(module_bytes(m) for m in pipe.components.values() if isinstance(m, torch.nn.Module))


def load_pipeline(model_id: str, device: torch.device | None = None, dtype: torch.dtype | None = None,
                  download: bool = True):
    """The diffusers pipeline of ``model_id`` on ``device`` (loaded once; raises WeightsUnavailableError)."""
    device = device or get_device()
    dtype = dtype or pipeline_dtype(device)
    entry, _ = _hf_source(model_id)
    model_defaults(model_id)  # refuses unsupported pipeline classes

    def load():
        import diffusers

        folder = _snapshot(model_id, download)
        pipeline_class = getattr(diffusers, entry.config["pipeline"])
        pipe = pipeline_class.from_pretrained(
            folder, use_safetensors=True, local_files_only=True, dtype=dtype,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        wanted = entry.config.get("scheduler")
        if wanted and type(pipe.scheduler).__name__ != wanted:
            scheduler_class = getattr(diffusers, wanted, None)
            if scheduler_class is None or not issubclass(scheduler_class, diffusers.SchedulerMixin):
                raise ValueError(f"{model_id}: unknown scheduler {wanted!r} in the manifest.")
            pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        pipe._ganhub_lock = threading.Lock()  # one generation at a time per pipeline object
        return cpu_backend.configure(pipe.to(device), entry.info.get("cpu_backend"), device)

    return MODEL_CACHE.get_or_load(_cache_key("pipeline", model_id, device, dtype), load, size=_pipeline_bytes)


def load_taesd(device: torch.device | None = None, dtype: torch.dtype | None = None, download: bool = False):
    """The TAESD decoder (``diffusers.taesd``); raises WeightsUnavailableError or ValueError (not in manifest)."""
    device = device or get_device()
    dtype = dtype or pipeline_dtype(device)

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
    entry, src = _hf_source(model_id)
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


# --------------------------------------------------------------------------- prompts


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


# --------------------------------------------------------------------------- parameters text (PNG metadata)

def _is_key_char(c: str) -> bool:
    return c.isalnum() or c in "_ "


def _quoted_end(line: str, start: int) -> int:
    """Index of the quote closing the string that opens at ``line[start]``, or -1 (backslash escapes)."""
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
        elif line[i] == '"':
            return i
        else:
            i += 1
    return -1


def _settings(line: str) -> list[tuple[str, str]]:
    """The ``Key: value`` pairs of an A1111 settings line, in one left-to-right pass (linear time).

    A key is the run of word characters and spaces just before a colon; a value is a JSON string
    followed by a comma or the end, else everything up to the next comma. (A backtracking regex
    for the same grammar takes quadratic time on a long line without colons.)
    """
    pairs, pos = [], 0
    while (colon := line.find(":", pos)) >= 0:
        start = colon
        while start > pos and _is_key_char(line[start - 1]):
            start -= 1
        value = colon + 1
        while value < len(line) and line[value].isspace():
            value += 1
        if start == colon:  # no key before this colon
            pos = colon + 1
            continue
        end = _quoted_end(line, value) if line.startswith('"', value) else -1
        if end >= 0 and (end + 1 == len(line) or line[end + 1] == ","):
            text, pos = line[value:end + 1], end + 2
            try:
                text = json.loads(text)
            except ValueError:
                pass
        else:
            comma = line.find(",", value)
            end = len(line) if comma < 0 else comma
            text, pos = line[value:end].strip(), end + 1
        pairs.append((line[start:colon].strip(), text))
    return pairs


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"\n') else text


def infotext(request: Request, seed: int, sampler: str, revision: str, repo_id: str, decoder: str,
             precision: str = "float32") -> str:
    """A1111-style ``parameters`` text: prompt, ``Negative prompt:`` line, then ``Key: value`` pairs."""
    params = {
        "Steps": request.steps, "Sampler": sampler, "CFG scale": f"{request.guidance_scale:g}", "Seed": seed,
        "Size": f"{request.width}x{request.height}", "Model": repo_id, "Model revision": revision,
        "Model id": request.model_id, "Decoder": decoder, "Precision": precision, "Version": "GAN Demo Hub",
    }
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in params.items()))
    return "\n".join(lines)


def parse_infotext(text: str) -> dict[str, Any]:
    """Read A1111-style parameters back: prompt, negative_prompt, steps, guidance_scale, seed, width,
    height, model_id, model_revision, sampler, decoder, precision (keys present only when found)."""
    from core.limits import max_parameters_chars

    text = text or ""
    if len(text) > max_parameters_chars():
        raise ValueError(f"The parameters text in this PNG is {len(text):,} characters; the limit is "
                         f"{max_parameters_chars():,} (two prompts of {MAX_PROMPT_CHARS} characters and the settings).")
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    if lines and len(pairs := _settings(lines[-1])) >= 3:
        params = dict(pairs)
        lines.pop()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip()}
    converters = {"Steps": ("steps", int), "CFG scale": ("guidance_scale", float), "Seed": ("seed", int),
                  "Sampler": ("sampler", str), "Model id": ("model_id", str), "Model revision": ("model_revision", str),
                  "Model": ("model", str), "Decoder": ("decoder", str), "Precision": ("precision", str)}
    for key, (name, convert) in converters.items():
        if key in params:
            try:
                out[name] = convert(params[key])
            except ValueError:
                pass
    size = re.fullmatch(r"(\d+)x(\d+)", params.get("Size", ""))
    if size:
        out["width"], out["height"] = int(size.group(1)), int(size.group(2))
    return out


def read_parameters(image: str | Path | Image.Image) -> dict[str, Any]:
    """Parameters stored in a PNG made here (or by A1111-compatible tools); ValueError when there are none."""
    if not isinstance(image, Image.Image):
        from core.images import open_image

        try:
            image = open_image(image)  # the upload admission check: size and header only
        except ValueError as e:
            raise ValueError(f"Could not read this file as an image. {e}") from e
    text = image.info.get("parameters")
    if not text:
        raise ValueError("This image carries no generation parameters (only PNGs saved by this app or by "
                         "A1111-compatible tools do; other formats and re-saved copies usually lose them).")
    return parse_infotext(text)


# --------------------------------------------------------------------------- generation


@dataclass
class Preview:
    step: int  # denoising steps done
    total: int
    images: list[Image.Image] | None  # None: last step, previews off, or skipped to stay within the budget


@dataclass
class Result:
    request: Request
    images: list[Image.Image]
    seeds: list[int]
    cancelled: bool
    steps_done: int
    total_steps: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def infotexts(self) -> list[str]:
        return [im.info["parameters"] for im in self.images]


@dataclass
class _Failure:
    error: BaseException


class Generation:
    """One run of the pipeline in a worker thread. Iterate it for events; ``cancel()`` to stop."""

    def __init__(self, request: Request, pipe, preview_decoder=None, final_decoder=None, previews: bool = True,
                 notes: list[str] | None = None, budget=None):
        self.request = request
        self.pipe = pipe
        self.preview_decoder = preview_decoder
        self.final_decoder = final_decoder
        self.previews = previews
        self.notes = list(notes or [])
        self.budget = budget  # a core.limits.Budget: when it runs out, the steps done so far are decoded
        self._out_of_time = False
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="text2image", daemon=True)
        self._steps_done = 0
        self._last_preview = (time.perf_counter(), 0.0)  # (when the last preview was done, what it cost)

    def start(self) -> Generation:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop after the denoising step that is running (no final decode)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def __iter__(self):
        while True:
            event = self._events.get()
            if isinstance(event, _Failure):
                raise event.error
            yield event
            if isinstance(event, Result):
                return

    def result(self) -> Result:
        for event in self:
            if isinstance(event, Result):
                return event
        raise RuntimeError("the generation ended without a result")

    def _run(self) -> None:
        try:
            with self.pipe._ganhub_lock:
                self._events.put(self._generate())
        except BaseException as e:  # handed to the consumer thread, which raises it
            self._events.put(_Failure(e))

    def _on_step(self, pipe, i, t, kwargs):
        self._steps_done = i + 1
        total = pipe.num_timesteps
        if self._cancel.is_set():
            pipe._interrupt = True  # diffusers skips every remaining step
            return kwargs
        if self.budget is not None and i + 1 < total and self.budget.expired():
            self._out_of_time = pipe._interrupt = True  # the latents so far are decoded as the result
        images = None
        done, cost = self._last_preview
        started = time.perf_counter()
        if self.previews and i + 1 < total and started - done >= cost * (1 - PREVIEW_MAX_SHARE) / PREVIEW_MAX_SHARE:
            images = decode_preview(kwargs["latents"], (self.request.width, self.request.height), self.preview_decoder)
            finished = time.perf_counter()
            self._last_preview = (finished, finished - started)
        self._events.put(Preview(i + 1, total, images))
        return kwargs

    def _generate(self) -> Result:
        r, pipe = self.request, self.pipe
        started = time.perf_counter()
        notes = list(self.notes)
        for name, text in (("prompt", r.prompt), ("negative prompt", r.negative_prompt)):
            cut = truncated_part(pipe.tokenizer, text)
            if cut is not None:
                notes.append(f"The {name} is longer than the text encoder's {pipe.tokenizer.model_max_length} tokens; "
                             f"this end of it was ignored: \"{cut}\"")
        if r.negative_prompt and r.guidance_scale <= 1.0:
            notes.append("Guidance is 1 or less, so the negative prompt has no effect.")
        seeds = r.seeds
        if self._cancel.is_set():
            return Result(r, [], seeds, True, 0, r.steps, time.perf_counter() - started, notes)
        latents = pipe(
            prompt=r.prompt, negative_prompt=r.negative_prompt or None, num_inference_steps=r.steps,
            guidance_scale=r.guidance_scale, width=r.width, height=r.height, num_images_per_prompt=r.num_images,
            generator=[make_generator(s) for s in seeds], output_type="latent",
            callback_on_step_end=self._on_step, callback_on_step_end_tensor_inputs=["latents"],
        ).images
        total = pipe.num_timesteps
        if self._cancel.is_set():
            notes.append(f"Stopped after step {self._steps_done} of {total}.")
            return Result(r, [], seeds, True, self._steps_done, total, time.perf_counter() - started, notes)
        if self._out_of_time:
            notes.append(self.budget.stopped(f"{self._steps_done} of {total} denoising steps (the image is less "
                                             "finished than with all of them)"))
        decoded = decode_final(pipe, latents, self.final_decoder)
        images = to_pil_images(decoded)
        _, src = _hf_source(r.model_id)
        decoder = "TAESD" if self.final_decoder is not None else "VAE"
        for image, seed in zip(images, seeds):
            image.info["parameters"] = infotext(r, seed, type(pipe.scheduler).__name__, src.spec["revision"],
                                                src.spec["repo_id"], decoder, str(pipe.unet.dtype).split(".")[-1])
        done = self._steps_done if self._out_of_time else total
        return Result(r, images, seeds, False, done, total, time.perf_counter() - started, notes)


def start(request: Request, previews: bool = True, device: torch.device | None = None, budget=None) -> Generation:
    """Load what ``request`` needs (raises WeightsUnavailableError) and start generating in a thread
    (within ``budget``, a :class:`core.limits.Budget`, when given)."""
    device = device or get_device()
    pipe = load_pipeline(request.model_id, device)
    dtype = pipe.unet.dtype
    notes = []
    final_decoder = None
    if request.fast_decode:
        final_decoder = try_load_taesd(device, dtype, download=True)
        if final_decoder is None:
            notes.append(f"The fast decoder (TAESD) is not available here, so the full VAE decoded the image; "
                         f"get it with `python -m core.weights fetch {TAESD_ID}`.")
    preview_decoder = final_decoder or (try_load_taesd(device, dtype) if previews else None)
    return Generation(request, pipe, preview_decoder, final_decoder, previews, notes, budget).start()


def generate(request: Request, **kwargs) -> Result:
    """Run to the end (no previews kept) and return the :class:`Result`."""
    return start(request, previews=False, **kwargs).result()


def default_fast_decode() -> bool:
    """TAESD for the final image by default on CPUs (where the full VAE decode is a large share of the time)."""
    return os.environ.get("GANHUB_T2I_FAST_DECODE", "1" if get_device().type == "cpu" else "0") == "1"
