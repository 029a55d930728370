"""Inpainting: fill the masked part of a photo with MI-GAN or LaMa, or OpenCV Telea / Navier-Stokes offline.

``run(image, mask, Settings(...))``: the hole is the mask (:mod:`core.pipelines.inpaint_masks`:
white = hole) grown by ``dilation``; the fills and their conventions are in
:mod:`core.pipelines.inpaint_fill`. Every pixel outside the hole is the input's, bit for bit.

Strategies:

- ``crop`` (default): inpaint only a window around the mask's bounding box (``margin`` pixels of
  context on each side). Windows larger than ``working_size`` are downscaled for the model and
  the fill is upscaled back; everything outside the mask keeps the original pixels, so a small
  edit on a 4000x3000 photo is fast and stays sharp.
- ``full``: the whole image at its own resolution (what the reference script does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.images import load_image
from core.pipelines.inpaint_fill import fill_scaled, run_lama, run_migan, run_opencv
from core.pipelines.inpaint_masks import crop_box, dilate, to_mask
from core.pipelines.inpaint_models import fill_model_id

METHODS = {
    "auto": "MI-GAN if its weights are here, else LaMa if its weights are here, else OpenCV Telea",
    "migan": "MI-GAN 512 Places2 (fast mobile GAN)",
    "lama": "LaMa big-lama (FFC ResNet GAN)",
    "telea": "OpenCV Telea (fast marching)",
    "ns": "OpenCV Navier-Stokes",
}
LEARNED = ("migan", "lama")  # in the order "auto" tries them
METHOD_TITLES = {"migan": "MI-GAN 512", "lama": "LaMa big-lama", "telea": "OpenCV Telea", "ns": "OpenCV Navier-Stokes"}
STRATEGIES = ("crop", "full")
DEFAULT_MARGIN = 128
DEFAULT_WORKING_SIZE = 768
FULL_MAX_PIXELS = 8_000_000  # whole-image LaMa above this needs many GB of activations


@dataclass(frozen=True)
class Settings:
    """The knobs of one inpainting. ``lama_id`` / ``migan_id``: None = the manifest's inpaint model of that arch."""

    method: str = "auto"
    dilation: int = 0
    strategy: str = "crop"
    margin: int = DEFAULT_MARGIN
    working_size: int = DEFAULT_WORKING_SIZE
    lama_id: str | None = None
    migan_id: str | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; choose one of {', '.join(METHODS)}.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}.")
        for name in ("dilation", "margin", "working_size"):  # sliders may send 4.0 for 4
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.working_size < 64:
            raise ValueError(f"working_size must be at least 64 pixels, got {self.working_size}.")

    def model_id(self, method: str) -> str:
        """The manifest id of the learned ``method``'s model."""
        chosen = self.lama_id if method == "lama" else self.migan_id
        return chosen or fill_model_id(method)


@dataclass(frozen=True)
class Result:
    image: Image.Image  # same size as the input; only masked pixels differ
    mask: np.ndarray  # bool [H, W], the hole actually filled (after resizing and dilation)
    method: str  # the method that ran: migan, lama, telea, ns, or none (empty mask)
    notice: str  # a message for the user ("" when there is nothing to say)
    box: tuple[int, int, int, int] | None  # (left, top, right, bottom) of the region processed
    details: dict = field(default_factory=dict)  # every setting used, the model id, the time taken


def _choose_method(settings: Settings, model) -> tuple[str, str]:
    """(method that will run, notice): "auto" takes the first learned model whose weights are here."""
    from core.weights import about_size, download_bytes, get_entry, how_to_provide, weights_present

    if settings.method != "auto":
        return settings.method, ""
    if model is not None:
        return ("migan" if hasattr(model, "resolution") else "lama"), ""
    known = {}
    for learned in LEARNED:
        try:
            known[learned] = get_entry(settings.model_id(learned))
        except ValueError:  # a manifest without this model
            continue
        if weights_present(known[learned].id):
            return learned, ""
    if not known:
        raise ValueError("The manifest has no inpainting model; choose the telea or ns method.")
    entry = next(iter(known.values()))
    sizes = " or ".join(about_size(size) for size in (download_bytes(e.id) for e in known.values()) if size)
    return "telea", (
        f"OpenCV Telea was used: {entry.title} (`{entry.id}`) would be used, but its weights are not on this "
        f"machine. Choose the MI-GAN or LaMa method to download them from the Hugging Face Hub"
        f"{f' ({sizes})' if sizes else ''}, or: "
        + how_to_provide(entry))


