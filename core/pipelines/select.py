"""Select an object by clicking: include/exclude points and a box on the photo become a mask.

Prompts are written as text, so scripts and agents can say "remove the thing at (x, y)":
items separated by newlines or ``;``, coordinates in pixels of the photo (x right, y down)::

    +120,80            an include point (a bare ``120,80`` too)
    -200,150           an exclude point
    box 10,20,300,400  a box: left, top, right, bottom

or as JSON: ``{"include": [[120, 80]], "exclude": [[200, 150]], "box": [10, 20, 300, 400]}``.

Two selectors:

- ``grabcut`` (offline, always there): OpenCV's GrabCut seeded by the box (outside = background)
  or, without a box, by a window around the include points; include points are certain
  foreground, exclude points certain background. The connected parts that touch an include point
  (or, with a box only, the largest part) are kept and their holes filled.
- ``sam``: Segment Anything (``sam.vit_base``) through ``transformers``' ``SamModel`` from the
  pinned Hub snapshot; the best of its three masks by predicted IoU.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

SAM_ID = "sam.vit_base"
SELECTORS = {"auto": "Segment Anything if its weights are here, else GrabCut", "grabcut": "OpenCV GrabCut (offline)",
             "sam": "Segment Anything ViT-B"}
MAX_POINTS = 64
GRABCUT_SIDE = 640  # GrabCut runs at most this size (its cost grows with the pixel count)
FORMAT_HELP = "write +x,y (include), -x,y (exclude) or box left,top,right,bottom, separated by ; or new lines"
_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
_POINT = re.compile(rf"^([+-]?){_NUMBER},{_NUMBER}$")
_CORNER = re.compile(rf"corner{_NUMBER},{_NUMBER}$", re.IGNORECASE)
_BOX = re.compile(rf"^box\s*[:=]?{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$", re.IGNORECASE)

Point = tuple[float, float]


@dataclass(frozen=True)
class Prompts:
    include: tuple[Point, ...] = ()
    exclude: tuple[Point, ...] = ()
    box: tuple[float, float, float, float] | None = None

    def to_text(self) -> str:
        items = [f"+{x:g},{y:g}" for x, y in self.include] + [f"-{x:g},{y:g}" for x, y in self.exclude]
        if self.box is not None:
            items.append("box " + ",".join(f"{v:g}" for v in self.box))
        return "; ".join(items)


def _from_json(data: Any) -> Prompts:
    if not isinstance(data, dict) or set(data) - {"include", "exclude", "box", "points", "labels"}:
        raise ValueError('Prompts as JSON are an object with "include", "exclude" (lists of [x, y]) and "box" '
                         '([left, top, right, bottom]).')

    def points(value, what):
        if not isinstance(value, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            raise ValueError(f'"{what}" must be a list of [x, y] pairs.')
        return tuple((float(x), float(y)) for x, y in value)

    include, exclude = points(data.get("include", []), "include"), points(data.get("exclude", []), "exclude")
    if "points" in data:  # SAM's own convention: points with labels 1 (include) / 0 (exclude)
        labels = data.get("labels", [1] * len(data["points"]))
        pts = points(data["points"], "points")
        if len(labels) != len(pts) or any(label not in (0, 1) for label in labels):
            raise ValueError('"labels" must give 1 (include) or 0 (exclude) for each of the "points".')
        include += tuple(p for p, label in zip(pts, labels) if label == 1)
        exclude += tuple(p for p, label in zip(pts, labels) if label == 0)
    box = data.get("box")
    if box is not None and (not isinstance(box, (list, tuple)) or len(box) != 4):
        raise ValueError('"box" must be [left, top, right, bottom].')
    return Prompts(include, exclude, tuple(float(v) for v in box) if box is not None else None)


def parse_prompts(text: str | dict | None) -> Prompts:
    """Read prompts from the text or JSON format above; ValueError says what could not be read."""
    if isinstance(text, dict):
        return _from_json(text)
    text = (text or "").strip()
    if text.startswith("{"):
        try:
            return _from_json(json.loads(text))
        except json.JSONDecodeError as e:
            raise ValueError(f"The prompts look like JSON but cannot be read: {e.msg} (at character {e.pos}).") from None
    include, exclude, box = [], [], None
    for number, item in enumerate((i.strip() for i in re.split(r"[;\n]", text)), start=1):
        if not item:
            continue
        if match := _BOX.match(item):
            if box is not None:
                raise ValueError("Give at most one box.")
            box = tuple(float(v) for v in match.groups())
        elif _CORNER.match(item):
            raise ValueError(f"The box has one corner so far ({item}): click its opposite corner, or delete it.")
        elif match := _POINT.match(item):
            (exclude if match.group(1) == "-" else include).append((float(match.group(2)), float(match.group(3))))
        else:
            raise ValueError(f"Cannot read {item[:40]!r} (item {number}): {FORMAT_HELP}.")
    return Prompts(tuple(include), tuple(exclude), box)


def validate(prompts: Prompts, size: tuple[int, int]) -> Prompts:
    """Refuse empty prompts, points or boxes outside the photo (``size`` = (W, H)), degenerate boxes."""
    width, height = size
    if not prompts.include and prompts.box is None:
        if prompts.exclude:
            raise ValueError("Exclude points alone select nothing: add an include point (+x,y) or a box.")
        raise ValueError("Nothing is selected: click on the object (include points) or give a box, e.g. "
                         "`+120,80` or `box 10,20,300,400`.")
    if len(prompts.include) + len(prompts.exclude) > MAX_POINTS:
        raise ValueError(f"At most {MAX_POINTS} points, got {len(prompts.include) + len(prompts.exclude)}.")
    for x, y in prompts.include + prompts.exclude:
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"The point ({x:g}, {y:g}) is outside the {width}x{height} photo "
                             f"(x must be in 0..{width - 1}, y in 0..{height - 1}).")
    if prompts.box is not None:
        left, top, right, bottom = prompts.box
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(f"The box ({left:g}, {top:g}, {right:g}, {bottom:g}) must lie inside the {width}x{height} "
                             f"photo with left < right <= {width} and top < bottom <= {height}.")
    return prompts


def add_click(text: str | None, x: float, y: float, mode: str) -> str:
    """The prompt text after a click at (x, y): ``include``, ``exclude``, or ``box`` (two clicks = two corners)."""
    text = text or ""
    pending = _CORNER.search(text)
    if pending is not None:  # a box's first corner: this click completes the box, whatever the mode
        x0, y0 = float(pending.group(1)), float(pending.group(2))
        prompts = parse_prompts(text[:pending.start()].rstrip("; "))
        box = (min(x0, x), min(y0, y), max(x0, x) + 1, max(y0, y) + 1)
        return Prompts(prompts.include, prompts.exclude, box).to_text()
    prompts = parse_prompts(text)
    if mode == "include":
        return Prompts(prompts.include + ((x, y),), prompts.exclude, prompts.box).to_text()
    if mode == "exclude":
        return Prompts(prompts.include, prompts.exclude + ((x, y),), prompts.box).to_text()
    if mode == "box":  # the first corner waits in the text until the second click
        return (prompts.to_text() + "; " if prompts.to_text() else "") + f"corner {x:g},{y:g}"
    raise ValueError(f"Unknown click mode {mode!r}; choose include, exclude or box.")


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


def load_sam(model_id: str = SAM_ID, device=None):
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


def sam_mask(image: np.ndarray, prompts: Prompts, model_id: str = SAM_ID, device=None) -> np.ndarray:
    """The selected object as bool [H, W]: Segment Anything's best mask (by predicted IoU)."""
    import torch

    model, processor, device = load_sam(model_id, device)
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


