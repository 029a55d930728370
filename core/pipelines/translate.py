"""Season swap and other whole-photo translation with the CycleGAN generators of the manifest.

``run(image, Settings(model_id, mode))``: ``mode="tiled"`` (default) keeps the input's
resolution and aspect ratio: the model runs at full resolution over overlapping tiles of its
training size (``input.size`` in the manifest), blended without seams
(:mod:`core.pipelines.tiling`); the output has exactly the input's size. Images above
:func:`tiled_max_pixels` are refused with a message (CPU time grows with the area).
``mode="resize"`` does what the reference test script does, minus the squashing: the shorter
side is resized to the training size (aspect ratio kept, a multiple of 4), one pass, and the
result is resized back to the input size. Fast, but the output is soft. The value range and the
multiple the generator needs come from the manifest's ``input`` too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from core.images import load_image, to_pil, to_tensor
from core.pipelines.tiling import run_tiled
from core.weights import autocast_for, get_entry, load_model, models_for_app

APP = "season"
MODES = ("tiled", "resize")
DEFAULT_TILED_MAX_PIXELS = 4_200_000  # about 2560x1640: ~4-5 min on one busy CPU thread (bench/image_to_image.py)
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


def value_range(model_id: str) -> tuple[float, float]:
    """The generator's pixel range (manifest ``input.range``; [-1, 1] when absent)."""
    return get_entry(model_id).input_range or (-1.0, 1.0)


def app_model_id(app: str, model_id: str | None) -> str:
    """``model_id`` if it is one of ``app``'s models in the manifest (None: the first of them)."""
    choices = models_for_app(app)
    if model_id is None and choices:
        return choices[0]
    if model_id not in choices:
        raise ValueError(f"Unknown model {model_id!r}; choose one of {', '.join(choices)}.")
    return model_id


def _param(model: torch.nn.Module) -> torch.Tensor:
    return next(model.parameters())


def _round4(value: float) -> int:
    return max(4, int(round(value / 4)) * 4)


def translate_tensor(model: torch.nn.Module, x: torch.Tensor, mode: str = "tiled", size: int = 256,
                     tile: int | None = None, overlap: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     should_stop: Callable[[], bool] | None = None, multiple: int | None = None) -> torch.Tensor:
    """[1, 3, H, W] in the model's range -> translated [1, 3, H, W] (the modes: see the module). In tiled
    mode, tiles left when ``should_stop()`` turns true come from the fast (resize) mode; ``multiple``:
    tiles are padded to it (default: the model's ``multiple``, else 4)."""
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
        return run_tiled(fn, x, tile, overlap, multiple=multiple or getattr(model, "multiple", 4), progress=progress,
                         should_stop=should_stop, fallback=fast)


@dataclass(frozen=True)
class Settings:
    """``model_id``: one of the season app's models in the manifest; ``mode``: tiled or resize."""

    model_id: str | None = None  # None: the first in the manifest
    mode: str = "tiled"

    def __post_init__(self):
        object.__setattr__(self, "model_id", app_model_id(APP, self.model_id))
        if self.mode not in MODES:
            raise ValueError(f"Unknown resolution mode {self.mode!r}; choose one of {', '.join(MODES)}.")


@dataclass(frozen=True)
class Result:
    image: Image.Image  # the input's size
    details: dict = field(default_factory=dict)  # model id, mode, size, seconds, tiles, budget notes


def _check_size(image: Image.Image, mode: str) -> None:
    width, height = image.size
    if mode == "tiled" and width * height > tiled_max_pixels():
        limit = tiled_max_pixels()
        raise ValueError(
            f"The image is {width}x{height} ({width * height / 1e6:.1f} MP); full-resolution mode handles at most "
            f"{limit / 1e6:.1f} MP here. Choose the 'resize' mode, or downscale the image first.")
    if mode == "tiled" and min(width, height) < MIN_TILED_SIDE:
        raise ValueError(f"The image is {width}x{height}; full-resolution mode needs at least {MIN_TILED_SIDE} px on "
                         "each side (the generator downsamples 4x). Choose the 'resize' mode for tiny images.")


def run(image, settings: Settings = Settings(), *, model: torch.nn.Module | None = None,
        progress: Callable[[int, int], None] | None = None, budget=None) -> Result:
    """Translate a photo with the settings' generator (or ``model``); the result has the input's size.

    ``budget`` (a :class:`core.limits.Budget`): when it runs out during the tiled mode, the
    remaining tiles come from the fast mode, blended in, and the budget records a note."""
    start = time.perf_counter()
    pil = load_image(image)
    _check_size(pil, settings.mode)
    model = model if model is not None else load_model(settings.model_id)
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

    low_high = value_range(settings.model_id)
    multiple = max(get_entry(settings.model_id).multiple_of, getattr(model, "multiple", 1))
    with autocast_for(settings.model_id, _param(model).device):
        y = translate_tensor(model, to_tensor(pil, low_high), mode=settings.mode, size=native_size(settings.model_id),
                             progress=tick, should_stop=should_stop, multiple=multiple)
    details = {"model_id": settings.model_id, "mode": settings.mode, "size": pil.size, "tiles": tuple(tiles),
               "seconds": time.perf_counter() - start, "notes": list(budget.notes) if budget is not None else []}
    return Result(to_pil(y, low_high), details)