def _filler(method: str, settings: Settings, model):
    """``fill(image, hole)`` for ``method``, with its model loaded (or ``model``) when it has one."""
    if method not in LEARNED:
        return lambda image, hole: run_opencv(image, hole, method)
    from core.weights import autocast_for, get_entry, load_model

    model_id = settings.model_id(method)
    model = model if model is not None else load_model(model_id)
    multiple = max(get_entry(model_id).multiple_of, getattr(model, "multiple", 1))  # what both need

    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        with autocast_for(model_id, next(model.parameters()).device):
            return run_lama(model, image, hole, multiple) if method == "lama" else run_migan(model, image, hole)

    return fill


def _fill_region(pixels: np.ndarray, hole: np.ndarray, method: str, settings: Settings, fill):
    """(filled pixels, box processed) for the settings' strategy."""
    if settings.strategy == "full":
        if method == "lama" and hole.size > FULL_MAX_PIXELS:
            raise ValueError(f"Whole-image LaMa on {hole.size / 1e6:.1f} MP needs too much memory here (limit "
                             f"{FULL_MAX_PIXELS / 1e6:.0f} MP); use the crop strategy.")
        return fill(pixels, hole), (0, 0, hole.shape[1], hole.shape[0])
    left, top, right, bottom = box = crop_box(hole, settings.margin)
    result = pixels.copy()
    result[top:bottom, left:right] = fill_scaled(pixels[top:bottom, left:right], hole[top:bottom, left:right],
                                                 settings.working_size, fill)
    return result, box


def run(image: Any, mask: Any, settings: Settings = Settings(), *, model: torch.nn.Module | None = None) -> Result:
    """Fill the hole of ``image`` (anything :func:`core.images.load_image` reads) given by ``mask``.

    ``model``: an already-built LaMa or MI-GAN used for the learned method instead of loading one."""
    start = time.perf_counter()
    photo = load_image(image)
    hole = dilate(to_mask(mask, photo.size), settings.dilation)
    details = {"method": settings.method, "dilation": settings.dilation, "strategy": settings.strategy,
               "working_size": settings.working_size, "margin": settings.margin, "size": photo.size}
    if not hole.any():
        return Result(photo.copy(), hole, "none", "The mask is empty: nothing was inpainted, the input is returned "
                      "unchanged. Paint over what should be removed.", None, {**details, "method_used": "none"})
    if hole.all():
        raise ValueError("The mask covers the whole image, so there is nothing to fill it from. Paint only over "
                         "what should be removed (and lower the mask dilation).")
    method, notice = _choose_method(settings, model)
    result, box = _fill_region(np.asarray(photo), hole, method, settings, _filler(method, settings, model))
    details.update(method_used=method, box=box, filled_pixels=int(hole.sum()),
                   seconds=time.perf_counter() - start)
    if method in LEARNED:
        details["model_id"] = settings.model_id(method)
    return Result(Image.fromarray(result), hole, method, notice, box, details)


def summary(result: Result) -> str:
    """What happened, for the user: the notice, and which method filled how much of the photo."""
    notes = [f"**Note:** {result.notice}"] if result.notice else []
    if result.method != "none":
        left, top, right, bottom = result.box
        width, height = result.image.size
        notes.append(f"Filled {int(result.mask.sum()):,} pixels with **{METHOD_TITLES[result.method]}** in "
                     f"{result.details['seconds']:.1f} s; region processed: {right - left}x{bottom - top} at "
                     f"({left}, {top}) of a {width}x{height} photo.")
    return "\n\n".join(notes)
