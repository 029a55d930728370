"""Text to image with the Stable Diffusion pipelines of the manifest (``arch: diffusers``), as a stream.

1. :class:`Settings` completes the knobs from the model's manifest defaults and checks them
   against its limits (``ValueError`` with a message fit for the user); :func:`stream` checks
   the prompt and draws the seed when none is given, once.
2. :func:`stream` loads the pipeline (:mod:`core.pipelines.text_to_image_loading`) and runs it in
   a worker thread, following :mod:`core.pipelines.streaming`: a
   :class:`~core.pipelines.streaming.Progress` after every denoising step (with preview images
   while previews stay within ``PREVIEW_MAX_SHARE`` of the time), the :class:`Result` last.
   ``cancel`` stops the pipeline after the running step, without decoding; the time budget stops
   it the same way and decodes the steps done.
3. Every image carries its settings as A1111-style ``parameters`` text
   (:mod:`core.pipelines.text_to_image_params`).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from core.device import make_generator
from core.pipelines import text_to_image_loading as loading
from core.pipelines.streaming import Progress, Stop, drain
from core.pipelines.text_to_image_params import MAX_PROMPT_CHARS, infotext

MAX_IMAGES = 4
MAX_SEED = 2**32 - 1
MAX_GUIDANCE = 30.0
# Previews may take at most this share of a run: TAESD decodes a 512x512 preview in about 2 CPU-seconds on
# one core, so on slow CPUs a preview is skipped until enough denoising time has passed since the last one.
PREVIEW_MAX_SHARE = 0.1


def generators() -> list[str]:
    """The text-to-image pipelines of the text2image app, in manifest order."""
    from core.weights import get_entry, models_for_app

    return [m for m in models_for_app("text2image")
            if get_entry(m).config.get("pipeline") in loading.SUPPORTED_PIPELINES]


def _whole(name: str, value: Any, message: str) -> int:
    try:
        if value is not None and float(value).is_integer():
            return int(value)
    except (TypeError, ValueError):
        pass
    raise ValueError(message.format(name=name, value=value))


def _checked_text(name: str, text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"The {name} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS} "
                         f"(the text encoder reads only about the first 60 words anyway).")
    return text


def _checked_size(name: str, value: Any, low: int, high: int) -> int:
    value = _whole(name, value, "{name} must be a whole number of pixels (got {value!r}).")
    if value % 8 or not low <= value <= high:
        raise ValueError(f"{name} must be a multiple of 8 between {low} and {high} pixels for this model "
                         f"(got {value}).")
    return value


@dataclass(frozen=True)
class Settings:
    """The knobs of one generation; None takes the model's manifest default. ``seed`` None or negative:
    a random seed, drawn once per generation; image i of a batch uses ``seed + i``."""

    model_id: str
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    num_images: int = 1
    fast_decode: bool = False

    def __post_init__(self):
        d = loading.model_defaults(self.model_id)
        steps = _whole("Steps", d["steps"] if self.steps is None else self.steps,
                       f"Steps must be a whole number from 1 to {d['max_steps']} for this model (got {{value}}).")
        if not 1 <= steps <= d["max_steps"]:
            raise ValueError(f"Steps must be a whole number from 1 to {d['max_steps']} for this model (got {steps}).")
        guidance = d["guidance_scale"] if self.guidance_scale is None else float(self.guidance_scale)
        if not 0.0 <= guidance <= MAX_GUIDANCE:
            raise ValueError(f"Guidance must be between 0 and {MAX_GUIDANCE:g} (got {guidance:g}).")
        number = _whole("images", self.num_images, f"The number of images must be from 1 to {MAX_IMAGES} "
                                                   "(got {value}).")
        if not 1 <= number <= MAX_IMAGES:
            raise ValueError(f"The number of images must be from 1 to {MAX_IMAGES} (got {number}).")
        seed = None if self.seed is None or self.seed < 0 else self.seed
        if seed is not None and (not float(seed).is_integer() or seed > MAX_SEED):
            raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED}, or -1 for a random one "
                             f"(got {seed}).")
        size = {name: _checked_size(name.title(), d["size"] if value is None else value, d["min_size"], d["max_size"])
                for name, value in (("width", self.width), ("height", self.height))}
        for name, value in (("negative_prompt", _checked_text("negative prompt", self.negative_prompt)),
                            ("steps", steps), ("guidance_scale", guidance), ("num_images", number),
                            ("seed", None if seed is None else int(seed)), ("fast_decode", bool(self.fast_decode)),
                            *size.items()):
            object.__setattr__(self, name, value)


def checked_prompt(prompt: str | None) -> str:
    prompt = _checked_text("prompt", prompt)
    if not prompt:
        raise ValueError("The prompt is empty: describe the picture you want, "
                         "e.g. 'a lighthouse on a cliff at sunset'.")
    return prompt


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]  # empty when cancelled
    seeds: list[int]
    cancelled: bool
    steps_done: int
    total_steps: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # every setting used (seed, model revision, decoder, precision)

    @property
    def infotexts(self) -> list[str]:
        return [im.info["parameters"] for im in self.images]


@dataclass
class _Failure:
    error: BaseException


class _Run:
    """One generation in a worker thread; :meth:`events` hands its progress and result to the caller's thread."""

    def __init__(self, prompt: str, settings: Settings, seed: int, pipe, decoders: tuple, previews: bool,
                 notes: list[str], stop: Stop):
        self.prompt, self.settings, self.pipe, self.stop = prompt, settings, pipe, stop
        self.seeds = [(seed + i) % (MAX_SEED + 1) for i in range(settings.num_images)]
        self.preview_decoder, self.final_decoder = decoders
        self.previews, self.notes = previews, notes
        self.steps_done = 0
        self.last_preview = (time.perf_counter(), 0.0)  # (when the last preview was done, what it cost)
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="text2image", daemon=True)

    def events(self) -> Iterator[Progress | Result]:
        self.thread.start()
        while True:
            event = self.queue.get()
            if isinstance(event, _Failure):
                raise event.error
            yield event
            if isinstance(event, Result):
                return

    def _work(self) -> None:
        try:
            with self.pipe._ganhub_lock:  # one generation at a time per pipeline object
                self.queue.put(self._generate())
        except BaseException as e:  # handed to the consumer thread, which raises it
            self.queue.put(_Failure(e))

    def _on_step(self, pipe, i, t, kwargs):
        self.steps_done, total = i + 1, pipe.num_timesteps
        if i + 1 < total and self.stop.now(f"{i + 1} of {total} denoising steps (the image is less finished "
                                           "than with all of them)"):
            pipe._interrupt = True  # diffusers skips every remaining step
            if self.stop.cancelled:
                return kwargs
        images, (done, cost) = None, self.last_preview
        started = time.perf_counter()
        if self.previews and i + 1 < total and started - done >= cost * (1 - PREVIEW_MAX_SHARE) / PREVIEW_MAX_SHARE:
            images = loading.decode_preview(kwargs["latents"], (self.settings.width, self.settings.height),
                                            self.preview_decoder)
            finished = time.perf_counter()
            self.last_preview = (finished, finished - started)
        self.queue.put(Progress(i + 1, total, images, f"Step {i + 1} of {total}..."))
        return kwargs

    def details(self) -> dict:
        s, pipe = self.settings, self.pipe
        _, source = loading.hf_source(s.model_id)
        return {"model_id": s.model_id, "prompt": self.prompt, "negative_prompt": s.negative_prompt,
                "steps": s.steps, "guidance_scale": s.guidance_scale, "width": s.width, "height": s.height,
                "seed": self.seeds[0], "num_images": s.num_images, "fast_decode": s.fast_decode,
                "model": source.spec["repo_id"], "model_revision": source.spec["revision"],
                "sampler": type(pipe.scheduler).__name__, "decoder": "TAESD" if self.final_decoder else "VAE",
                "precision": str(pipe.unet.dtype).split(".")[-1]}

    def _result(self, images: list[Image.Image], started: float, total: int) -> Result:
        cancelled = self.stop.cancelled
        done = total if not (cancelled or self.stop.note) else self.steps_done
        if cancelled and total:
            self.notes.append(f"Stopped after step {self.steps_done} of {total}.")
        elif self.stop.note:
            self.notes.append(self.stop.note)
        return Result(images, self.seeds, cancelled, done, total or self.settings.steps,
                      time.perf_counter() - started, self.notes, self.details())

    def _generate(self) -> Result:
        s, pipe, started = self.settings, self.pipe, time.perf_counter()
        for name, text in (("prompt", self.prompt), ("negative prompt", s.negative_prompt)):
            cut = loading.truncated_part(pipe.tokenizer, text)
            if cut is not None:
                self.notes.append(f"The {name} is longer than the text encoder's {pipe.tokenizer.model_max_length} "
                                  f"tokens; this end of it was ignored: \"{cut}\"")
        if s.negative_prompt and s.guidance_scale <= 1.0:
            self.notes.append("Guidance is 1 or less, so the negative prompt has no effect.")
        if self.stop.cancel_requested():
            return self._result([], started, 0)
        latents = pipe(
            prompt=self.prompt, negative_prompt=s.negative_prompt or None, num_inference_steps=s.steps,
            guidance_scale=s.guidance_scale, width=s.width, height=s.height, num_images_per_prompt=s.num_images,
            generator=[make_generator(seed) for seed in self.seeds], output_type="latent",
            callback_on_step_end=self._on_step, callback_on_step_end_tensor_inputs=["latents"],
        ).images
        if self.stop.cancel_requested():
            return self._result([], started, pipe.num_timesteps)
        images = loading.to_pil_images(loading.decode_final(pipe, latents, self.final_decoder))
        used = self.details()
        for image, seed in zip(images, self.seeds):
            image.info["parameters"] = infotext({**used, "seed": seed})
        return self._result(images, started, pipe.num_timesteps)


