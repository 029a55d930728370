"""Inpainting: fill the masked part of a photo with MI-GAN or LaMa, or OpenCV Telea / Navier-Stokes offline.

Conventions (those of LaMa's ``bin/predict.py``): image RGB in [0, 1], mask 1 = hole; the
generator sees ``cat(image * (1 - mask), mask)`` padded at the bottom/right to a multiple of 8
with symmetric (edge-repeating mirror) padding; only masked pixels are taken from its output,
so every pixel outside the mask is the input's, bit for bit. Results are rounded to uint8 (the
reference truncates). MI-GAN (fixed 512x512 input, mask 1 = known) gets the window padded to a
square (symmetric), resized to 512 (bicubic, as its ``scripts/demo.py``) and its fill resized back
(bicubic); a pixel is a hole at 512 when any of its source pixels is.

Masks given as images follow the usual editor convention: **white = hole**. Transparent pixels
count as black (keep), so a white stroke on a transparent layer is a hole too. A mask of another
size than the image is resized to it with nearest-neighbour interpolation.

Strategies:

- ``crop`` (default): inpaint only a window around the mask's bounding box (``margin`` pixels of
  context on each side). Windows larger than ``working_size`` are downscaled for the model and
  the fill is upscaled back; everything outside the mask keeps the original pixels, so a small
  edit on a 4000x3000 photo is fast and stays sharp.
- ``full``: the whole image at its own resolution (what the reference script does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from core.images import load_image

LAMA_ID = "lama.big_lama"
MIGAN_ID = "migan.places2_512"
METHODS = {
    "auto": "MI-GAN if its weights are here, else LaMa if its weights are here, else OpenCV Telea",
    "migan": "MI-GAN 512 Places2 (fast mobile GAN)",
    "lama": "LaMa big-lama (FFC ResNet GAN)",
    "telea": "OpenCV Telea (fast marching)",
    "ns": "OpenCV Navier-Stokes",
}
METHOD_TITLES = {"migan": "MI-GAN 512", "lama": "LaMa big-lama", "telea": "OpenCV Telea", "ns": "OpenCV Navier-Stokes"}
STRATEGIES = ("crop", "full")
DEFAULT_MARGIN = 128
DEFAULT_WORKING_SIZE = 768
FULL_MAX_PIXELS = 8_000_000  # whole-image LaMa above this needs many GB of activations
OPENCV_RADIUS = 3
_OPENCV_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


@dataclass
class InpaintResult:
    image: Image.Image  # same size as the input; only masked pixels differ
    mask: np.ndarray  # bool [H, W], the hole actually filled (after resizing and dilation)
    method: str  # the method that ran: migan, lama, telea, ns, or none (empty mask)
    notice: str  # a message for the user ("" when there is nothing to say)
    box: tuple[int, int, int, int] | None  # (left, top, right, bottom) of the region processed


# --------------------------------------------------------------------------- masks


def to_mask(mask: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """A hole mask as bool [H, W] from a PIL image or array (white / nonzero = hole).

    Images and uint8 arrays: luminance x alpha >= 128 is a hole (transparent = keep). Bool
    arrays are taken as they are. ``size`` (W, H): resize with nearest-neighbour if different.
    """
    if mask is None:
        raise ValueError("No mask was given.")
    if isinstance(mask, np.ndarray) and mask.dtype == bool and mask.ndim == 2:
        hole = mask
    else:
        if isinstance(mask, np.ndarray):
            if mask.ndim == 2 and np.issubdtype(mask.dtype, np.floating):
                mask = (np.clip(mask, 0, 1) * 255).round().astype(np.uint8)
            mask = Image.fromarray(np.ascontiguousarray(mask))
        if not isinstance(mask, Image.Image):
            mask = Image.open(mask)
        alpha = np.asarray(mask.getchannel("A"), dtype=np.uint16) if "A" in mask.getbands() else 255
        luminance = np.asarray(mask.convert("L"), dtype=np.uint16)
        hole = luminance * alpha >= 128 * 255
    if size is not None and (hole.shape[1], hole.shape[0]) != tuple(size):
        _check_proportions((hole.shape[1], hole.shape[0]), tuple(size))
        resized = Image.fromarray(hole.astype(np.uint8) * 255).resize(tuple(size), Image.Resampling.NEAREST)
        hole = np.asarray(resized) > 127
    return np.ascontiguousarray(hole)


def _check_proportions(mask_size: tuple[int, int], size: tuple[int, int]) -> None:
    """A mask is scaled to the photo only when it has the photo's proportions (within a pixel's rounding)."""
    (mw, mh), (w, h) = mask_size, size
    if abs(mw * h - mh * w) > max(mw, w) + max(mh, h):
        raise ValueError(f"The mask is {mw}x{mh} but the photo is {w}x{h}: a mask must have the photo's size or at "
                         f"least its proportions (it is then scaled to the photo). Download the mask used from a "
                         f"result to get one of the right size.")


def combine_masks(size: tuple[int, int], *masks: Any, dilation: int = 0) -> np.ndarray:
    """The union of every given mask (painted, uploaded, selected; None skipped) at ``size`` (W, H), then dilated."""
    hole = np.zeros((size[1], size[0]), dtype=bool)
    for mask in masks:
        if mask is not None:
            hole |= to_mask(mask, size)
    return dilate(hole, dilation)


def mask_image(hole: np.ndarray) -> Image.Image:
    """A hole mask as the PNG-ready image users download and upload again: white = hole, black = keep."""
    return Image.fromarray(hole.astype(np.uint8) * 255, mode="L")


def editor_value(image: Image.Image, hole: np.ndarray, color=(255, 40, 120), alpha: int = 178) -> dict:
    """A ``gr.ImageEditor`` value with the photo as background and ``hole`` painted on its layer, so an
    uploaded or selected mask can be edited further with the brush and the eraser."""
    layer = np.zeros((hole.shape[0], hole.shape[1], 4), dtype=np.uint8)
    layer[hole] = (*color, alpha)
    background = np.dstack([np.asarray(image.convert("RGB")), np.full(hole.shape, 255, np.uint8)])
    composite = np.where(hole[..., None], (background * 0.3 + layer * 0.7).astype(np.uint8), background)
    return {"background": background, "layers": [layer], "composite": composite}


def mask_from_editor(value: dict | None) -> tuple[Image.Image, np.ndarray]:
    """(photo, hole mask) from a ``gr.ImageEditor`` value (``image_mode="RGBA"``, ``layers=False``).

    The hole is every pixel painted on any layer (layer alpha > 0), whatever the brush colour.
    """
    if not value or value.get("background") is None:
        raise ValueError("Upload a photo into the editor first.")
    image = load_image(value["background"])
    hole = np.zeros((image.height, image.width), dtype=bool)
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        array = np.asarray(layer if not isinstance(layer, (str, bytes)) else Image.open(layer).convert("RGBA"))
        if array.ndim != 3 or array.shape[2] != 4:
            raise ValueError("The editor layers must be RGBA (the mask is read from their alpha).")
        hole |= to_mask(array[..., 3] > 0, image.size)
    return image, hole


def dilate(hole: np.ndarray, radius: int) -> np.ndarray:
    """Grow the hole by ``radius`` pixels (elliptical structuring element)."""
    radius = int(radius)
    if radius <= 0:
        return hole
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel) > 0


def mask_box(hole: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom), right/bottom exclusive, of a non-empty mask."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def crop_box(hole: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """The mask's bounding box grown by ``margin`` on each side, clipped to the image."""
    left, top, right, bottom = mask_box(hole)
    height, width = hole.shape
    return max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin)


