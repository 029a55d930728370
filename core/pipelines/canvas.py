"""Extend the canvas (outpainting): add pixels on chosen sides and let an inpainting method fill them.

The photo is placed on a larger canvas and the new border is the hole, filled by
:func:`core.pipelines.inpaint.run` (MI-GAN, LaMa, or OpenCV Telea / Navier-Stokes); the
photo's own pixels are kept bit for bit. Be honest about what to expect: Telea and
Navier-Stokes only propagate the border colours inwards, so a band wider than a few pixels
becomes smooth streaks; MI-GAN and LaMa invent texture, but both were trained to fill holes
inside photos, so wide extensions repeat and blur the nearby content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.images import load_image
from core.pipelines import inpaint

SIDES = ("left", "top", "right", "bottom")
MAX_CANVAS_PIXELS = 40_000_000  # the upload limit of core.images


@dataclass(frozen=True)
class Settings:
    """Pixels to add on each side, and how to fill them (``fill``: the inpainting settings)."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0
    fill: inpaint.Settings = field(default_factory=inpaint.Settings)

    def __post_init__(self):
        for side in SIDES:
            value = getattr(self, side)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
                raise ValueError(f"{side} must be a whole number of pixels >= 0, got {value!r}.")
            object.__setattr__(self, side, int(value))
        if not any(getattr(self, side) for side in SIDES):
            raise ValueError("Choose at least one side and a number of pixels to extend the canvas by.")


def run(image: Any, settings: Settings, *, model: torch.nn.Module | None = None) -> inpaint.Result:
    """``image`` grown by the settings' pixels on each side, the new area filled as ``fill`` says.

    The result's ``mask`` is the new area on the extended canvas; ``model`` goes to :func:`inpaint.run`."""
    photo = load_image(image)
    for side in SIDES:
        if getattr(settings, side) > 2 * max(photo.size):
            raise ValueError(f"{side}: {getattr(settings, side)} px is more than twice the photo's longer side "
                             f"({max(photo.size)} px); extend in several smaller steps.")
    width = photo.width + settings.left + settings.right
    height = photo.height + settings.top + settings.bottom
    if width * height > MAX_CANVAS_PIXELS:
        raise ValueError(f"The extended canvas would be {width}x{height} ({width * height / 1e6:.0f} MP), more than "
                         f"{MAX_CANVAS_PIXELS / 1e6:.0f} MP.")
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    hole = np.ones((height, width), dtype=bool)
    x, y = settings.left, settings.top
    canvas[y:y + photo.height, x:x + photo.width] = np.asarray(photo)
    hole[y:y + photo.height, x:x + photo.width] = False
    result = inpaint.run(Image.fromarray(canvas), hole, settings.fill, model=model)
    sides = {side: getattr(settings, side) for side in SIDES}
    return inpaint.Result(result.image, result.mask, result.method, result.notice, result.box,
                          {**result.details, **sides})
