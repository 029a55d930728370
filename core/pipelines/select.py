"""Select an object by clicking: prompts (:mod:`core.pipelines.select_prompts`) become a mask.

Two selectors:

- ``grabcut`` (offline, always there): OpenCV's GrabCut seeded by the box (outside = background)
  or, without a box, by a window around the include points; include points are certain
  foreground, exclude points certain background. The connected parts that touch an include point
  (or, with a box only, the largest part) are kept and their holes filled.
- ``sam``: Segment Anything (the manifest's inpaint selector) through ``transformers``'
  ``SamModel`` from the pinned Hub snapshot; the best of its three masks by predicted IoU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from core.pipelines.inpaint_models import selector_id
from core.pipelines.select_prompts import Prompts, parse_prompts, validate

SELECTORS = {"auto": "Segment Anything if its weights are here, else GrabCut", "grabcut": "OpenCV GrabCut (offline)",
             "sam": "Segment Anything ViT-B"}
GRABCUT_SIDE = 640  # GrabCut runs at most this size (its cost grows with the pixel count)


# --------------------------------------------------------------------------- GrabCut


def _disc(mask: np.ndarray, points, radius: int, value: int) -> None:
    for x, y in points:
        cv2.circle(mask, (int(round(x)), int(round(y))), radius, value, thickness=-1)


def _keep_touching(fg: np.ndarray, seeds) -> np.ndarray:
    """The connected parts of ``fg`` holding a seed point (the largest part without seeds), holes filled."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(fg)
    height, width = fg.shape
    keep = {labels[min(height - 1, int(round(y))), min(width - 1, int(round(x)))] for x, y in seeds} - {0}
    if not keep:
        keep = {1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))}
    kept = np.isin(labels, list(keep)).astype(np.uint8)
    contours, _ = cv2.findContours(kept, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(kept)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    return filled > 0


def grabcut_mask(image: np.ndarray, prompts: Prompts, iterations: int = 5) -> np.ndarray:
    """The selected object as bool [H, W] from uint8 RGB [H, W, 3], with OpenCV GrabCut."""
    height, width = image.shape[:2]
    scale = min(1.0, GRABCUT_SIDE / max(height, width))
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else image
    sh, sw = small.shape[:2]
    include = [(x * scale, y * scale) for x, y in prompts.include]
    exclude = [(x * scale, y * scale) for x, y in prompts.exclude]
    if prompts.box is not None:
        left, top, right, bottom = (v * scale for v in prompts.box)
    else:  # a window around the clicks: a fifth of the short side beyond the outermost include points
        reach = 0.2 * min(sh, sw)
        xs, ys = [p[0] for p in include], [p[1] for p in include]
        left, top, right, bottom = min(xs) - reach, min(ys) - reach, max(xs) + reach, max(ys) + reach
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(sw, int(np.ceil(right))), min(sh, int(np.ceil(bottom)))
    mask = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    mask[top:bottom, left:right] = cv2.GC_PR_FGD
    if (right - left) * (bottom - top) >= 0.98 * sh * sw:  # a window on the whole photo: its border is background
        mask[[0, -1], :] = cv2.GC_BGD
        mask[:, [0, -1]] = cv2.GC_BGD
    radius = max(2, round(0.01 * min(sh, sw)))
    _disc(mask, include, radius, cv2.GC_FGD)
    _disc(mask, exclude, radius, cv2.GC_BGD)
    if not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any() or not np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        raise ValueError("GrabCut needs some background around the object to tell them apart: draw a smaller box, "
                         "or use a larger photo.")
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[..., ::-1])
    try:
        cv2.grabCut(bgr, mask, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error as e:  # e.g. a region of one flat colour gives no sample to learn from
        raise ValueError("GrabCut could not separate the object from its background here; draw a box around the "
                         "object or add include and exclude points.") from e
    fg = _keep_touching((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), include)
    if scale < 1:
        fg = cv2.resize(fg.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    return fg


# --------------------------------------------------------------------------- Segment Anything


def load_sam(model_id: str, device=None):
    """(SamModel, SamProcessor, device) from the pinned snapshot, once per process (shared cache)."""
    from core.cache import MODEL_CACHE, module_bytes
    from core.device import get_device
    from core.weights import resolve_snapshot

    device = device or get_device()

    def load():
        import torch
        from transformers import SamModel, SamProcessor

        folder = resolve_snapshot(model_id)
        model = SamModel.from_pretrained(folder, local_files_only=True, use_safetensors=True).to(device).eval()
        processor = SamProcessor.from_pretrained(folder, local_files_only=True)
        model.requires_grad_(False)
        return model, processor, torch.device(device)

    return MODEL_CACHE.get_or_load(("sam", model_id, str(device)), load, size=lambda loaded: module_bytes(loaded[0]))


def sam_mask(image: np.ndarray, prompts: Prompts, sam) -> np.ndarray:
    """The selected object as bool [H, W]: Segment Anything's best mask (by predicted IoU).

    ``sam``: (SamModel, SamProcessor, device) as :func:`load_sam` returns."""
    import torch

    model, processor, device = sam
    points = list(prompts.include + prompts.exclude)
    kwargs = {}
    if points:
        kwargs["input_points"] = [[[list(p) for p in points]]]
        kwargs["input_labels"] = [[[1] * len(prompts.include) + [0] * len(prompts.exclude)]]
    if prompts.box is not None:
        kwargs["input_boxes"] = [[list(prompts.box)]]
    inputs = processor(images=Image.fromarray(image), return_tensors="pt", **kwargs)
    with torch.inference_mode():
        outputs = model(**{k: v.to(device) for k, v in inputs.items()
                           if k not in ("original_sizes", "reshaped_input_sizes")}, multimask_output=True)
    masks = processor.image_processor.post_process_masks(outputs.pred_masks.cpu(), inputs["original_sizes"],
                                                         inputs["reshaped_input_sizes"])[0][0]  # [3, H, W]
    best = int(outputs.iou_scores[0, 0].float().argmax())
    return masks[best].numpy().astype(bool)


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Settings:
    """``selector``: auto, grabcut or sam; ``model_id``: None = the manifest's inpaint selector."""

    selector: str = "auto"
    model_id: str | None = None

    def __post_init__(self):
        if self.selector not in SELECTORS:
            raise ValueError(f"Unknown selector {self.selector!r}; choose one of {', '.join(SELECTORS)}.")

    @property
    def sam_id(self) -> str:
        return self.model_id or selector_id()


@dataclass(frozen=True)
class Selection:
    mask: np.ndarray  # bool [H, W]
    method: str  # grabcut or sam
    notice: str
    details: dict = field(default_factory=dict)  # the prompts as text, the selector asked for and used


def _choose_selector(settings: Settings, model) -> tuple[str, str]:
    from core.weights import about_size, download_bytes, weights_present

    if settings.selector != "auto":
        return settings.selector, ""
    if model is not None or weights_present(settings.sam_id):
        return "sam", ""
    size = download_bytes(settings.sam_id)
    return "grabcut", (f"Selected with OpenCV GrabCut: Segment Anything (`{settings.sam_id}`) is not on this machine "
                       f"(`python -m core.weights fetch {settings.sam_id}`{', ' + about_size(size) if size else ''}).")


def run(image: Any, prompts: str | dict | Prompts, settings: Settings = Settings(), *, model=None) -> Selection:
    """The object under ``prompts`` on ``image`` (anything :func:`core.images.load_image` reads).

    ``model``: an already-loaded (SamModel, SamProcessor, device) for the sam selector."""
    from core.images import load_image

    photo = load_image(image)
    prompts = validate(prompts if isinstance(prompts, Prompts) else parse_prompts(prompts), photo.size)
    method, notice = _choose_selector(settings, model)
    pixels = np.asarray(photo)
    if method == "sam":
        mask = sam_mask(pixels, prompts, model if model is not None else load_sam(settings.sam_id))
    else:
        mask = grabcut_mask(pixels, prompts)
    if not mask.any():
        raise ValueError("Nothing was found there: click inside the object, add include points, or draw a box "
                         "around it.")
    details = {"prompts": prompts.to_text(), "selector": settings.selector, "selector_used": method}
    return Selection(mask, method, notice, {**details, **({"model_id": settings.sam_id} if method == "sam" else {})})


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 for two empty masks)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
