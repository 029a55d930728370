"""Image-to-image translation with the CycleGAN / pix2pix generators of the manifest.

- :func:`translate_photo`: CycleGAN-style whole-photo translation (season swap, vintage look).
  ``mode="tiled"`` (default) keeps the input's resolution and aspect ratio: the model runs at
  full resolution over overlapping tiles of its training size (``input.size`` in the manifest),
  blended without seams (:mod:`core.pipelines.tiling`); the output has exactly the input's size. Images
  above :func:`tiled_max_pixels` are refused with a message (CPU time grows with the area).
  ``mode="resize"`` does what the reference test script does, minus the squashing: the shorter
  side is resized to the training size (aspect ratio kept, a multiple of 4), one pass, and the
  result is resized back to the input size. Fast, but the output is soft.
- :func:`sketch_to_photo`: pix2pix on a sketch. ``mode="paper"`` (default, what the paper and the
  official test script do): BatchNorm on the statistics of the image itself and dropout on as
  noise, so each seed gives a variation; ``mode="eval"``: running statistics, no dropout,
  deterministic. ResNet generators (instance norm, no dropout) are deterministic either way.
  :func:`variation_difference` measures how much the variations differ, and shows where.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from core.device import make_generator
from core.images import load_image, to_pil, to_tensor
from core.models.pix2pix_unet import Pix2PixUNet
from core.pipelines.tiling import run_tiled
from core.weights import autocast_for, get_entry, load_model

MODES = ("tiled", "resize")
SKETCH_MODES = ("paper", "eval")
DEFAULT_TILED_MAX_PIXELS = 4_200_000  # about 2560x1640: ~4-5 min on one busy CPU thread (bench/image_to_image.py)
MAX_VARIATIONS = 8
MIN_TILED_SIDE = 8


def tiled_max_pixels() -> int:
    """Pixel cap of the full-resolution tiled mode (``GANHUB_TILED_MAX_PIXELS``)."""
    return int(os.environ.get("GANHUB_TILED_MAX_PIXELS", DEFAULT_TILED_MAX_PIXELS))


def native_size(model_id: str) -> int:
    """The side length the model was trained at (manifest ``input.size``)."""
    size = get_entry(model_id).input_size
    if not size:
        raise ValueError(f"The manifest entry {model_id} has no input.size.")
    return int(size)


def _param(model: torch.nn.Module) -> torch.Tensor:
    return next(model.parameters())


def _round4(value: float) -> int:
    return max(4, int(round(value / 4)) * 4)


def translate_tensor(model: torch.nn.Module, x: torch.Tensor, mode: str = "tiled", size: int = 256,
                     tile: int | None = None, overlap: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> torch.Tensor:
    """[1, 3, H, W] in [-1, 1] -> translated [1, 3, H, W] (see :func:`translate_photo`). In tiled
    mode, tiles left when ``should_stop()`` turns true come from the fast (resize) mode."""
    if mode not in MODES:
        raise ValueError(f"Unknown resolution mode {mode!r}; choose one of {', '.join(MODES)}.")
    p = _param(model)
    height, width = x.shape[-2:]
    with torch.inference_mode():
        if mode == "resize":
            # Shorter side to the training size, but the longer side at most 4 training sizes (a 2000x10
            # strip would otherwise become 102400x512).
            scale = min(size / min(height, width), 4 * size / max(height, width))
            h, w = _round4(height * scale), _round4(width * scale)
            small = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False,
                                                    antialias=scale < 1)
            y = model(small.to(p.device, p.dtype)).float().cpu()
            if progress is not None:
                progress(1, 1)
            return torch.nn.functional.interpolate(y, size=(height, width), mode="bicubic", align_corners=False,
                                                   antialias=scale > 1).clamp(-1, 1)
        tile = tile or size
        overlap = tile // 4 if overlap is None else overlap
        fn = lambda t: model(t.to(p.device, p.dtype)).float().cpu()  # noqa: E731
        fast = lambda t: translate_tensor(model, t, "resize", size)  # noqa: E731
        return run_tiled(fn, x, tile, overlap, multiple=getattr(model, "multiple", 4), progress=progress,
                         should_stop=should_stop, fallback=fast)


def translate_photo(model_id: str, image, mode: str = "tiled",
                    progress: Callable[[int, int], None] | None = None, budget=None) -> Image.Image:
    """Translate a photo with the generator ``model_id``; the result has the input's size.

    ``budget`` (a :class:`core.limits.Budget`): when it runs out during the tiled mode, the
    remaining tiles come from the fast mode, blended in, and the budget records a note."""
    if mode not in MODES:
        raise ValueError(f"Unknown resolution mode {mode!r}; choose one of {', '.join(MODES)}.")
    pil = load_image(image)
    width, height = pil.size
    if mode == "tiled" and width * height > tiled_max_pixels():
        limit = tiled_max_pixels()
        raise ValueError(
            f"The image is {width}x{height} ({width * height / 1e6:.1f} MP); full-resolution mode handles at most "
            f"{limit / 1e6:.1f} MP here. Choose the 'resize' mode, or downscale the image first.")
    if mode == "tiled" and min(width, height) < MIN_TILED_SIDE:
        raise ValueError(f"The image is {width}x{height}; full-resolution mode needs at least {MIN_TILED_SIDE} px on "
                         "each side (the generator downsamples 4x). Choose the 'resize' mode for tiny images.")
    size = native_size(model_id)
    model = load_model(model_id)
    tiles = [0, 0]

    def tick(done: int, total: int) -> None:
        tiles[:] = done, total
        if progress is not None:
            progress(done, total)

    def should_stop() -> bool:
        if budget is None or not budget.expired():
            return False
        budget.stopped(f"{tiles[0]} of {tiles[1]} tiles at full resolution; the rest of the photo comes from the "
                       "fast mode, blended in")
        return True

    with autocast_for(model_id, _param(model).device):
        y = translate_tensor(model, to_tensor(pil), mode=mode, size=size, progress=tick, should_stop=should_stop)
    return to_pil(y)


def sketch_to_photo(model_id: str, sketch, mode: str = "paper", seed: int = 0,
                    variations: int = 1) -> list[Image.Image]:
    """pix2pix on a sketch (black strokes on white): ``variations`` outputs at the model's size.

    In paper mode variation ``i`` uses the dropout seed ``seed + i``; in eval mode (and for
    generators without dropout) every variation would be identical, so one image is returned.
    """
    from core.pipelines.sketch import prepare_sketch

    if mode not in SKETCH_MODES:
        raise ValueError(f"Unknown mode {mode!r}; choose one of {', '.join(SKETCH_MODES)}.")
    if not 1 <= int(variations) <= MAX_VARIATIONS:
        raise ValueError(f"variations must be between 1 and {MAX_VARIATIONS}, got {variations}.")
    size = native_size(model_id)
    model = load_model(model_id)
    p = _param(model)
    x = to_tensor(prepare_sketch(sketch, size)).to(p.device, p.dtype)
    stochastic = mode == "paper" and isinstance(model, Pix2PixUNet)  # the U-Net has paper mode and dropout
    outputs = []
    with torch.inference_mode(), autocast_for(model_id, p.device):
        if not stochastic:
            return [to_pil(model(x).float())]
        for i in range(int(variations)):
            y = model(x, batch_stats=True, dropout=True, generator=make_generator(int(seed) + i))
            outputs.append(to_pil(y.float()))
    return outputs


DIFFERENCE_GAIN = 4  # the spread map shows 4x the per-pixel range of the variations


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