def overlay_mask(image: Image.Image, hole: np.ndarray, color=(255, 40, 120), opacity: float = 0.6) -> Image.Image:
    """The photo with the hole tinted (a preview of the mask that was used)."""
    pixels = np.asarray(image.convert("RGB")).astype(np.float32)
    tinted = pixels * (1 - opacity) + np.asarray(color, dtype=np.float32) * opacity
    return Image.fromarray(np.where(hole[..., None], tinted, pixels).round().astype(np.uint8))


# --------------------------------------------------------------------------- LaMa


def pad_symmetric(array: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad [H, W, ...] at the bottom/right to multiples of ``multiple`` as LaMa's ``pad_img_to_modulo``.

    ``np.pad(mode="symmetric")`` mirrors including the edge row (``[1, 2, 3] -> [1, 2, 3, 3, 2]``).
    Returns the padded array and the original (H, W) for :func:`unpad`.
    """
    height, width = array.shape[:2]
    pads = [(0, (-height) % multiple), (0, (-width) % multiple)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pads, mode="symmetric"), (height, width)


def unpad(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return array[: size[0], : size[1]]


def run_lama(model: torch.nn.Module, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """LaMa on uint8 RGB [H, W, 3] and a bool hole [H, W]; returns uint8 [H, W, 3], composited."""
    unit = image.astype(np.float32) / 255.0
    mask = hole.astype(np.float32)[..., None]
    padded, size = pad_symmetric(np.concatenate([unit * (1.0 - mask), mask], axis=2), getattr(model, "multiple", 8))
    parameter = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(padded)).permute(2, 0, 1)[None].to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        prediction = model(x)[0].float().permute(1, 2, 0).cpu().numpy()
    filled = (np.clip(unpad(prediction, size), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.where(hole[..., None], filled, image)


def run_migan(model: torch.nn.Module, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """MI-GAN on uint8 RGB [H, W, 3] and a bool hole [H, W]; returns uint8 [H, W, 3], composited.

    The window is padded to a square (symmetric, bottom/right), resized to the model's fixed
    resolution (PIL bicubic for the image; a pixel is a hole if any source pixel under it is), and
    fed as ``cat(known - 0.5, image * known)`` with the image in [-1, 1] and known = 1 - hole.
    """
    resolution = model.resolution
    height, width = hole.shape
    side = max(height, width)
    square, _ = pad_symmetric(image, side)
    square_hole, _ = pad_symmetric(hole, side)
    small = np.asarray(Image.fromarray(square).resize((resolution, resolution), Image.Resampling.BICUBIC))
    small_hole = cv2.resize(square_hole.astype(np.float32), (resolution, resolution), interpolation=cv2.INTER_AREA) > 0
    known = (~small_hole).astype(np.float32)[None]
    pixels = small.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    x = torch.from_numpy(np.concatenate([known - 0.5, pixels * known])[None])
    parameter = next(model.parameters())
    with torch.inference_mode():
        prediction = model(x.to(parameter.device, parameter.dtype))[0].float().permute(1, 2, 0).cpu().numpy()
    filled = (np.clip(prediction * 0.5 + 0.5, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    filled = cv2.resize(filled, (side, side), interpolation=cv2.INTER_CUBIC)[:height, :width]
    return np.where(hole[..., None], filled, image)


def run_opencv(image: np.ndarray, hole: np.ndarray, method: str, radius: int = OPENCV_RADIUS) -> np.ndarray:
    """``cv2.inpaint`` (Telea or Navier-Stokes) on uint8 RGB; only masked pixels change."""
    filled = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, radius, _OPENCV_FLAGS[method])
    return np.where(hole[..., None], filled, image)


# --------------------------------------------------------------------------- procedure


def _choose_method(method: str, model_ids: dict[str, str]) -> tuple[str, str]:
    from core.weights import get_entry, how_to_provide, weights_present

    if method != "auto":
        return method, ""
    for learned in ("migan", "lama"):
        if weights_present(model_ids[learned]):
            return learned, ""
    try:
        entry = get_entry(model_ids["migan"])
    except ValueError:
        entry = get_entry(model_ids["lama"])
    return "telea", (
        f"OpenCV Telea was used: {entry.title} (`{entry.id}`) would be used, but its weights are not on this "
        f"machine. Choose the MI-GAN or LaMa method to download them from the Hugging Face Hub (about 28 MB or "
        f"410 MB), or: " + how_to_provide(entry))


def _fill(image: np.ndarray, hole: np.ndarray, method: str, model_ids: dict[str, str], device) -> np.ndarray:
    if method in ("lama", "migan"):
        from core.weights import autocast_for, load_model

        model_id = model_ids[method]
        model = load_model(model_id, device=device)
        with autocast_for(model_id, next(model.parameters()).device):
            return (run_lama if method == "lama" else run_migan)(model, image, hole)
    return run_opencv(image, hole, method)


def _fill_scaled(image: np.ndarray, hole: np.ndarray, working_size: int, fill) -> np.ndarray:
    """Fill at most ``working_size`` on the longer side; scale the fill back; keep unmasked pixels."""
    height, width = hole.shape
    scale = working_size / max(height, width)
    if scale >= 1:
        return fill(image, hole)
    small_size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    # Any pixel that touches the hole is a hole at the small size: nothing of it leaks into the fill.
    small_hole = cv2.resize(hole.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) > 0
    filled = cv2.resize(fill(small, small_hole), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.where(hole[..., None], filled, image)


def inpaint(image: Any, mask: Any, method: str = "auto", dilation: int = 0, strategy: str = "crop",
            margin: int = DEFAULT_MARGIN, working_size: int = DEFAULT_WORKING_SIZE, model_id: str = LAMA_ID,
            device=None, migan_id: str = MIGAN_ID) -> InpaintResult:
    """Fill the hole of ``image`` (anything :func:`core.images.load_image` reads) given by ``mask``.

    ``model_id`` is the LaMa model's id and ``migan_id`` MI-GAN's (manifest ids)."""
    # 1. Check inputs.
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if working_size < 64:
        raise ValueError(f"working_size must be at least 64 pixels, got {working_size}.")
    photo = load_image(image)
    hole = dilate(to_mask(mask, photo.size), dilation)
    pixels = np.asarray(photo)
    # 2. Nothing to do, or nothing to work from.
    if not hole.any():
        return InpaintResult(photo.copy(), hole, "none", "The mask is empty: nothing was inpainted, "
                             "the input is returned unchanged. Paint over what should be removed.", None)
    if hole.all():
        raise ValueError("The mask covers the whole image, so there is nothing to fill it from. Paint only over "
                         "what should be removed (and lower the mask dilation).")
    model_ids = {"lama": model_id, "migan": migan_id}
    method, notice = _choose_method(method, model_ids)

    def fill(img: np.ndarray, msk: np.ndarray) -> np.ndarray:
        return _fill(img, msk, method, model_ids, device)

    # 3. Fill the chosen region, and paste it back.
    if strategy == "full":
        if method == "lama" and hole.size > FULL_MAX_PIXELS:
            raise ValueError(f"Whole-image LaMa on {hole.size / 1e6:.1f} MP needs too much memory here (limit "
                             f"{FULL_MAX_PIXELS / 1e6:.0f} MP); use the crop strategy.")
        box = (0, 0, photo.width, photo.height)
        result = fill(pixels, hole)
    else:
        box = crop_box(hole, margin)
        left, top, right, bottom = box
        result = pixels.copy()
        result[top:bottom, left:right] = _fill_scaled(pixels[top:bottom, left:right], hole[top:bottom, left:right],
                                                      working_size, fill)
    return InpaintResult(Image.fromarray(result), hole, method, notice, box)


def compare_methods(image: Any, mask: Any, methods: list[str], **options) -> list[tuple[InpaintResult, float]]:
    """The same mask filled by each of ``methods`` (in order, duplicates once): (result, seconds) each."""
    import time

    chosen = list(dict.fromkeys(methods or []))
    if not chosen:
        raise ValueError(f"Choose at least one method to compare ({', '.join(m for m in METHODS if m != 'auto')}).")
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method {unknown[0]!r}; choose among {', '.join(METHODS)}.")
    photo = load_image(image)
    runs = []
    for method in chosen:
        start = time.perf_counter()
        result = inpaint(photo, mask, method=method, **options)
        runs.append((result, time.perf_counter() - start))
    return runs


def summary(result: InpaintResult, seconds: float, size: tuple[int, int]) -> str:
    """What happened, for the user: the notice, and which method filled how much of a ``size`` photo."""
    notes = [f"**Note:** {result.notice}"] if result.notice else []
    if result.method != "none":
        left, top, right, bottom = result.box
        notes.append(f"Filled {int(result.mask.sum()):,} pixels with **{METHOD_TITLES[result.method]}** in "
                     f"{seconds:.1f} s; region processed: {right - left}x{bottom - top} at ({left}, {top}) of a "
                     f"{size[0]}x{size[1]} photo.")
    return "\n\n".join(notes)
