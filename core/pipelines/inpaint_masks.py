"""Inpainting masks: read, combine, dilate and show the hole a user gives (bool [H, W], True = hole).

Masks given as images follow the usual editor convention: **white = hole**. Transparent pixels
count as black (keep), so a white stroke on a transparent layer is a hole too. A mask of another
size than the image, with the image's proportions, is resized to it with nearest-neighbour
interpolation. A ``gr.ImageEditor`` value holds its hole in the alpha of its layers.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image

from core.images import load_image


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
