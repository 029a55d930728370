"""Sketch to photo with the pix2pix generators of the manifest (Isola et al., CVPR 2017).

``run(sketch, Settings(model_id, paper_mode, variations, seed))``. Paper mode (default, what the
paper and the official test script do): BatchNorm on the statistics of the image itself and
dropout on as noise, so each seed gives a variation; eval mode: running statistics, no dropout,
deterministic. ResNet generators (instance norm, no dropout) are deterministic either way.
:func:`variation_difference` measures how much the variations differ, and shows where.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from core.device import make_generator
from core.images import to_pil, to_tensor
from core.models.pix2pix_unet import Pix2PixUNet
from core.pipelines.sketch import prepare_sketch
from core.pipelines.translate import app_model_id, native_size, value_range
from core.weights import autocast_for, load_model

APP = "sketch2photo"
MAX_VARIATIONS = 8
MAX_SEED = 2**32 - 1  # what every generator's manual_seed takes on every device
DIFFERENCE_GAIN = 4  # the spread map shows 4x the per-pixel range of the variations


@dataclass(frozen=True)
class Settings:
    """``model_id``: one of the sketch app's models in the manifest (None: the first); ``paper_mode``:
    per-image statistics and dropout as noise; variation ``i`` uses the dropout seed ``seed + i``."""

    model_id: str | None = None
    paper_mode: bool = True
    variations: int = 1
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "model_id", app_model_id(APP, self.model_id))
        if not 1 <= int(self.variations) <= MAX_VARIATIONS:
            raise ValueError(f"variations must be between 1 and {MAX_VARIATIONS}, got {self.variations}.")
        object.__setattr__(self, "variations", int(self.variations))
        object.__setattr__(self, "seed", int(self.seed))
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}.")
        object.__setattr__(self, "paper_mode", bool(self.paper_mode))


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]  # one per variation; one only when the generator is deterministic
    details: dict = field(default_factory=dict)  # settings, size, seconds, mean difference of the variations


def run(sketch, settings: Settings = Settings(), *, model: torch.nn.Module | None = None) -> Result:
    """pix2pix on a sketch (black strokes on white): the settings' variations at the model's size."""
    start = time.perf_counter()
    size, low_high = native_size(settings.model_id), value_range(settings.model_id)
    model = model if model is not None else load_model(settings.model_id)
    p = next(model.parameters())
    x = to_tensor(prepare_sketch(sketch, size), low_high).to(p.device, p.dtype)
    stochastic = settings.paper_mode and isinstance(model, Pix2PixUNet)  # the U-Net has paper mode and dropout
    with torch.inference_mode(), autocast_for(settings.model_id, p.device):
        if not stochastic:
            images = [to_pil(model(x).float(), low_high)]
        else:
            images = [to_pil(model(x, batch_stats=True, dropout=True,
                                   generator=make_generator(settings.seed + i)).float(), low_high)
                      for i in range(settings.variations)]
    details = {"model_id": settings.model_id, "mode": "paper" if settings.paper_mode else "eval",
               "variations": settings.variations, "seed": settings.seed, "size": size, "deterministic": not stochastic,
               "seconds": time.perf_counter() - start}
    if len(images) > 1:
        details["mean_difference"] = variation_difference(images)[0]
    return Result(images, details)


def variation_difference(images: list[Image.Image]) -> tuple[float, Image.Image]:
    """(mean absolute difference between pairs of variations in 0..255 levels, a spread map).

    The map is the per-pixel range (max - min over the variations, largest over RGB) times
    :data:`DIFFERENCE_GAIN`, white on black, so small differences are visible.
    """
    if len(images) < 2:
        raise ValueError("Comparing variations needs at least two images.")
    stack = np.stack([np.asarray(image.convert("RGB"), np.float32) for image in images])
    pairs = [np.abs(stack[i] - stack[j]).mean() for i in range(len(stack)) for j in range(i + 1, len(stack))]
    spread = (stack.max(0) - stack.min(0)).max(-1) * DIFFERENCE_GAIN
    return float(np.mean(pairs)), Image.fromarray(np.clip(spread, 0, 255).astype(np.uint8), "L").convert("RGB")