def _decoders(settings: Settings, pipe, previews: bool, taesd=None) -> tuple[tuple, list[str]]:
    """(preview decoder, final decoder) of a run (TAESD or None) and the notes about them."""
    device, dtype = pipe.device, pipe.unet.dtype
    if taesd is not None:
        return (taesd if previews else None, taesd if settings.fast_decode else None), []
    final, notes = None, []
    if settings.fast_decode:
        final = loading.try_load_taesd(device, dtype, download=True)
        if final is None:
            notes.append(f"The fast decoder (TAESD) is not available here, so the full VAE decoded the image; "
                         f"get it with `python -m core.weights fetch {loading.TAESD_ID}`.")
    preview = final or (loading.try_load_taesd(device, dtype) if previews else None)
    return (preview, final), notes


def stream(prompt: str, settings: Settings, *, model=None, cancel: threading.Event | None = None, budget=None,
           previews: bool = True, taesd=None) -> Iterator[Progress | Result]:
    """Generate ``settings.num_images`` images of ``prompt``. ``model``: an already-loaded diffusers
    pipeline (else ``settings.model_id``'s is loaded; raises WeightsUnavailableError), ``taesd`` an
    already-loaded TAESD for previews and the fast decode (else it is loaded when wanted); ``budget``: a
    :class:`core.limits.Budget` (default: this server's per-request budget); ``previews=False``
    decodes no previews. Closing the stream early stops the pipeline after its running step."""
    from core.limits import Budget

    prompt = checked_prompt(prompt)
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(MAX_SEED + 1)
    pipe = model if model is not None else loading.load_pipeline(settings.model_id)
    decoders, notes = _decoders(settings, pipe, previews, taesd)
    converting = getattr(pipe, "_ganhub_openvino", None)
    if converting is not None and converting.is_alive():
        notes.append("The model is being converted for OpenVINO in the background (first start with these weights, "
                     "a few minutes); until then images come from eager torch, more slowly.")
    cancel = cancel if cancel is not None else threading.Event()
    run = _Run(prompt, settings, seed, pipe, decoders, previews, notes, Stop(cancel, budget or Budget()))
    try:
        yield from run.events()
    finally:
        if run.thread.is_alive():
            cancel.set()
            run.thread.join()


def run(prompt: str, settings: Settings, *, model=None, cancel: threading.Event | None = None, budget=None,
        taesd=None) -> Result:
    """:func:`stream` without previews, run to the end."""
    return drain(stream(prompt, settings, model=model, cancel=cancel, budget=budget, previews=False, taesd=taesd))
