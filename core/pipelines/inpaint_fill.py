"""The fills: LaMa, MI-GAN and OpenCV on uint8 RGB [H, W, 3] and a bool hole [H, W] (True = hole).

Each returns uint8 [H, W, 3] composited: only masked pixels are taken from the fill, every
other pixel is the input's, bit for bit. Conventions are the references':

- LaMa (``bin/predict.py``): image RGB in [0, 1], mask 1 = hole; the generator sees
  ``cat(image * (1 - mask), mask)`` padded at the bottom/right to a multiple of 8 with symmetric
  (edge-repeating mirror) padding. The result is rounded to uint8 (the reference truncates).
- MI-GAN (fixed square input, mask 1 = known): the window is padded to a square (symmetric),
  resized to the model's resolution (bicubic, as its ``scripts/demo.py``), fed as
  ``cat(known - 0.5, image * known)`` with the image in [-1, 1], and its fill resized back
  (bicubic); a pixel is a hole at the model's size when any of its source pixels is.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from PIL import Image

from core.images import pad_to_multiple, to_pil, to_tensor, unpad

OPENCV_RADIUS = 3
OPENCV_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    parameter = next(model.parameters())
    with torch.inference_mode():
        return model(x.to(parameter.device, parameter.dtype)).float().cpu()


def _hole_tensor(hole: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def run_lama(model: torch.nn.Module, image: np.ndarray, hole: np.ndarray, multiple: int | None = None) -> np.ndarray:
    """LaMa on uint8 RGB [H, W, 3] and a bool hole [H, W]; returns uint8 [H, W, 3], composited.

    ``multiple``: H and W are padded to it (default: the model's own ``multiple``)."""
    mask = _hole_tensor(hole)
    x = torch.cat([to_tensor(Image.fromarray(image), (0.0, 1.0)) * (1.0 - mask), mask], dim=1)
    padded, size = pad_to_multiple(x, multiple or getattr(model, "multiple", 8), mode="symmetric")
    filled = np.asarray(to_pil(unpad(_predict(model, padded), size), (0.0, 1.0)))
    return np.where(hole[..., None], filled, image)


def run_migan(model: torch.nn.Module, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """MI-GAN on uint8 RGB [H, W, 3] and a bool hole [H, W]; returns uint8 [H, W, 3], composited."""
    resolution = model.resolution
    height, width = hole.shape
    side = max(height, width)
    square = pad_to_multiple(torch.from_numpy(image.copy()).permute(2, 0, 1), side, mode="symmetric")[0]
    square_hole = pad_to_multiple(torch.from_numpy(hole)[None], side, mode="symmetric")[0][0].numpy()
    small = Image.fromarray(square.permute(1, 2, 0).numpy()).resize((resolution, resolution),
                                                                    Image.Resampling.BICUBIC)
    small_hole = cv2.resize(square_hole.astype(np.float32), (resolution, resolution), interpolation=cv2.INTER_AREA) > 0
    known = 1.0 - _hole_tensor(small_hole)
    prediction = _predict(model, torch.cat([known - 0.5, to_tensor(small) * known], dim=1))
    filled = cv2.resize(np.asarray(to_pil(prediction)), (side, side), interpolation=cv2.INTER_CUBIC)[:height, :width]
    return np.where(hole[..., None], filled, image)


def run_opencv(image: np.ndarray, hole: np.ndarray, method: str, radius: int = OPENCV_RADIUS) -> np.ndarray:
    """``cv2.inpaint`` (Telea or Navier-Stokes) on uint8 RGB; only masked pixels change."""
    filled = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, radius, OPENCV_FLAGS[method])
    return np.where(hole[..., None], filled, image)


def fill_scaled(image: np.ndarray, hole: np.ndarray, working_size: int, fill: Fill) -> np.ndarray:
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