@dataclass
class Selection:
    mask: np.ndarray  # bool [H, W]
    method: str  # grabcut or sam
    notice: str


def select_object(image: Any, prompts: str | dict | Prompts, method: str = "auto", model_id: str = SAM_ID,
                  device=None) -> Selection:
    """The object under ``prompts`` on ``image`` (anything :func:`core.images.load_image` reads)."""
    from core.images import load_image

    if method not in SELECTORS:
        raise ValueError(f"Unknown selector {method!r}; choose one of {', '.join(SELECTORS)}.")
    photo = load_image(image)
    prompts = validate(prompts if isinstance(prompts, Prompts) else parse_prompts(prompts), photo.size)
    pixels = np.asarray(photo)
    notice = ""
    if method == "auto":
        from core.weights import weights_present

        method = "sam" if weights_present(model_id) else "grabcut"
        if method == "grabcut":
            notice = (f"Selected with OpenCV GrabCut: Segment Anything (`{model_id}`) is not on this machine "
                      f"(`python -m core.weights fetch {model_id}`, about 375 MB).")
    mask = sam_mask(pixels, prompts, model_id, device) if method == "sam" else grabcut_mask(pixels, prompts)
    if not mask.any():
        raise ValueError("Nothing was found there: click inside the object, add include points, or draw a box "
                         "around it.")
    return Selection(mask, method, notice)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 for two empty masks)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
