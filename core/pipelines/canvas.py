"""Extend the canvas (outpainting): add pixels on chosen sides and let an inpainting method fill them.

The photo is placed on a larger canvas and the new border is the hole, filled by
:func:`core.pipelines.inpaint.inpaint` (MI-GAN, LaMa, or OpenCV Telea / Navier-Stokes); the
photo's own pixels are kept bit for bit. Be honest about what to expect: Telea and
Navier-Stokes only propagate the border colours inwards, so a band wider than a few pixels
becomes smooth streaks; MI-GAN and LaMa invent texture, but both were trained to fill holes
inside photos, so wide extensions repeat and blur the nearby content.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from core.images import load_image
from core.pipelines.inpaint import InpaintResult, inpaint

SIDES = ("left", "top", "right", "bottom")
MAX_CANVAS_PIXELS = 40_000_000  # the upload limit of core.images


def extend_canvas(image: Any, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0, method: str = "auto",
                  **options) -> InpaintResult:
    """``image`` grown by the given number of pixels on each side, the new area filled by ``method``.

    ``options`` go to :func:`inpaint` (strategy, margin, working_size, model ids, device); the
    result's ``mask`` is the new area on the extended canvas.
    """
    photo = load_image(image)
    amounts = {}
    for side, value in zip(SIDES, (left, top, right, bottom)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
            raise ValueError(f"{side} must be a whole number of pixels >= 0, got {value!r}.")
        if value > 2 * max(photo.size):
            raise ValueError(f"{side}: {int(value)} px is more than twice the photo's longer side ({max(photo.size)} px); "
                             f"extend in several smaller steps.")
        amounts[side] = int(value)
    if not any(amounts.values()):
        raise ValueError("Choose at least one side and a number of pixels to extend the canvas by.")
    width = photo.width + amounts["left"] + amounts["right"]
    height = photo.height + amounts["top"] + amounts["bottom"]
    if width * height > MAX_CANVAS_PIXELS:
        raise ValueError(f"The extended canvas would be {width}x{height} ({width * height / 1e6:.0f} MP), more than "
                         f"{MAX_CANVAS_PIXELS / 1e6:.0f} MP.")
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    hole = np.ones((height, width), dtype=bool)
    x, y = amounts["left"], amounts["top"]
    canvas[y:y + photo.height, x:x + photo.width] = np.asarray(photo)
    hole[y:y + photo.height, x:x + photo.width] = False
    return inpaint(Image.fromarray(canvas), hole, method=method, **options)
